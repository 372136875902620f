#!/usr/bin/env python3
"""numba peer of `smflow bench` (the jobs: peers_common.py; how to run: benches/README.md).

sgd, sme2: `@njit(parallel=True)` with `prange` over chunks of CHUNK paths; each chunk
seeds the generator of the thread that runs it (numba's np.random keeps one MT19937 per
thread) with seed + chunk index, then walks its paths one at a time with the state in a
local over all steps, drawing np.random.standard_normal() scalars (fastmath off). The
normals are float64 (numba's generator has no float32 path); with --dtype f32 the state,
the constants and the arithmetic are float32 (each normal is rounded to float32).

mf: neurons in arrays a (M, n), w (M, n, d); per step one parallel kernel: a prange over
(replica, block of 256 neurons) for the forward pass (tanh cached, per-block partial sums
of f(θ_j)), the residuals reduced serially, and a second prange for the update. The
step's inputs θ (M × 8 × 16 normals) are drawn serially by numba; the initial neurons in
parallel (prange over replicas × blocks, each seeding its thread's generator).

Compiled kernels are cached on disk (NUMBA_CACHE_DIR, default under the temp dir), so
only the first run compiles; compilation and a small warm-up run are never timed.
"""

import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "smflow-peers-numba-cache"))

import numpy as np  # noqa: E402
import numba  # noqa: E402
from numba import njit, prange  # noqa: E402

import peers_common as C  # noqa: E402

PEER = "numba"
CHUNK = 1024  # paths per prange iteration (one generator seeding each)
NBLK = 256  # neurons per prange iteration (mf)
JIT = dict(parallel=True, fastmath=False, cache=True)


