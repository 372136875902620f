#!/usr/bin/env python3
"""Time to resolve the sgd–sme2 weak order to a 95% CI of ±0.1 over η = 2^-3 … 2^-7
(multiplicative model, E x, T = 1), coupled vs independent estimator, on each backend,
in one interleaved run. A run's CI half-width scales as 1/sqrt(paths), so the paths
(and seconds, work being linear in paths) needed for ±0.1 are extrapolated from a
measured run: paths_needed = paths · (half_width / 0.1)². A fit only uses resolved points (error > 3
se), so for a run that resolves fewer than all five that figure is a lower bound; the
last columns are per point: the paths for stderr ≤ error/10 at η = 2^-7.

Usage: python3 benches/coupled_vs_independent.py [--smflow target/release/smflow]
       [--backends cpu,gpu] [--coupled-paths 10000] [--independent-paths 200000]
"""
import argparse, json, os, subprocess, sys, tempfile, time

CONFIG = {
    "experiment": "weak_order", "name": "coupled_bench",
    "model": {"kind": "multiplicative", "mean": 2.0, "std": 1.5},
    "x0": [1.0], "dynamics": ["sgd", "sme2"], "batch": 2,
    "etas": [0.125, 0.0625, 0.03125, 0.015625, 0.0078125], "horizon": 1.0,
    "observables": ["x0"], "sde": {"substeps": 8, "extrapolate": True}, "seed": 7,
}
TARGET = 0.1


def run(smflow, backend, estimator, paths, tmp):
    cfg = dict(CONFIG, estimator=estimator, paths=paths)
    path = os.path.join(tmp, f"{estimator}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    out = os.path.join(tmp, f"{backend}-{estimator}")
    t0 = time.perf_counter()
    subprocess.run([smflow, "run", path, "--backend", backend, "--out", out, "--force", "--quiet"],
                   check=True)
    wall = time.perf_counter() - t0
    r = json.load(open(os.path.join(out, "results.json")))
    o = next(o for o in r["orders"] if o["pair"] == ["sgd", "sme2"] and o["t"] == 1.0)
    half = (o["ci95"][1] - o["ci95"][0]) / 2
    need = paths * (half / TARGET) ** 2
    # Per point: paths for stderr ≤ error/10 at the smallest η (the hardest point).
    eta = min(CONFIG["etas"])
    w = next(w for w in r["weak_errors"]
             if w["pair"] == ["sgd", "sme2"] and w["eta"] == eta and w["t"] == 1.0)
    return dict(point_error=w["error"], point_stderr=w["stderr"],backend=r["adapter"].split(" [")[0] if backend == "gpu" else "cpu",
                estimator=estimator, paths=paths, wall_s=wall, order=o["order"], half_width=half,
                n_points=o["n_points"], paths_needed=need, seconds_needed=wall * need / paths)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smflow", default="target/release/smflow")
    ap.add_argument("--backends", default="cpu,gpu")
    ap.add_argument("--coupled-paths", type=int, default=10000)
    ap.add_argument("--independent-paths", type=int, default=200000)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for b in a.backends.split(","):  # interleaved: both estimators per backend
            c = run(a.smflow, b, "coupled", a.coupled_paths, tmp)
            i = run(a.smflow, b, "independent", a.independent_paths, tmp)
            # The per-point need is judged against the coupled (resolved) error: the
            # independent run's own estimate at 2^-7 is mostly noise.
            for r in (c, i):
                r["paths_point"] = r["paths"] * (r["point_stderr"] / (0.1 * c["point_error"])) ** 2
                r["seconds_point"] = r["wall_s"] * r["paths_point"] / r["paths"]
            rows += [c, i]
    print(f"{'backend':<10} {'estimator':<12} {'paths':>9} {'wall s':>8} {'order':>7} {'±CI95':>7} "
          f"{'pts':>3} {'paths for ±0.1':>15} {'s for ±0.1':>11} {'paths se≤e/10 @2^-7':>20} {'s':>9}")
    for r in rows:
        print(f"{r['backend'][:10]:<10} {r['estimator']:<12} {r['paths']:>9} {r['wall_s']:>8.1f} "
              f"{r['order']:>7.3f} {r['half_width']:>7.3f} {r['n_points']:>3} "
              f"{r['paths_needed']:>15.3g} {r['seconds_needed']:>11.3g} "
              f"{r['paths_point']:>20.3g} {r['seconds_point']:>9.3g}")
    json.dump(rows, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
