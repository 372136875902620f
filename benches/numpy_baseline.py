#!/usr/bin/env python3
"""Vectorised numpy baseline for `smflow bench` (see benches/README.md).

Runs the same two jobs as `cargo run --release -- bench`, in float64 numpy:

  sgd   1-D Gaussian SGD on the quadratic model R(x; θ) = ½ a (x − θ)², a = 1.5,
        θ ~ N(0.3, 0.8²), batch b = 2, η = 0.05, T = 2 (K = 40 steps), x0 = 1:
            x ← x − η a (x − mean(θ_1..θ_b)),  b fresh normals per step per path.
  sme2  the second-order stochastic modified equation of the same SGD,
            dX = −(a + η a²/2)(X − m) dt + sqrt(η/b) · a · 0.8 dW,  m = 0.3,
        by Euler–Maruyama with S = 32 substeps per SGD step (h = η/S), so K·S = 1280
        path-steps per path (fine SDE substeps count as steps, as in smflow).

Paths are processed in chunks (default 2^18) to bound memory; the observable is
E x² at T. Each job prints one JSON line:

  {"job": ..., "paths": M, "steps": K, "substeps": S, "seconds": s,
   "path_steps_per_second": x, "mean_x2": ..., "stderr_x2": ..., "exact_x2": ...,
   "sde_exact_x2": ... (sme2 only), "numpy": version}

`exact_x2` is the closed-form E x² of the recursion simulated (SGD, or the EM scheme),
so |mean_x2 − exact_x2| should be within a few stderr_x2; `sde_exact_x2` is E X_T² of
the SME2 itself (an Ornstein–Uhlenbeck process).

`seconds` covers random-number generation and the updates (not the Python start-up or
the import); path_steps = M·K·S. numpy runs these element-wise ops and its generator
on one core. Like `smflow bench`, the sme2 job uses paths/16 paths by default.
"""

import argparse
import json
import math
import sys
import time

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("numpy is required: pip install numpy")

A = 1.5
THETA_MEAN = 0.3
THETA_SD = 0.8
BATCH = 2
ETA = 0.05
HORIZON = 2.0
X0 = 1.0


def n_steps(eta, horizon):
    return int(round(horizon / eta))


def sgd_exact_x2(eta, k):
    """E x_K² for the SGD recursion (closed form: x − m is an AR(1) process)."""
    r = 1.0 - eta * A
    mean = THETA_MEAN + r**k * (X0 - THETA_MEAN)
    noise = (eta * A) ** 2 * THETA_SD**2 / BATCH
    var = noise * sum(r ** (2 * j) for j in range(k))
    return mean**2 + var


def sme2_em_exact_x2(eta, horizon, substeps):
    """E x² of the Euler–Maruyama recursion actually simulated (also an AR(1))."""
    k = n_steps(eta, horizon) * substeps
    h = eta / substeps
    r = 1.0 - (A + eta * A**2 / 2.0) * h
    sig2 = eta / BATCH * (A * THETA_SD) ** 2
    mean = THETA_MEAN + r**k * (X0 - THETA_MEAN)
    var = sig2 * h * (1.0 - r ** (2 * k)) / (1.0 - r * r)
    return mean**2 + var


def sme2_exact_x2(eta, horizon):
    """E X_T² for the SME2 (an Ornstein–Uhlenbeck process; not the EM discretisation)."""
    lam = A + eta * A**2 / 2.0
    sig2 = eta / BATCH * (A * THETA_SD) ** 2
    mean = THETA_MEAN + math.exp(-lam * horizon) * (X0 - THETA_MEAN)
    var = sig2 / (2.0 * lam) * (1.0 - math.exp(-2.0 * lam * horizon))
    return mean**2 + var


class Moments:
    """Sum and sum of squares of x² over chunks (float64; fine for these sizes)."""

    def __init__(self):
        self.n = 0
        self.s1 = 0.0
        self.s2 = 0.0

    def add(self, x):
        g = x * x
        self.n += g.size
        self.s1 += float(g.sum())
        self.s2 += float(np.dot(g, g))

    def mean_stderr(self):
        mean = self.s1 / self.n
        var = max(self.s2 / self.n - mean * mean, 0.0) * self.n / max(self.n - 1, 1)
        return mean, math.sqrt(var / self.n)


