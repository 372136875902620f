#!/usr/bin/env python3
"""Vectorised numpy baseline for `smflow bench`'s mean-field job (`mf_sgd`): M replicas
of a tanh two-layer network with n neurons, d = 16, inputs streamed θ ~ N(0, I) with a
4-neuron teacher, batch 8, η = 0.05 — the job of `smflow::meanfield::bench_job`.
Reports neuron-steps per second (replicas × n × steps / s), float64 and float32.

    python3 benches/numpy_meanfield_baseline.py [--width 1024] [--replicas 64] [--steps 20]
"""
import argparse
import time

import numpy as np


def run(width, replicas, steps, dtype, seed=1):
    rng = np.random.default_rng(seed)
    d, b, eta, m = 16, 8, 0.05, 4
    ta = rng.standard_normal(m).astype(dtype)
    tw = rng.standard_normal((m, d)).astype(dtype)
    tw /= np.linalg.norm(tw, axis=1, keepdims=True)
    a = rng.standard_normal((replicas, width)).astype(dtype)
    w = rng.standard_normal((replicas, width, d)).astype(dtype)
    c = dtype(eta / b)
    t0 = time.perf_counter()
    for _ in range(steps):
        th = rng.standard_normal((replicas, b, d)).astype(dtype)
        y = np.tanh(th @ tw.T) @ ta / m  # (M, b)
        s = np.tanh(np.einsum("mnd,mbd->mnb", w, th))  # (M, n, b)
        r = np.einsum("mn,mnb->mb", a, s) / width - y
        g = c * r  # (M, b)
        da = -np.einsum("mb,mnb->mn", g, s)
        gw = g[:, None, :] * a[:, :, None] * (1 - s * s)  # (M, n, b)
        w -= np.einsum("mnb,mbd->mnd", gw, th)
        a += da
    dt = time.perf_counter() - t0
    assert np.isfinite(a).all()
    return replicas * width * steps / dt


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--replicas", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    for dtype in (np.float64, np.float32):
        run(a.width, min(a.replicas, 4), 2, dtype)  # warm-up
        rate = run(a.width, a.replicas, a.steps, dtype)
        print(f"numpy {dtype.__name__} mf_sgd width {a.width} replicas {a.replicas}: {rate:.3e} neuron-steps/s")


if __name__ == "__main__":
    main()
