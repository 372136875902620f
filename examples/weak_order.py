"""A weak-order study from Python, notebook style: SGD against SME1, SME2 and SMF2 on
the quickstart's multiplicative model — configs/quickstart.json written as a dict, the
same 10 000 paths and seed, so it reproduces the quickstart's numbers and figure (under
a second on the CPU backend). Saves the figure (weak error vs step size, log-log, with
the fitted orders) to the path given on the command line; PATHS overrides the paths.

    pip install .  (and matplotlib)
    python examples/weak_order.py weak_order.png [PATHS]
"""

import sys

import matplotlib

matplotlib.use("Agg")  # a file, no window
import matplotlib.pyplot as plt  # noqa: E402

import smflow  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "weak_order.png"
paths = int(sys.argv[2]) if len(sys.argv) > 2 else 10000

config = {
    "experiment": "weak_order",
    "name": "quickstart",
    "model": {"kind": "multiplicative", "mean": 2.0, "std": 1.5},
    "x0": [1.0],
    "dynamics": ["sgd", "sme1", "sme2", "smf2"],
    "batch": 2,
    "etas": [0.125, 0.0625, 0.03125, 0.015625, 0.0078125],
    "horizon": 1.0,
    "observables": ["x0"],
    "paths": paths,
    "sde": {"substeps": 8, "extrapolate": True},
    "seed": 1,
}

result = smflow.run(config, backend="cpu", progress=False)
print(result)
horizon = result.weak_errors["t"].max()
print(result.weak_errors[result.weak_errors["t"] == horizon]
      [["pair_a", "pair_b", "eta", "error", "stderr", "resolved"]].to_string(index=False))
print(result.orders[["pair_a", "pair_b", "observable", "order", "ci95_lo", "ci95_hi"]]
      .to_string(index=False))

ax = result.plot()
ax.figure.savefig(out, dpi=120, bbox_inches="tight")
plt.close(ax.figure)
print(f"saved {out}")
