"""smflow.run against the CLI: the same files and numbers bit for bit, the tables as
DataFrames, the attributes of Result, out=None leaving nothing, progress=False silent."""

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

import smflow
from conftest import SMALL

# pandas < 3 parses floats exactly only with float_precision="round_trip" (pandas 3
# parses exactly by default and deprecates the option).
ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

# Timings: the only fields two runs of the same config and seed may differ in.
TIMINGS = {"wall_seconds", "path_steps_per_second"}


def _json_without(path: Path, drop):
    doc = json.loads(path.read_text())
    return {k: v for k, v in doc.items() if k not in drop}


def assert_same_outputs(a: Path, b: Path):
    """Every file of run directory `a` equals `b`'s byte for byte, but for timings."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert "results.json" in names
    for n in names:
        if n == "results.json":
            assert _json_without(a / n, TIMINGS) == _json_without(b / n, TIMINGS)
        elif n == "partials.json":
            # Sealed with a digest over the wall time too.
            drop = TIMINGS | {"digest"}
            assert _json_without(a / n, drop) == _json_without(b / n, drop)
        elif (a / n).is_file():
            assert (a / n).read_bytes() == (b / n).read_bytes(), n


# Experiments small enough for a test, each with its --paths.
EXPERIMENTS = [
    ("quickstart", 2000),
    ("n_point", 512),
    ("n_point_paired", 512),
    ("gd_vs_gf", 256),
    ("invariant_1d", 256),
    ("weak_order_data", 256),
    ("least_squares_risk", 64),
]


def check_against_cli(tmp_path, cli, config: Path, paths: int):
    """Runs `config` with the CLI and with smflow.run (same paths and seed): the same
    files, and one DataFrame per CSV with its header and exactly its numbers."""
    c = cli("run", config, "--backend", "cpu", "--paths", paths, "--seed", 11,
            "--out", tmp_path / "cli", "--quiet")
    assert c.returncode == 0, c.stderr
    r = smflow.run(config, backend="cpu", paths=paths, seed=11, out=tmp_path / "py",
                   progress=False)
    assert_same_outputs(tmp_path / "cli", tmp_path / "py")
    assert r.out == tmp_path / "py"
    csvs = sorted((tmp_path / "cli").glob("*.csv"))
    assert csvs
    assert set(p.stem for p in csvs) <= set(r.tables)
    for p in csvs:
        df = r.tables[p.stem]
        header = p.read_text().splitlines()[0].split(",")
        assert list(df.columns) == header
        pdt.assert_frame_equal(df, pd.read_csv(p, **ROUND_TRIP), check_exact=True)
        assert getattr(r, p.stem) is df
    return r


@pytest.mark.parametrize("name,paths", EXPERIMENTS)
def test_run_equals_cli_bit_for_bit(tmp_path, root, cli, name, paths):
    check_against_cli(tmp_path, cli, root / "configs" / f"{name}.json", paths)


def test_width_sweep_equals_cli_bit_for_bit(tmp_path, root, cli):
    config = json.loads((root / "configs" / "width_sweep_quick.json").read_text())
    config.update(widths=[16, 32, 64], test_samples=64)
    config["data"]["n"] = 32
    path = tmp_path / "width_sweep_small.json"
    path.write_text(json.dumps(config))
    r = check_against_cli(tmp_path, cli, path, 16)
    assert {"width_sweep", "rates", "pairs"} <= set(r.tables)
    assert r.cells is r.tables["width_sweep"]


def test_weak_order_on_two_layer_equals_cli_bit_for_bit(tmp_path, root, cli):
    config = json.loads((root / "configs" / "mf_weak_order.json").read_text())
    config.update(widths=[8], etas=[0.2, 0.1], dynamics=["sgd", "smf1", "gd", "gf"],
                  test_samples=32, substeps=2)
    config["data"]["n"] = 16
    path = tmp_path / "mf_weak_order_small.json"
    path.write_text(json.dumps(config))
    r = check_against_cli(tmp_path, cli, path, 8)
    assert {"points", "weak_error"} <= set(r.tables)
    assert set(r.weak_errors["estimator"]) == {"paired_replicas"}
    assert not r.orders.empty


def test_out_none_equals_cli_and_leaves_nothing(tmp_path, cli, small_config, monkeypatch):
    import tempfile

    c = cli("run", small_config, "--backend", "cpu", "--out", tmp_path / "cli", "--quiet")
    assert c.returncode == 0, c.stderr
    scratch, cwd = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(cwd)
    r = smflow.run(small_config, backend="cpu", progress=False)
    assert r.out is None
    assert list(scratch.iterdir()) == [] and list(cwd.iterdir()) == []
    for stem in ("points", "weak_error"):
        cli_df = pd.read_csv(tmp_path / "cli" / f"{stem}.csv", **ROUND_TRIP)
        pdt.assert_frame_equal(r.tables[stem], cli_df, check_exact=True)
    raw = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert {k: v for k, v in r.raw.items() if k not in TIMINGS} == {
        k: v for k, v in raw.items() if k not in TIMINGS
    }


def test_dict_json_string_and_path_give_the_same_numbers(small_config):
    by_path = smflow.run(small_config, backend="cpu", progress=False)
    by_str_path = smflow.run(str(small_config), backend="cpu", progress=False)
    by_dict = smflow.run(SMALL, backend="cpu", progress=False)
    by_text = smflow.run(json.dumps(SMALL, indent=2), backend="cpu", progress=False)
    for r in (by_str_path, by_dict, by_text):
        pdt.assert_frame_equal(r.points, by_path.points, check_exact=True)
        pdt.assert_frame_equal(r.weak_errors, by_path.weak_errors, check_exact=True)
        pdt.assert_frame_equal(r.orders, by_path.orders, check_exact=True)


def test_overrides_equal_cli_overrides(tmp_path, cli, small_config):
    c = cli("run", small_config, "--backend", "cpu", "--paths", 1000, "--seed", 99,
            "--out", tmp_path / "cli", "--quiet")
    assert c.returncode == 0, c.stderr
    r = smflow.run(SMALL, backend="cpu", paths=1000, seed=99, progress=False)
    assert r.seed == 99 and r.raw["paths"] == 1000
    cli_df = pd.read_csv(tmp_path / "cli" / "weak_error.csv", **ROUND_TRIP)
    pdt.assert_frame_equal(r.weak_errors, cli_df, check_exact=True)


def test_result_attributes(tmp_path, cli, small_config):
    c = cli("run", small_config, "--backend", "cpu", "--out", tmp_path / "cli", "--quiet")
    raw = json.loads((tmp_path / "cli" / "results.json").read_text())
    r = smflow.run(small_config, backend="cpu", progress=False)
    assert isinstance(r.raw, dict)
    assert r.backend == raw["backend"] == "cpu"
    assert r.adapter == raw["adapter"]
    assert r.precision == raw["precision"] == "f64"
    assert isinstance(r.wall_seconds, float) and r.wall_seconds > 0
    assert r.experiment == "weak_order" and r.name == "small"
    assert r.weak_errors is r.tables["weak_error"]
    assert r.points is r.tables["points"]
    # orders: results.json's orders[], pair and ci95 split as the CSVs split pairs.
    assert list(r.orders.columns) == [
        "pair_a", "pair_b", "observable", "t", "order", "stderr", "ci95_lo", "ci95_hi",
        "n_points", "intercept",
    ]
    assert len(r.orders) == len(raw["orders"])
    for (_, row), o in zip(r.orders.iterrows(), raw["orders"]):
        assert [row.pair_a, row.pair_b] == o["pair"]
        assert row.order == o["order"] and [row.ci95_lo, row.ci95_hi] == o["ci95"]
    with pytest.raises(AttributeError, match="no table 'cells'"):
        r.cells
    assert "weak_errors" in dir(r) and "points" in repr(r)


def test_progress_false_prints_nothing(small_config, capfd):
    smflow.run(small_config, backend="cpu", progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_true_prints_the_cli_lines(small_config, capfd):
    smflow.run(small_config, backend="cpu")
    out, err = capfd.readouterr()
    assert "smflow: backend cpu" in err
    assert "small [weak_order] backend cpu" in out


def test_out_dir_kept_and_refused_when_not_empty(tmp_path, small_config):
    out = tmp_path / "run"
    r = smflow.run(small_config, backend="cpu", out=out, progress=False)
    assert (out / "results.json").exists() and (out / "weak_error.csv").exists()
    assert r.out == out
    with pytest.raises(smflow.ConfigError, match="--out"):
        smflow.run(small_config, backend="cpu", out=out, progress=False)
    again = smflow.run(small_config, backend="cpu", out=out, force=True, progress=False)
    pdt.assert_frame_equal(again.points, r.points, check_exact=True)


def test_gil_released_while_running(small_config):
    """Another Python thread keeps running while the engine works."""
    config = dict(SMALL, paths=200000)
    ticks = 0
    done = threading.Event()

    def work():
        try:
            smflow.run(config, backend="cpu", progress=False)
        finally:
            done.set()

    t = threading.Thread(target=work)
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.005)
    t.join()
    elapsed = time.perf_counter() - start
    assert elapsed > 0.2, "the run was too short to tell"
    # Holding the GIL, the engine would leave this loop a handful of ticks at most.
    assert ticks > 0.25 * elapsed / 0.005


def test_shards_merge_to_the_whole_run(tmp_path, small_config):
    whole = smflow.run(small_config, backend="cpu", progress=False)
    dirs = []
    for i in (1, 2):
        d = tmp_path / f"shard{i}"
        s = smflow.run(small_config, backend="cpu", shard=f"{i}/2", out=d, progress=False)
        assert s.raw["shard"] == f"{i}/2"
        dirs.append(d)
    merged = smflow.merge(dirs, progress=False)
    for name in ("points", "weak_error", "orders"):
        pdt.assert_frame_equal(merged.tables[name], whole.tables[name], check_exact=True)


def test_job_shards_return_and_merge_to_the_whole_run(tmp_path):
    # invariant saves jobs (bin counts) per shard instead of statistics.
    cfg = {
        "experiment": "invariant", "name": "inv",
        "model": {"kind": "toy_sgd", "loss": "double_well", "c0": 0.25, "sigma": 100.0},
        "x0": [0.0], "dynamics": ["sgd"], "etas": [0.01], "horizon": 0.5, "paths": 101,
        "invariant": {"bins": 8, "range": [-2.0, 2.0], "batches": 4}, "seed": 3,
    }
    whole = smflow.run(cfg, backend="cpu", progress=False)
    dirs = []
    for i in (1, 2, 3):
        d = tmp_path / f"shard{i}"
        s = smflow.run(cfg, backend="cpu", shard=f"{i}/3", out=d, progress=False)
        assert s.raw["shard"] == f"{i}/3" and s.raw["experiment"] == "invariant"
        assert s.raw["jobs"] == 4 and s.tables == {}
        dirs.append(d)
    merged = smflow.merge(dirs, progress=False)
    pdt.assert_frame_equal(
        merged.tables["invariant_bins"], whole.tables["invariant_bins"], check_exact=True
    )


def test_devices_lists_the_cpu():
    lines = smflow.devices()
    assert isinstance(lines, list) and all(isinstance(s, str) for s in lines)
    assert lines[-1].startswith("cpu: ")


def test_compare_returns_compare_json(small_config):
    try:
        doc = smflow.compare(small_config, paths=256, sample=16)
    except smflow.ConfigError as e:  # no GPU adapter at all
        pytest.skip(f"no usable GPU adapter: {e}")
    except smflow.Error as e:  # the comparison failed: the document comes with it
        doc = e.result
    assert {"adapter", "precision", "paths", "statistics"} <= set(doc)
    assert len(doc["statistics"]) > 0


def test_compare_quiet_prints_nothing_and_returns_the_same(small_config, capfd):
    try:
        loud = smflow.compare(small_config, paths=256, sample=16)
    except smflow.ConfigError as e:  # no GPU adapter at all
        pytest.skip(f"no usable GPU adapter: {e}")
    out, err = capfd.readouterr()
    assert "smflow compare: cpu" in err and "PASS" in out, (out, err)
    quiet = smflow.compare(small_config, paths=256, sample=16, quiet=True)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert quiet["statistics"] == loud["statistics"]
    assert quiet["paths"] == loud["paths"]


def test_tables_hold_the_engines_f64_exactly(small_config):
    """The DataFrames' floats are results.json's (Python's json reads f64 exactly)."""
    r = smflow.run(small_config, backend="cpu", progress=False)
    points = r.raw["points"]
    assert len(points) == len(r.points)
    for (_, row), p in zip(r.points.iterrows(), points):
        for k in ("eta", "t", "mean", "stderr"):
            assert row[k] == p[k], (k, row[k], p[k])
        for k in ("solver_error", "solver_error_stderr", "exact"):
            assert (p[k] is None and pd.isna(row[k])) or row[k] == p[k], k
    errors = r.raw["weak_errors"]
    assert len(errors) == len(r.weak_errors)
    for (_, row), e in zip(r.weak_errors.iterrows(), errors):
        assert [row.pair_a, row.pair_b] == e["pair"]
        for k in ("eta", "t", "error", "stderr", "signed"):
            assert row[k] == e[k], (k, row[k], e[k])
        assert bool(row.resolved) == e["resolved"]
        v = e["variance_reduction"]
        assert (v is None and pd.isna(row.variance_reduction)) or row.variance_reduction == v


def test_orders_keep_their_columns_when_none_is_fitted():
    """One η: no order can be fitted; .orders is empty with the usual columns."""
    r = smflow.run(dict(SMALL, etas=[0.125]), backend="cpu", progress=False)
    assert r.raw["orders"] == [] and len(r.orders) == 0
    assert list(r.orders.columns)[:5] == ["pair_a", "pair_b", "observable", "t", "order"]
