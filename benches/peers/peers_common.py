"""Shared definitions of the peer benchmarks (benches/peers/*_jobs.py): the three jobs of
`smflow bench`, their closed forms, the command line, the JSON record, and the numpy
reference step of the mean-field job that every peer's own step is checked against.

The jobs (exactly those of `src/cli/bench.rs`, `benches/numpy_baseline.py` and
`meanfield::bench_job` / `benches/numpy_meanfield_baseline.py`):

  sgd   1-D Gaussian SGD on R(x; θ) = ½ a (x − θ)², a = 1.5, θ ~ N(0.3, 0.8²), b = 2,
        η = 0.05, T = 2 (K = 40 steps), x0 = 1:  x ← x − η a (x − mean(θ_1..θ_b)).
        Path-steps per path: K = 40.
  sme2  dX = −(a + η a²/2)(X − 0.3) dt + sqrt(η/b)·a·0.8 dW, Euler–Maruyama with S = 32
        substeps per SGD step (h = η/S).  Path-steps per path: K·S = 1280.
  mf_sgd_n{n}  mean-field SGD of a tanh two-layer network f(θ) = (1/n) Σ_k a_k tanh(w_k·θ),
        d = 16, inputs streamed θ ~ N(0, I_d), labels from a 4-neuron unit-norm teacher,
        batch 8, η = 0.05, initial a_k ~ N(0, 1), w_k ~ N(0, I_d):
            r_j = f(θ_j) − y_j,  g_j = (η/b) r_j,
            a_k ← a_k − Σ_j g_j tanh(u_kj),  w_k ← w_k − Σ_j g_j a_k (1 − tanh²(u_kj)) θ_j.
        Any power-of-two width n (--mf-widths, default 2^10, 2^16), as `smflow bench`:
        n ≤ 2^10: R replicas × 20 steps; wider: max(2, R·2^12/n) replicas × 10 steps
        (R = --mf-replicas, default 64; n = 2^16 runs max(R/16, 2)).  Unit: neuron-steps =
        replicas × n × steps.  As in smflow's `bench_neuron_steps`, the timed region is
        the whole run: initial neurons, the steps, and the final observables (test risk on
        64 fixed inputs and ⟨a², ν⟩).
"""

import argparse
import json
import math
import os
import platform
import sys

try:  # run_all.py imports this module for the job names only, perhaps without numpy
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

A = 1.5
THETA_MEAN = 0.3
THETA_SD = 0.8
BATCH = 2
ETA = 0.05
HORIZON = 2.0
X0 = 1.0
SUBSTEPS = 32
K = int(round(HORIZON / ETA))  # 40

# Mean-field job (meanfield::bench_job).
MF_D = 16
MF_B = 8
MF_ETA = 0.05
MF_TEACHER = 4
MF_TEST = 64
MF_WIDTHS = (1 << 10, 1 << 16)  # default --mf-widths, as smflow bench