def make_kernels(T):
    """The kernels with state type T (np.float32 or np.float64)."""

    @njit(**JIT)
    def ar1(x0, keep, shift, scale, paths, steps, draws, seed):
        """paths × steps of x ← keep·x + shift + scale·Σ_{draws} z; returns Σ x², Σ x⁴."""
        nchunks = (paths + CHUNK - 1) // CHUNK
        s1 = np.zeros(nchunks)
        s2 = np.zeros(nchunks)
        for c in prange(nchunks):
            np.random.seed(seed + c)
            lo = c * CHUNK
            hi = min(lo + CHUNK, paths)
            a1 = 0.0
            a2 = 0.0
            for _ in range(lo, hi):
                x = x0
                for _k in range(steps):
                    z = np.random.standard_normal()
                    for _j in range(draws - 1):
                        z += np.random.standard_normal()
                    x = keep * x + (shift + scale * T(z))
                g = np.float64(x) * np.float64(x)
                a1 += g
                a2 += g * g
            s1[c] = a1
            s2[c] = a2
        return s1.sum(), s2.sum()

    @njit(**JIT)
    def mf_init(replicas, width, d, seed):
        a = np.empty((replicas, width), dtype=T)
        w = np.empty((replicas, width, d), dtype=T)
        nb = (width + NBLK - 1) // NBLK
        for it in prange(replicas * nb):
            m = it // nb
            lo = (it % nb) * NBLK
            hi = min(lo + NBLK, width)
            np.random.seed(seed + it)
            for k in range(lo, hi):
                a[m, k] = T(np.random.standard_normal())
                for i in range(d):
                    w[m, k, i] = T(np.random.standard_normal())
        return a, w

    @njit(cache=True, fastmath=False)
    def mf_inputs(th, y, ta, tw, seed):
        """Fresh θ ~ N(0, I) into th (M, b, d) and teacher labels into y (M, b)."""
        np.random.seed(seed)
        mr, b, d = th.shape
        for m in range(mr):
            for j in range(b):
                for i in range(d):
                    th[m, j, i] = T(np.random.standard_normal())
        mf_labels(th, y, ta, tw)

    @njit(cache=True, fastmath=False)
    def mf_labels(th, y, ta, tw):
        mr, b, d = th.shape
        mt = ta.shape[0]
        for m in range(mr):
            for j in range(b):
                f = T(0)
                for t in range(mt):
                    u = T(0)
                    for i in range(d):
                        u += tw[t, i] * th[m, j, i]
                    f += ta[t] * np.tanh(u)
                y[m, j] = f / T(mt)

    @njit(**JIT)
    def mf_step(a, w, th, y, c, s, part):
        """One SGD step of every replica in place; s (M, n, b) and part (M, nb, b) scratch."""
        mr, width, d = w.shape
        b = th.shape[1]
        nb = part.shape[1]
        for it in prange(mr * nb):
            m = it // nb
            blk = it % nb
            lo = blk * NBLK
            hi = min(lo + NBLK, width)
            for j in range(b):
                part[m, blk, j] = T(0)
            for k in range(lo, hi):
                ak = a[m, k]
                for j in range(b):
                    u = T(0)
                    for i in range(d):
                        u += w[m, k, i] * th[m, j, i]
                    sk = np.tanh(u)
                    s[m, k, j] = sk
                    part[m, blk, j] += ak * sk
        g = np.empty((mr, b), dtype=T)
        for m in range(mr):
            for j in range(b):
                f = T(0)
                for blk in range(nb):
                    f += part[m, blk, j]
                g[m, j] = c * (f / T(width) - y[m, j])
        for it in prange(mr * nb):
            m = it // nb
            lo = (it % nb) * NBLK
            hi = min(lo + NBLK, width)
            for k in range(lo, hi):
                ak = a[m, k]
                da = T(0)
                for j in range(b):
                    sk = s[m, k, j]
                    gj = g[m, j]
                    da -= gj * sk
                    gw = gj * ak * (T(1) - sk * sk)
                    for i in range(d):
                        w[m, k, i] -= gw * th[m, j, i]
                a[m, k] = ak + da

    @njit(**JIT)
    def mf_observe(a, w, test_x, test_y):
        """Per replica: test risk ½ mean_t (f(θ_t) − y_t)² and ⟨a², ν⟩ (float64)."""
        mr, width, d = w.shape
        nt = test_x.shape[0]
        risk = np.zeros(mr)
        a2 = np.zeros(mr)
        for m in prange(mr):
            acc = 0.0
            for k in range(width):
                acc += np.float64(a[m, k]) * np.float64(a[m, k])
            a2[m] = acc / width
            for t in range(nt):
                f = T(0)
                for k in range(width):
                    u = T(0)
                    for i in range(d):
                        u += w[m, k, i] * test_x[t, i]
                    f += a[m, k] * np.tanh(u)
                e = np.float64(f) / width - test_y[t]
                risk[m] += 0.5 * e * e / nt
        return risk, a2

    return dict(ar1=ar1, mf_init=mf_init, mf_inputs=mf_inputs, mf_labels=mf_labels, mf_step=mf_step, mf_observe=mf_observe)


KERNELS = {}


def kernels(dtype):
    if dtype not in KERNELS:
        KERNELS[dtype] = make_kernels(np.float32 if dtype == "f32" else np.float64)
    return KERNELS[dtype]


def run_ar1(dtype, job, paths, seed, substeps):
    kn = kernels(dtype)
    T = np.float32 if dtype == "f32" else np.float64
    if job == "sgd":
        (keep, shift, scale), steps, draws = C.sgd_constants(), C.K, C.BATCH
    else:
        (keep, shift, scale), steps, draws = C.sme2_constants(substeps), C.K * substeps, 1
    args = (T(C.X0), T(keep), T(shift), T(scale))
    t0 = time.perf_counter()
    s1, s2 = kn["ar1"](*args, paths, steps, draws, seed)
    return time.perf_counter() - t0, s1, s2, steps


def mf_run(kn, T, width, replicas, steps, seed, teacher, test):
    """The timed mean-field run: initial neurons, steps, observables."""
    ta, tw = teacher
    test_x, test_y = test
    a, w = kn["mf_init"](replicas, width, C.MF_D, seed)
    nb = (width + NBLK - 1) // NBLK
    s = np.empty((replicas, width, C.MF_B), dtype=T)
    part = np.empty((replicas, nb, C.MF_B), dtype=T)
    th = np.empty((replicas, C.MF_B, C.MF_D), dtype=T)
    y = np.empty((replicas, C.MF_B), dtype=T)
    c = T(C.MF_ETA / C.MF_B)
    for k in range(steps):
        kn["mf_inputs"](th, y, ta, tw, seed * 1000003 + k)
        kn["mf_step"](a, w, th, y, c, s, part)
    return kn["mf_observe"](a, w, test_x, test_y)


