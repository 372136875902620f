#!/usr/bin/env python3
"""PyTorch peer of `smflow bench`'s finite-data job `data_sgd` (as a researcher would
write it: all replicas at once, gather + two einsums per step, in place).

Linear regression, N = 1000 samples, d = 100 Gaussian features, label noise 0.5;
minibatch SGD with replacement, b = 10, η = 0.01, K = 100 steps from w = 0, M replicas.
Prints one JSON line: replica-steps per second and the mean final risk ‖w − β*‖² (the
same sanity figure as benches/numpy_train_baseline.py). The timed part is the steps.
"""

import argparse
import json
import math
import time

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replicas", type=int, default=4096)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--eta", type=float, default=0.01)
    p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dt = torch.float32 if a.dtype == "f32" else torch.float64
    g = torch.Generator().manual_seed(7)
    x = torch.randn(a.n, a.d, generator=g, dtype=dt)
    beta = torch.randn(a.d, generator=g, dtype=dt)
    y = x @ beta + 0.5 * torch.randn(a.n, generator=g, dtype=dt)
    w = torch.zeros(a.replicas, a.d, dtype=dt)
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(a.steps):
            idx = torch.randint(0, a.n, (a.replicas, a.batch), generator=g)
            xb = x[idx]  # M × b × d
            r = torch.einsum("mbd,md->mb", xb, w) - y[idx]
            w.sub_(torch.einsum("mb,mbd->md", r, xb), alpha=a.eta / a.batch)
        seconds = time.perf_counter() - t0
    risk = ((w - beta) ** 2).sum(dim=1)
    print(json.dumps(dict(
        job="data_sgd", impl="torch", dtype=a.dtype, threads=a.threads,
        replicas=a.replicas, steps=a.steps, seconds=seconds,
        path_steps_per_second=a.replicas * a.steps / seconds,
        mean_risk=float(risk.mean()), stderr_risk=float(risk.std() / math.sqrt(risk.numel())),
        torch=torch.__version__,
    )))


if __name__ == "__main__":
    main()