def mf_shape(width, replicas):
    """(replicas, steps) of `smflow bench` (`mf_size` in src/cli/bench.rs) at this width for
    --mf-replicas `replicas`: n ≤ 2^10: (R, 20); wider: (max(2, R·4096 // n), 10)."""
    if width <= 1 << 10:
        return replicas, 20
    return max(2, replicas * 4096 // width), 10


# ---------------------------------------------------------------- closed forms


def sgd_constants():
    """(keep, shift, scale): x ← keep·x + shift + scale·Σ_{i<b} z_i, z_i ~ N(0, 1)."""
    ea = ETA * A
    return 1.0 - ea, ea * THETA_MEAN, ea * THETA_SD / BATCH


def sme2_constants(substeps=SUBSTEPS):
    """(keep, shift, scale): x ← keep·x + shift + scale·z per EM substep."""
    h = ETA / substeps
    lam = A + ETA * A**2 / 2.0
    sigma = math.sqrt(ETA / BATCH) * A * THETA_SD
    return 1.0 - lam * h, lam * h * THETA_MEAN, sigma * math.sqrt(h)


def sgd_exact_x2(k=K):
    """E x_K² of the SGD recursion (x − m is an AR(1) process; numpy_baseline.py)."""
    r = 1.0 - ETA * A
    mean = THETA_MEAN + r**k * (X0 - THETA_MEAN)
    noise = (ETA * A) ** 2 * THETA_SD**2 / BATCH
    var = noise * sum(r ** (2 * j) for j in range(k))
    return mean**2 + var


def sme2_em_exact_x2(substeps=SUBSTEPS):
    """E x² of the Euler–Maruyama recursion simulated (an AR(1); numpy_baseline.py)."""
    k = K * substeps
    h = ETA / substeps
    r = 1.0 - (A + ETA * A**2 / 2.0) * h
    sig2 = ETA / BATCH * (A * THETA_SD) ** 2
    mean = THETA_MEAN + r**k * (X0 - THETA_MEAN)
    var = sig2 * h * (1.0 - r ** (2 * k)) / (1.0 - r * r)
    return mean**2 + var


def moments(n, s1, s2):
    """Mean and standard error of x² from n, Σ x², Σ x⁴."""
    mean = s1 / n
    var = max(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, math.sqrt(var / n)


def check(mean, se, exact, sigmas=4.0):
    return "pass" if abs(mean - exact) <= sigmas * se else "fail"


# ---------------------------------------------------------------- mean-field job


def mf_teacher(seed=3):
    """Teacher (a*, w*) in float64: a* ~ N(0, 1)^4, rows of w* ~ N(0, I_16) normalised."""
    rng = np.random.default_rng(seed)
    ta = rng.standard_normal(MF_TEACHER)
    tw = rng.standard_normal((MF_TEACHER, MF_D))
    tw /= np.linalg.norm(tw, axis=1, keepdims=True)
    return ta, tw


def mf_test_set(ta, tw, seed=4):
    """The fixed test set of the risk: 64 inputs θ ~ N(0, I), labels f*(θ)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((MF_TEST, MF_D))
    y = np.tanh(x @ tw.T) @ ta / MF_TEACHER
    return x, y


def mf_reference(a, w, thetas, ta, tw, test_x, test_y, eta=MF_ETA):
    """The numpy (float64) mean-field SGD of numpy_meanfield_baseline.py on given inputs
    `thetas` (steps, M, b, d), from neurons a (M, n), w (M, n, d). Returns (a, w, risk)."""
    a = np.array(a, dtype=np.float64)
    w = np.array(w, dtype=np.float64)
    m = ta.shape[0]
    width = a.shape[1]
    b = thetas.shape[2]
    c = eta / b
    for th in np.asarray(thetas, dtype=np.float64):
        y = np.tanh(th @ tw.T) @ ta / m  # (M, b)
        s = np.tanh(np.einsum("mnd,mbd->mnb", w, th))  # (M, n, b)
        r = np.einsum("mn,mnb->mb", a, s) / width - y
        g = c * r  # (M, b)
        da = -np.einsum("mb,mnb->mn", g, s)
        gw = g[:, None, :] * a[:, :, None] * (1 - s * s)  # (M, n, b)
        w -= np.einsum("mnb,mbd->mnd", gw, th)
        a += da
    f = np.einsum("mn,mtn->mt", a, np.tanh(np.einsum("mnd,td->mtn", w, test_x))) / width
    risk = 0.5 * ((f - test_y[None, :]) ** 2).mean(axis=1)
    return a, w, risk


def mf_check_case(seed=11, replicas=3, width=64, steps=3):
    """A small fixed case for the formula check: neurons, inputs, teacher, test set."""
    rng = np.random.default_rng(seed)
    ta, tw = mf_teacher()
    test_x, test_y = mf_test_set(ta, tw)
    a = rng.standard_normal((replicas, width))
    w = rng.standard_normal((replicas, width, MF_D))
    thetas = rng.standard_normal((steps, replicas, MF_B, MF_D))
    return dict(a=a, w=w, thetas=thetas, ta=ta, tw=tw, test_x=test_x, test_y=test_y)


def mf_compare(case, got, dtype):
    """`got` = (a, w, risk) of a peer on `case`; 'pass' when it matches mf_reference to
    1e-9 (f64) or 1e-4 (f32) relative to each array's largest entry. Returns
    (check, largest relative error)."""
    ref = mf_reference(**case)
    err = 0.0
    for r, g in zip(ref, got):
        g = np.asarray(g, dtype=np.float64)
        err = max(err, float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-300)))
    tol = 1e-9 if dtype == "f64" else 1e-4
    return ("pass" if err <= tol else "fail"), err


# ---------------------------------------------------------------- command line, output


def parser(peer):
    p = argparse.ArgumentParser(
        description=f"{peer} implementation of smflow bench's jobs (benches/peers/README in benches/README.md)"
    )
    p.add_argument("--jobs", default="sgd,sme2,mf",
                   help="comma-separated: sgd, sme2, mf (every --mf-widths width), mf_sgd_n<N> (N a power of two)")
    p.add_argument("--dtype", default="f64", help="f32, f64, or f32,f64")
    p.add_argument("--paths", type=int, default=1 << 20, help="paths of the sgd job (smflow bench --paths)")
    p.add_argument("--sme2-paths", type=int, default=None, help="paths of the sme2 job (default paths // 16, as smflow bench)")
    p.add_argument("--substeps", type=int, default=SUBSTEPS)
    p.add_argument("--mf-replicas", type=int, default=64,
                   help="replicas at n ≤ 2^10 (wider n runs max(2, R·4096/n): n = 2^16 runs max(R/16, 2)), as smflow bench")
    p.add_argument("--mf-widths", default=",".join(map(str, MF_WIDTHS)),
                   help="comma-separated powers of two: the widths of job `mf` (default 1024,65536, as smflow bench)")
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when available)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--warmup-paths", type=int, default=4096, help="paths of the untimed warm-up run (smflow bench: 4096)")
    return p


def power_of_two(text, what):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1 or n & (n - 1):
        raise SystemExit(f"{what}: {text!r} is not a power of two")
    return n


def mf_widths(spec):
    """The widths of --mf-widths ("1024,65536"; a list or tuple of ints passes through)."""
    if spec is None:
        return list(MF_WIDTHS)
    if isinstance(spec, (list, tuple)):
        return [power_of_two(str(w), "--mf-widths") for w in spec]
    out = [power_of_two(w.strip(), "--mf-widths") for w in spec.split(",") if w.strip()]
    if not out:
        raise SystemExit("--mf-widths: no widths")
    return out


def mf_width(job):
    """n of job `mf_sgd_n<n>`."""
    return power_of_two(job[len("mf_sgd_n"):], f"job {job!r}")


def expand_jobs(spec, widths=None):
    """Job names of --jobs `spec` in order, each once: sgd, sme2, mf_sgd_n<n>; `mf` is
    mf_sgd_n<n> for every n of `widths` (--mf-widths; default 1024,65536)."""
    out = []
    for j in spec.split(","):
        j = j.strip()
        if j == "mf":
            new = [f"mf_sgd_n{w}" for w in mf_widths(widths)]
        elif j in ("sgd", "sme2"):
            new = [j]
        elif j.startswith("mf_sgd_n"):
            new = [f"mf_sgd_n{mf_width(j)}"]
        elif j:
            raise SystemExit(f"unknown job {j!r} (sgd, sme2, mf, mf_sgd_n<N>)")
        else:
            new = []
        out += [x for x in new if x not in out]
    return out


def job_title(job):
    """The heading of a job's table (run_all.py)."""
    if job == "sgd":
        return f"sgd — 1-D Gaussian SGD, K = {K} steps; path-steps/s"
    if job == "sme2":
        return f"sme2 — SME-2 by Euler–Maruyama, K·S = {K * SUBSTEPS} substeps; path-steps/s"
    n = mf_width(job)
    _, steps = mf_shape(n, 1)
    return f"{job} — mean-field SGD, n = 2^{n.bit_length() - 1}, {steps} steps; neuron-steps/s"


def dtypes(spec):
    out = [d.strip() for d in spec.split(",") if d.strip()]
    for d in out:
        if d not in ("f32", "f64"):
            raise SystemExit(f"unknown dtype {d!r} (f32 or f64)")
    return out


def sme2_paths(args):
    return args.sme2_paths if args.sme2_paths is not None else max(args.paths // 16, 1)


def record(peer, job, dtype, device, paths, steps_per_path, seconds, mean=None, se=None, exact=None, chk="n/a", **extra):
    r = dict(
        peer=peer,
        job=job,
        dtype=dtype,
        device=device,
        paths=paths,
        seconds=seconds,
        path_steps_per_second=paths * steps_per_path / seconds,
        mean_x2=mean,
        stderr_x2=se,
        exact_x2=exact,
        check=chk,
    )
    r.update(extra)
    return r


def error_record(peer, job, dtype, device, err, **extra):
    """The line of a job that raised: no rate, check "error", the exception in "error"."""
    r = dict(peer=peer, job=job, dtype=dtype, device=device, paths=None, seconds=None,
             path_steps_per_second=None, check="error", error=f"{type(err).__name__}: {err}"[:500])
    r.update(extra)
    return r


def emit(r):
    print(json.dumps(r), flush=True)


def threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def python_version():
    return sys.version.split()[0]
