#!/usr/bin/env python3
"""PyTorch peer of `smflow bench` (the jobs: peers_common.py; how to run: benches/README.md).

sgd, sme2: eager PyTorch, vectorised over paths, in preallocated buffers with in-place
ops only. The state is kept as y = x − 0.3 (so keep·x + shift = 0.3 + keep·y, the same
recursion) and each step is two kernels:
  sme2: z.normal_(0, scale/(1 − keep)); y.lerp_(z, 1 − keep)    (= keep·y + scale·N(0,1))
  sgd : z.normal_();  y.addmv_(z.T, [scale, scale], beta=keep)
        (= keep·y + scale·(z_1 + z_2): the b normals of a step summed by one gemv).
On the CPU paths are processed in chunks of --chunk (default 2^16, so the buffers stay
in cache) with torch.set_num_threads(os.cpu_count()); on CUDA all paths at once.

mf: neurons a (M, n), w (M, n, d); per step θ by torch.randn(out=...), the
pre-activations by one bmm into a buffer, tanh_ in place, the residuals by a bmm, and
the updates by in-place baddbmm_ (w) and baddbmm_ (a), the formulas of
numpy_meanfield_baseline.py.

--device auto takes CUDA when torch.cuda.is_available(); timing is bracketed by
torch.cuda.synchronize() there. An untimed warm-up run at a small size comes first.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import peers_common as C  # noqa: E402

PEER = "torch"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_ar1(job, paths, chunk, dtype, device, gen, substeps):
    """Returns (seconds, Σ x², Σ x⁴, steps per path)."""
    if job == "sgd":
        (keep, shift, scale), steps, draws = C.sgd_constants(), C.K, C.BATCH
    else:
        (keep, shift, scale), steps, draws = C.sme2_constants(substeps), C.K * substeps, 1
    m = shift / (1.0 - keep)  # = 0.3: keep·x + shift = m + keep·(x − m)
    chunk = paths if device.type == "cuda" else min(chunk, paths)
    y = torch.empty(chunk, dtype=dtype, device=device)
    z = torch.empty((draws, chunk), dtype=dtype, device=device)
    v = torch.full((draws,), scale, dtype=dtype, device=device)
    s1 = torch.zeros((), dtype=torch.float64, device=device)
    s2 = torch.zeros((), dtype=torch.float64, device=device)
    w = 1.0 - keep
    sd = scale / w
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < paths:
        n = min(chunk, paths - done)
        yn, zn = y[:n], z[:, :n]
        yn.fill_(C.X0 - m)
        if draws == 1:
            z0 = zn[0]
            for _ in range(steps):
                z0.normal_(0.0, sd, generator=gen)
                yn.lerp_(z0, w)
        else:
            zt = zn.T
            for _ in range(steps):
                zn.normal_(generator=gen)
                yn.addmv_(zt, v, beta=keep)
        g = (yn.double() + m).square_()
        s1 += g.sum()
        s2 += g.square_().sum()
        done += n
    r1, r2 = float(s1), float(s2)
    sync(device)
    return time.perf_counter() - t0, r1, r2, steps


class MF:
    """Buffers and steps of M replicas of the mean-field network of width n."""

    def __init__(self, replicas, width, dtype, device, gen, teacher, test):
        self.m, self.n, self.dtype, self.device, self.gen = replicas, width, dtype, device, gen
        d, b = C.MF_D, C.MF_B
        kw = dict(dtype=dtype, device=device)
        self.ta = torch.as_tensor(teacher[0], **kw)
        self.twT = torch.as_tensor(teacher[1], **kw).T.contiguous()
        self.txT = torch.as_tensor(test[0], **kw).T.contiguous()
        self.ty = torch.as_tensor(test[1], dtype=torch.float64, device=device)
        self.th = torch.empty((replicas, b, d), **kw)
        self.s = torch.empty((replicas, width, b), **kw)
        self.gw = torch.empty((replicas, width, b), **kw)
        self.f = torch.empty((replicas, b, 1), **kw)
        self.c = C.MF_ETA / b

    def init(self):
        kw = dict(dtype=self.dtype, device=self.device, generator=self.gen)
        self.a = torch.randn((self.m, self.n), **kw)
        self.w = torch.randn((self.m, self.n, C.MF_D), **kw)

    def labels(self, th):
        return torch.tanh(th @ self.twT) @ self.ta / self.ta.shape[0]  # (M, b)

    def step(self, th):
        a, w, s, gw, f = self.a, self.w, self.s, self.gw, self.f
        y = self.labels(th)
        torch.bmm(w, th.transpose(1, 2), out=s)  # u (M, n, b)
        s.tanh_()
        torch.bmm(s.transpose(1, 2), a.unsqueeze(2), out=f)  # Σ_k a_k s_kj
        g = f.squeeze(2).div_(self.n).sub_(y).mul_(self.c)  # (M, b)
        torch.mul(s, s, out=gw)
        gw.sub_(1.0).mul_(g.unsqueeze(1)).mul_(a.unsqueeze(2))  # −g_j a_k (1 − s²)
        w.baddbmm_(gw, th)  # w_k −= Σ_j g_j a_k (1 − s²) θ_j
        a.unsqueeze(2).baddbmm_(s, g.unsqueeze(2), alpha=-1.0)  # a_k −= Σ_j g_j s_kj

    def run(self, steps):
        for _ in range(steps):
            torch.randn(self.th.shape, out=self.th, generator=self.gen)
            self.step(self.th)

    def observe(self):
        u = torch.tanh(torch.matmul(self.w, self.txT))  # (M, n, T)
        f = torch.bmm(self.a.unsqueeze(1), u).squeeze(1) / self.n  # (M, T)
        e = f.double() - self.ty
        risk = 0.5 * (e * e).mean(dim=1)
        a2 = self.a.double().square().mean(dim=1)
        return risk.cpu().numpy(), a2.cpu().numpy()


def mf_job(width, replicas, steps, dtype, device, seed, teacher, test):
    gen = torch.Generator(device=device).manual_seed(seed)
    net = MF(replicas, width, dtype, device, gen, teacher, test)
    sync(device)
    t0 = time.perf_counter()
    net.init()
    net.run(steps)
    risk, a2 = net.observe()
    sync(device)
    return time.perf_counter() - t0, risk, a2


def mf_given(dtype, device, case):
    replicas, width = case["a"].shape
    net = MF(replicas, width, dtype, device, None, (case["ta"], case["tw"]), (case["test_x"], case["test_y"]))
    net.a = torch.as_tensor(case["a"], dtype=dtype, device=device).clone()
    net.w = torch.as_tensor(case["w"], dtype=dtype, device=device).clone()
    for th in case["thetas"]:
        net.step(torch.as_tensor(th, dtype=dtype, device=device))
    risk, _ = net.observe()
    return net.a.cpu().numpy(), net.w.cpu().numpy(), risk


def main():
    p = C.parser(PEER)
    p.add_argument("--chunk", type=int, default=1 << 16, help="paths per chunk on the CPU (sgd, sme2)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (CPU)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        dev = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        dev = f"cpu ({torch.get_num_threads()} threads)"
    ver = dict(torch=torch.__version__, numpy=np.__version__)
    failed = False
    for dt in C.dtypes(args.dtype):
        for job in C.expand_jobs(args.jobs, args.mf_widths):
            try:
                C.emit(run_job(args, dt, job, device, dev, ver))
            except Exception as e:  # one job's failure (e.g. CUDA out of memory) is a line, not the end
                failed = True
                C.emit(C.error_record(PEER, job, dt, dev, e, **ver))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return 1 if failed else 0


def run_job(args, dt, job, device, dev, ver):
    """One job at one dtype on `device`; returns its record."""
    dtype = torch.float32 if dt == "f32" else torch.float64
    if job in ("sgd", "sme2"):
        paths = args.paths if job == "sgd" else C.sme2_paths(args)
        gen = torch.Generator(device=device).manual_seed(args.seed + 99991)
        run_ar1(job, min(args.warmup_paths, paths), args.chunk, dtype, device, gen, args.substeps)
        gen = torch.Generator(device=device).manual_seed(args.seed)
        sec, s1, s2, steps = run_ar1(job, paths, args.chunk, dtype, device, gen, args.substeps)
        mean, se = C.moments(paths, s1, s2)
        exact = C.sgd_exact_x2() if job == "sgd" else C.sme2_em_exact_x2(args.substeps)
        return C.record(PEER, job, dt, dev, paths, steps, sec, mean, se, exact, C.check(mean, se, exact), **ver)
    width = C.mf_width(job)
    replicas, steps = C.mf_shape(width, args.mf_replicas)
    teacher = C.mf_teacher()
    test = C.mf_test_set(*teacher)
    case = C.mf_check_case()
    chk, err = C.mf_compare(case, mf_given(dtype, device, case), dt)
    mf_job(width, min(replicas, 4), 1, dtype, device, args.seed + 99991, teacher, test)  # warm-up
    sec, risk, a2 = mf_job(width, replicas, steps, dtype, device, args.seed, teacher, test)
    mean = float(np.mean(a2))
    se = float(np.std(a2, ddof=1) / np.sqrt(replicas)) if replicas > 1 else None
    return C.record(PEER, job, dt, dev, replicas, width * steps, sec, mean, se, None, chk,
                    width=width, steps=steps, unit="neuron-steps", risk=float(np.mean(risk)),
                    check_detail=f"max rel. error vs numpy reference {err:.1e}", **ver)


if __name__ == "__main__":
    sys.exit(main())