def mf_given(kn, T, case):
    """The same step and observables on the inputs of a check case."""
    a = np.ascontiguousarray(case["a"], dtype=T)
    w = np.ascontiguousarray(case["w"], dtype=T)
    mr, width = a.shape
    nb = (width + NBLK - 1) // NBLK
    s = np.empty((mr, width, C.MF_B), dtype=T)
    part = np.empty((mr, nb, C.MF_B), dtype=T)
    y = np.empty((mr, C.MF_B), dtype=T)
    ta, tw = case["ta"].astype(T), case["tw"].astype(T)
    for th in case["thetas"]:
        th = np.ascontiguousarray(th, dtype=T)
        kn["mf_labels"](th, y, ta, tw)
        kn["mf_step"](a, w, th, y, T(C.MF_ETA / C.MF_B), s, part)
    risk, _ = kn["mf_observe"](a, w, case["test_x"].astype(T), case["test_y"])
    return a, w, risk


def main():
    args = C.parser(PEER).parse_args()
    if args.device not in ("auto", "cpu"):
        raise SystemExit("numba peer: cpu only (this script has no numba.cuda variant)")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    kernels("f64")["ar1"](1.0, 0.5, 0.0, 0.0, 1, 1, 1, 0)  # starts the threading layer
    device = f"cpu ({numba.get_num_threads()} threads, {numba.threading_layer()})"
    ver = dict(numba=numba.__version__, numpy=np.__version__)
    failed = False
    for dtype in C.dtypes(args.dtype):
        for job in C.expand_jobs(args.jobs, args.mf_widths):
            try:
                C.emit(run_job(args, dtype, job, device, ver))
            except Exception as e:  # one job's failure is a line, not the end of the run
                failed = True
                C.emit(C.error_record(PEER, job, dtype, device, e, **ver))
    return 1 if failed else 0


def run_job(args, dtype, job, device, ver):
    """One job at one dtype; returns its record."""
    T = np.float32 if dtype == "f32" else np.float64
    kn = kernels(dtype)
    if job in ("sgd", "sme2"):
        paths = args.paths if job == "sgd" else C.sme2_paths(args)
        run_ar1(dtype, job, min(args.warmup_paths, paths), args.seed + 99991, args.substeps)  # compile + warm-up
        sec, s1, s2, steps = run_ar1(dtype, job, paths, args.seed, args.substeps)
        mean, se = C.moments(paths, s1, s2)
        exact = C.sgd_exact_x2() if job == "sgd" else C.sme2_em_exact_x2(args.substeps)
        return C.record(PEER, job, dtype, device, paths, steps, sec, mean, se, exact, C.check(mean, se, exact), **ver)
    width = C.mf_width(job)
    replicas, steps = C.mf_shape(width, args.mf_replicas)
    ta, tw = C.mf_teacher()
    tx, ty = C.mf_test_set(ta, tw)
    teacher = (ta.astype(T), tw.astype(T))
    test = (tx.astype(T), ty)
    chk, err = C.mf_compare(C.mf_check_case(), mf_given(kn, T, C.mf_check_case()), dtype)  # compiles too
    mf_run(kn, T, width, min(replicas, 4), 1, args.seed + 99991, teacher, test)  # warm-up
    t0 = time.perf_counter()
    risk, a2 = mf_run(kn, T, width, replicas, steps, args.seed, teacher, test)
    sec = time.perf_counter() - t0
    mean = float(np.mean(a2))
    se = float(np.std(a2, ddof=1) / np.sqrt(replicas)) if replicas > 1 else None
    return C.record(PEER, job, dtype, device, replicas, width * steps, sec, mean, se, None, chk,
                    width=width, steps=steps, unit="neuron-steps", risk=float(np.mean(risk)),
                    check_detail=f"max rel. error vs numpy reference {err:.1e}", **ver)


if __name__ == "__main__":
    sys.exit(main())