def run_sgd(rng, paths, chunk):
    k = n_steps(ETA, HORIZON)
    ea = ETA * A
    keep = 1.0 - ea
    shift = ea * THETA_MEAN
    scale = ea * THETA_SD / BATCH  # η a · 0.8 · mean of b standard normals
    mom = Moments()
    z = np.empty(BATCH * chunk)
    noise = np.empty(chunk)
    t0 = time.perf_counter()
    done = 0
    while done < paths:
        n = min(chunk, paths - done)
        x = np.full(n, X0)
        zn = z[: BATCH * n].reshape(BATCH, n)  # contiguous for the final short chunk
        nn = noise[:n]
        for _ in range(k):
            rng.standard_normal(out=zn)
            np.sum(zn, axis=0, out=nn)
            nn *= scale
            nn += shift
            x *= keep
            x += nn
        mom.add(x)
        done += n
    seconds = time.perf_counter() - t0
    mean, se = mom.mean_stderr()
    return dict(
        job="sgd",
        paths=paths,
        steps=k,
        substeps=1,
        seconds=seconds,
        path_steps_per_second=paths * k / seconds,
        mean_x2=mean,
        stderr_x2=se,
        exact_x2=sgd_exact_x2(ETA, k),
    )


def run_sme2(rng, paths, chunk, substeps):
    k = n_steps(ETA, HORIZON)
    h = ETA / substeps
    lam = A + ETA * A**2 / 2.0
    keep = 1.0 - lam * h
    shift = lam * h * THETA_MEAN
    sigma = math.sqrt(ETA / BATCH) * A * THETA_SD
    scale = sigma * math.sqrt(h)
    mom = Moments()
    z = np.empty(chunk)
    t0 = time.perf_counter()
    done = 0
    while done < paths:
        n = min(chunk, paths - done)
        x = np.full(n, X0)
        zn = z[:n]
        for _ in range(k * substeps):
            rng.standard_normal(out=zn)
            zn *= scale
            zn += shift
            x *= keep
            x += zn
        mom.add(x)
        done += n
    seconds = time.perf_counter() - t0
    mean, se = mom.mean_stderr()
    return dict(
        job="sme2",
        paths=paths,
        steps=k,
        substeps=substeps,
        seconds=seconds,
        path_steps_per_second=paths * k * substeps / seconds,
        mean_x2=mean,
        stderr_x2=se,
        exact_x2=sme2_em_exact_x2(ETA, HORIZON, substeps),
        sde_exact_x2=sme2_exact_x2(ETA, HORIZON),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--paths", type=int, default=1_000_000, help="paths for the sgd job")
    p.add_argument(
        "--sme2-paths",
        type=int,
        default=None,
        help="paths for the sme2 job (default: paths // 16, as smflow bench)",
    )
    p.add_argument("--substeps", type=int, default=32, help="EM substeps per SGD step")
    p.add_argument("--chunk", type=int, default=1 << 18, help="paths per chunk")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--jobs", default="sgd,sme2", help="comma-separated: sgd, sme2")
    a = p.parse_args()
    if a.paths < 1 or a.chunk < 1 or a.substeps < 1:
        p.error("--paths, --chunk and --substeps must be positive")
    sme2_paths = a.sme2_paths if a.sme2_paths is not None else max(a.paths // 16, 1)
    rng = np.random.default_rng(a.seed)
    for job in a.jobs.split(","):
        job = job.strip()
        if job == "sgd":
            r = run_sgd(rng, a.paths, min(a.chunk, a.paths))
        elif job == "sme2":
            r = run_sme2(rng, sme2_paths, min(a.chunk, sme2_paths), a.substeps)
        else:
            p.error(f"unknown job {job!r}")
        r["numpy"] = np.__version__
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
