#!/usr/bin/env python3
"""Vectorised numpy baseline of `smflow bench`'s finite-data job `data_sgd`.

Linear regression on a data set of N = 1000 samples, d = 100 Gaussian features, dense
teacher, label noise 0.5; minibatch SGD with replacement, batch b = 10, η = 0.01,
K = 100 steps from w = 0, for M replicas at once (float64, one core):

    idx ~ U{0..N-1}^(M×b);  r = <X[idx], w> − y[idx];  w ← w − η/b Σ_j r_j X[idx_j]

Prints one JSON line with path-steps/s (replica-steps per second) and the mean final
risk ‖w − β*‖² (± stderr) so the job can be checked for sanity against smflow's.
`seconds` covers the index draws, gathers and updates, not data generation.
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replicas", type=int, default=4096)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--eta", type=float, default=0.01)
    p.add_argument("--chunk", type=int, default=1024, help="replicas per chunk")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    x = rng.standard_normal((a.n, a.d))
    beta = rng.standard_normal(a.d)
    y = x @ beta + 0.5 * rng.standard_normal(a.n)
    risks = []
    t0 = time.perf_counter()
    done = 0
    while done < a.replicas:
        m = min(a.chunk, a.replicas - done)
        w = np.zeros((m, a.d))
        for _ in range(a.steps):
            idx = rng.integers(0, a.n, size=(m, a.batch))
            xb = x[idx]  # m × b × d
            r = np.einsum("mbd,md->mb", xb, w) - y[idx]
            w -= (a.eta / a.batch) * np.einsum("mb,mbd->md", r, xb)
        risks.append(((w - beta) ** 2).sum(axis=1))
        done += m
    seconds = time.perf_counter() - t0
    risk = np.concatenate(risks)
    print(json.dumps(dict(
        job="data_sgd", replicas=a.replicas, steps=a.steps, n=a.n, d=a.d, batch=a.batch,
        seconds=seconds, path_steps_per_second=a.replicas * a.steps / seconds,
        mean_risk=float(risk.mean()), stderr_risk=float(risk.std(ddof=1) / math.sqrt(risk.size)),
        numpy=np.__version__,
    )))


if __name__ == "__main__":
    main()
