"""smflow from Python: run the smflow engine and get its results as pandas DataFrames.

The native module (``smflow._smflow``) runs the command line's own code path
(``smflow run CONFIG --out DIR ...``) in this process, with the GIL released, so the
numbers are the CLI's bit for bit; this module chooses the arguments and reads the
files the run wrote back into a :class:`Result`.

>>> import smflow
>>> r = smflow.run("configs/quickstart.json", backend="cpu", paths=2000)
>>> r.orders            # fitted weak orders (pandas DataFrame)
>>> r.weak_errors       # weak_error.csv
>>> ax = r.plot()       # log-log weak error vs eta, per pair (needs matplotlib)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from ._smflow import ConfigError, Error, __version__
from ._smflow import cli as _cli
from ._smflow import devices as _devices

__all__ = [
    "run",
    "compare",
    "merge",
    "devices",
    "Result",
    "ConfigError",
    "Error",
    "__version__",
]

ConfigLike = Union[Mapping[str, Any], str, "os.PathLike[str]"]

# Attribute names that differ from a CSV's stem (the file stays the key of .tables).
_ALIASES = {"weak_errors": "weak_error", "cells": "width_sweep"}

# The main figure of the experiments other than weak-order studies, by the table that
# holds it (the first present wins): x, y, y's standard error, the columns whose values
# make one series each, whether only the last time is drawn, log axes (x, y), and rows
# kept ({column: value}, where the column exists).
_FIGURES = [
    ("width_sweep", "width", "n_var", "n_var_stderr", ["dynamics", "eta", "observable"],
     True, (True, True), {}),
    ("risk_mc", "t", "risk", "stderr", ["dynamics", "eta"], False, (False, False), {}),
    ("distances", "t", "distance", None, ["eta", "reference"], False, (False, True),
     {"reference": "gf"}),
    ("invariant_bins", "x", "empirical_density", "empirical_stderr",
     ["dynamics", "eta", "coordinate"], False, (False, False), {}),
    ("correlations", "t", "correlation", "stderr",
     ["dynamics", "eta", "particle_p", "particle_q"], False, (False, False), {}),
]


def _is_json_text(config: str) -> bool:
    return config.lstrip().startswith("{")


def _config_path(config: ConfigLike, tmp: Path) -> str:
    """The path of a config file for the CLI: the path given, or a file in `tmp` holding
    the dict or JSON text (named run.json, so a config without "name" is named "run",
    the CLI's own fallback)."""
    if isinstance(config, Mapping):
        text = json.dumps(config)
    elif isinstance(config, str) and _is_json_text(config):
        text = config
    elif isinstance(config, (str, os.PathLike)):
        return os.fspath(config)
    else:
        raise TypeError(
            f"config must be a dict, a JSON string or a path, not {type(config).__name__}"
        )
    p = tmp / "run.json"
    p.write_text(text, encoding="utf-8")
    return str(p)


def _opt(flag: str, value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        # The CLI would refuse "True" too; say so in its words rather than run seed 1.
        value = str(value).lower()
    return [flag, str(value)]


def _read_csv(path: Path):
    import pandas as pd

    # The CSVs hold shortest round-tripping decimals. pandas < 3's default fast parser
    # can be one ulp off; "round_trip" gives the engine's f64 exactly (pandas 3 parses
    # exactly by default and deprecates the option).
    if int(pd.__version__.split(".")[0]) < 3:
        return pd.read_csv(path, float_precision="round_trip")
    return pd.read_csv(path)


# The columns of .orders (results.json's orders[], pair and ci95 split), also when a
# study fitted no order.
_ORDER_COLUMNS = [
    "pair_a", "pair_b", "observable", "t", "order", "stderr", "ci95_lo", "ci95_hi",
    "n_points", "intercept",
]


def _frame(rows: Any, empty_columns: Optional[List[str]] = None):
    """A DataFrame from results.json rows, with 2-element lists (pair, ci95) split into
    columns the way the CSVs split them (pair_a, pair_b; ci95_lo, ci95_hi)."""
    import pandas as pd

    names = {"pair": ("pair_a", "pair_b"), "ci95": ("ci95_lo", "ci95_hi")}
    flat = []
    for row in rows or []:
        out = {}
        for k, v in row.items():
            if k in names and isinstance(v, list) and len(v) == 2:
                out[names[k][0]], out[names[k][1]] = v
            else:
                out[k] = v
        flat.append(out)
    if not flat and empty_columns:
        return pd.DataFrame(columns=empty_columns)
    return pd.DataFrame(flat)


def _raw_field(key: str) -> property:
    """A read-only attribute holding results.json's field `key` (or None)."""
    return property(lambda self: self.raw.get(key), doc=f"results.json's {key!r}")


def _paired_as_errors(p):
    """n_point's paired.csv as weak-error rows: pair (reference, dynamics), observable
    named as results.json's orders name it ("mean_dist2[0,1]", "n_var"), error
    |difference|; rows without a positive finite difference (a correlation of ±1 for
    both runs) have nothing to draw on log axes."""
    import numpy as np
    import pandas as pd

    pq = [
        "" if pd.isna(a) else f"[{int(a)},{int(b)}]"
        for a, b in zip(p["particle_p"], p["particle_q"])
    ]
    we = pd.DataFrame({
        "pair_a": p["reference"],
        "pair_b": p["dynamics"],
        "observable": p["quantity"] + pd.Series(pq, index=p.index),
        "t": p["t"],
        "eta": p["eta"],
        "error": p["difference"].abs(),
        "stderr": p["stderr"],
        "resolved": p["resolved"],
    })
    return we[np.isfinite(we["error"]) & (we["error"] > 0)]


class Result:
    """The outputs of one run (or merge): ``raw`` is results.json as a dict, every CSV
    the run wrote is a DataFrame in ``tables`` (keyed by file stem) and an attribute of
    the same name (``.points``, ``.correlations``, ``.pairs`` ...; ``.weak_errors`` is
    weak_error.csv), and ``.orders`` holds the fitted orders of a weak-order study."""

    def __init__(self, raw: Dict[str, Any], tables: Dict[str, Any], out: Optional[Path]):
        self.raw = raw
        self.tables = dict(tables)
        if "orders" not in self.tables:
            orders = raw.get("orders")
            if orders is None and isinstance(raw.get("results"), dict):
                orders = raw["results"].get("orders")
            if isinstance(orders, list):
                self.tables["orders"] = _frame(orders, _ORDER_COLUMNS)
            elif isinstance(orders, dict) and all(
                isinstance(v, (int, float)) or v is None for v in orders.values()
            ):
                # gd_vs_gf: {comparison: fitted order}.
                import pandas as pd

                self.tables["orders"] = pd.DataFrame(
                    {"comparison": list(orders), "order": list(orders.values())}
                )
        #: The output directory, or None when the run wrote into a temporary one.
        self.out = out

    @classmethod
    def _read(cls, directory: Path, keep: bool) -> "Result":
        done = directory / "progress" / "done.json"
        if not (directory / "results.json").exists() and done.exists():
            # A shard of an experiment that saves jobs (finite-data, width_sweep,
            # invariant): its jobs are its output, for merge; no statistics, no tables.
            run = json.loads((directory / "progress" / "run.json").read_text(encoding="utf-8"))
            d = json.loads(done.read_text(encoding="utf-8"))
            raw = {
                "experiment": run["id"]["config"].get("experiment"),
                "shard": run["id"].get("shard"),
                "jobs": d["jobs"],
                "wall_seconds": d["wall_seconds"],
            }
            return cls(raw, {}, directory if keep else None)
        raw = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        tables = {p.stem: _read_csv(p) for p in sorted(directory.glob("*.csv"))}
        return cls(raw, tables, directory if keep else None)

    # results.json's run description (None where the experiment does not write it)
    experiment = _raw_field("experiment")
    name = _raw_field("name")
    backend = _raw_field("backend")
    adapter = _raw_field("adapter")
    precision = _raw_field("precision")
    wall_seconds = _raw_field("wall_seconds")
    seed = _raw_field("seed")

    @property
    def warnings(self) -> List[str]:
        return list(self.raw.get("warnings") or [])

    @property
    def config(self) -> Any:
        return self.raw.get("config")

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: the tables.
        if name.startswith("__"):
            raise AttributeError(name)
        tables = self.__dict__.get("tables", {})
        key = _ALIASES.get(name, name)
        if key in tables:
            return tables[key]
        raise AttributeError(
            f"this {self.experiment or 'run'} result has no table {name!r} "
            f"(tables: {', '.join(sorted(tables)) or 'none'})"
        )

    def __dir__(self):
        extra = set(self.tables)
        extra |= {a for a, k in _ALIASES.items() if k in self.tables}
        return sorted(set(super().__dir__()) | extra)

    def __repr__(self) -> str:
        return (
            f"<smflow.Result {self.name!r} [{self.experiment}] backend {self.backend} "
            f"({self.precision}), {self.wall_seconds:.3g} s; tables: "
            f"{', '.join(sorted(self.tables))}>"
            if isinstance(self.wall_seconds, (int, float))
            else f"<smflow.Result {self.name!r} [{self.experiment}]; tables: "
            f"{', '.join(sorted(self.tables))}>"
        )

    def plot(self, ax=None, *, t: Optional[float] = None, observable: Optional[str] = None):
        """Draws the experiment's main figure with matplotlib and returns the Axes.

        Weak-order studies: the weak error against eta on log-log axes at time ``t``
        (default: the horizon), one series per (pair, observable), error bars of ±2
        standard errors, hollow markers where the error is not resolved (error ≤ 3
        stderr), and the fitted lines ``exp(intercept)·eta^order``. n_point with the
        coupled estimator: its paired |SGD − SMF| the same way. Other experiments:
        their main table, one series per dynamics (and eta, observable ...): width_sweep
        n·Var against the width at the horizon, least_squares_risk the risk, gd_vs_gf
        the distances and n_point the correlations against t, invariant the histogram;
        any other the numeric columns of its first table against the first one."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Result.plot() needs matplotlib: pip install matplotlib "
                "(or pip install 'smflow[plot]')"
            ) from e
        if ax is None:
            _, ax = plt.subplots()
        if "weak_error" in self.tables and len(self.tables["weak_error"]):
            return self._plot_weak_error(ax, t, observable)
        if "paired" in self.tables and len(self.tables["paired"]):
            return self._plot_weak_error(
                ax, t, observable, _paired_as_errors(self.tables["paired"]),
                "paired |SGD − SMF| of the joint statistic",
            )
        return self._plot_table(ax)

    def _plot_weak_error(self, ax, t, observable, we=None,
                         ylabel="weak error |E g(a) − E g(b)|"):
        import numpy as np

        we = self.tables["weak_error"] if we is None else we
        horizon = we["t"].max() if t is None else t
        we = we[we["t"] == horizon]
        if observable is not None:
            we = we[we["observable"] == observable]
        orders = self.tables.get("orders")
        groups = we.groupby(["pair_a", "pair_b", "observable"], sort=False)
        for i, ((a, b, obs), g) in enumerate(groups):
            color, marker = f"C{i % 10}", "osD^v<>ph*"[i % 10]
            g = g.sort_values("eta")
            label = f"{a}–{b} {obs}"
            fit = None
            if orders is not None and len(orders):
                m = orders[
                    (orders["pair_a"] == a)
                    & (orders["pair_b"] == b)
                    & (orders["observable"] == obs)
                    & (orders["t"] == horizon)
                ]
                if len(m):
                    fit = m.iloc[0]
                    label += f": order {fit['order']:.2f} [{fit['ci95_lo']:.2f}, {fit['ci95_hi']:.2f}]"
            ax.errorbar(
                g["eta"], g["error"], yerr=2 * g["stderr"], fmt="none", capsize=3,
                color=color,
            )
            res = g["resolved"].astype(bool)
            ax.plot(g["eta"][res], g["error"][res], marker, color=color, label=label)
            ax.plot(g["eta"][~res], g["error"][~res], marker, mfc="none", color=color)
            if fit is not None:
                eta = np.geomspace(g["eta"].min(), g["eta"].max(), 50)
                ax.plot(eta, np.exp(fit["intercept"]) * eta ** fit["order"], "-", color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("η")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{self.name} [{self.experiment}] at t = {horizon:g}")
        ax.legend(fontsize="small")
        return ax

    def _plot_table(self, ax):
        import pandas as pd

        if not self.tables:
            raise ValueError("this result has no table to plot")
        for key, x, y, err, groups, last_t, (logx, logy), keep in _FIGURES:
            df = self.tables.get(key)
            if df is not None and len(df) and y in df.columns:
                break
        else:
            # Any other table: its numeric columns against the first one.
            key, df = next(iter(self.tables.items()))
            num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
                   and not pd.api.types.is_bool_dtype(df[c])]
            if len(num) < 2:
                raise ValueError(f"table {key!r} has fewer than two numeric columns to plot")
            for c in num[1:]:
                ax.plot(df[num[0]], df[c], "o-", label=c)
            ax.set_xlabel(num[0])
            ax.set_title(f"{self.name} [{self.experiment}]: {key}")
            ax.legend(fontsize="small")
            return ax
        if x == "x" and "x" not in df.columns:  # histogram bins: their centres
            df = df.assign(x=(df["lo"] + df["hi"]) / 2)
        title = f"{self.name} [{self.experiment}]: {key}"
        for c, v in keep.items():
            if c in df.columns and (df[c] == v).any():
                df = df[df[c] == v]
                title += f" ({c} {v})"
        if last_t and "t" in df.columns:
            df = df[df["t"] == df["t"].max()]
            title += f" at t = {df['t'].max():g}"
        groups = [g for g in groups if g in df.columns]
        parts = df.groupby(groups, sort=False) if groups else [((), df)]
        for i, (names, g) in enumerate(parts):
            names = names if isinstance(names, tuple) else (names,)
            label = " ".join(f"{c}={v}" if c in ("eta", "particle_p", "particle_q") else str(v)
                             for c, v in zip(groups, names))
            g = g.sort_values(x)
            yerr = 2 * g[err] if err and err in g.columns else None
            ax.errorbar(g[x], g[y], yerr=yerr, fmt="o-", ms=3, capsize=2,
                        color=f"C{i % 10}", label=label or None)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        ax.set_xlabel(x if x != "x" else "bin centre")
        ax.set_ylabel(y + (" (±2 se)" if err else ""))
        ax.set_title(title)
        if groups:
            ax.legend(fontsize="small")
        return ax


class _OutDir:
    """`out` given: that directory, kept. `out=None`: a temporary one, removed after."""

    def __init__(self, out: Optional[Union[str, "os.PathLike[str]"]]):
        self._tmp = tempfile.mkdtemp(prefix="smflow-")
        self.keep = out is not None
        # A fresh subdirectory: the CLI creates it (and refuses a non-empty one).
        self.path = Path(out) if out is not None else Path(self._tmp) / "out"
        self.scratch = Path(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self._tmp, ignore_errors=True)
        return False


def run(
    config: ConfigLike,
    *,
    backend: str = "auto",
    paths: Optional[int] = None,
    seed: Optional[int] = None,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    progress: bool = True,
    force: bool = False,
    shard: Optional[str] = None,
) -> Result:
    """Runs the experiment of ``config`` (a dict, a JSON string or a path to a JSON
    file), as ``smflow run CONFIG --backend BACKEND [--paths M] [--seed S] --out DIR``
    does, and returns its :class:`Result`.

    ``out=None`` runs into a temporary directory that is removed once the results are
    read (nothing is left on disk); ``out=DIR`` keeps the CLI's files there (``force``
    empties a non-empty DIR first, as ``--force``). ``shard="i/N"`` runs one shard
    (combine with :func:`merge`; give ``out``). A shard of an experiment that saves
    jobs (the finite-data ones, ``width_sweep``, ``invariant``) writes no statistics:
    its :class:`Result` has ``raw`` = {experiment, shard, jobs, wall_seconds} and no
    tables.

    Progress: with tqdm installed and stderr a terminal, or in a notebook, a tqdm bar
    over path-steps (and the CLI prints nothing); without tqdm, the CLI's own backend
    line, bar (on a terminal) and summary; ``progress=False``: nothing at all.

    Ctrl-C (KeyboardInterrupt) stops the run at its next progress increment (a work
    unit; well under a second for the shipped configs on the CPU) and is raised here;
    the output directory then holds no results.json (``out=None``: nothing at all).

    Raises :class:`ConfigError` (a ``ValueError``) for bad input, with the message the
    CLI prints after ``error:``, and :class:`Error` for any other failure."""
    with _OutDir(out) as d:
        args = ["run", _config_path(config, d.scratch), "--out", str(d.path)]
        args += ["--backend", str(backend)]
        args += _opt("--paths", paths) + _opt("--seed", seed) + _opt("--shard", shard)
        if force:
            args.append("--force")
        bar = _tqdm_bar() if progress else None
        if not progress or bar is not None:
            args.append("--quiet")
        try:
            _cli(args, bar)
        finally:
            if bar is not None:
                bar.close()
        return Result._read(d.path, d.keep)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _TqdmProgress:
    """A tqdm bar over path-steps, updated by the engine's progress increments."""

    def __init__(self, tqdm_cls):
        self._tqdm_cls = tqdm_cls
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._tqdm_cls(
                total=total, unit="path-step", unit_scale=True, desc="smflow", leave=False
            )
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _tqdm_bar() -> Optional[_TqdmProgress]:
    """A tqdm progress callback when tqdm is installed and the output is a terminal or
    a notebook, else None."""
    import sys

    notebook = _in_notebook()
    if not notebook and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    try:
        if notebook:
            from tqdm.auto import tqdm  # type: ignore
        else:
            from tqdm import tqdm  # type: ignore
    except ImportError:
        return None
    return _TqdmProgress(tqdm)


def compare(
    config: ConfigLike,
    *,
    paths: Optional[int] = None,
    seed: Optional[int] = None,
    sample: Optional[int] = None,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    quiet: bool = False,
) -> Dict[str, Any]:
    """Runs the same replicas on the cpu and gpu backends (``smflow compare``) and
    returns compare.json as a dict. A failed comparison raises :class:`Error` whose
    ``result`` attribute holds that dict; no usable GPU raises :class:`ConfigError`.
    The CLI's table and verdict are printed unless ``quiet`` (``--quiet``)."""
    with _OutDir(out) as d:
        args = ["compare", _config_path(config, d.scratch), "--out", str(d.path)]
        args += _opt("--paths", paths) + _opt("--seed", seed) + _opt("--sample", sample)
        if quiet:
            args.append("--quiet")
        path = d.path / "compare.json"
        try:
            _cli(args)
        except Error as e:
            if path.exists():
                e.result = json.loads(path.read_text(encoding="utf-8"))
            raise
        return json.loads(path.read_text(encoding="utf-8"))


def merge(
    dirs: Iterable[Union[str, "os.PathLike[str]"]],
    *,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    force: bool = False,
    progress: bool = True,
) -> Result:
    """Combines the output directories of ``run(..., shard="i/N", out=DIR)`` into one
    run's results (``smflow merge``), bit for bit what the unsharded run gives."""
    with _OutDir(out) as d:
        args = ["merge", *[os.fspath(x) for x in dirs], "--out", str(d.path)]
        if force:
            args.append("--force")
        if not progress:
            args.append("--quiet")
        _cli(args)
        return Result._read(d.path, d.keep)


def devices() -> List[str]:
    """The lines ``smflow devices`` prints: every GPU adapter wgpu sees, the one
    ``backend="gpu"`` opens (``default gpu: ...``) and the CPU backend (``cpu: ...``)."""
    return list(_devices())
