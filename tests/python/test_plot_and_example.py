"""Result.plot() and the notebook-style example, executed as a script."""

import json
import os
import subprocess
import sys

import pytest

import smflow
from conftest import SMALL


@pytest.fixture(scope="module")
def small():
    return smflow.run(SMALL, backend="cpu", progress=False)


def test_plot_weak_order(small):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = small.plot()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # One series per pair at the horizon, labelled with its fitted order.
    assert len(labels) == 2 and all("order" in l for l in labels)
    assert labels[0].startswith("sgd–sme1 x0")
    plt.close(ax.figure)


@pytest.mark.parametrize(
    "name,paths,table",
    [
        ("invariant_1d", 256, "invariant_bins"),
        ("n_point", 256, "correlations"),
        ("gd_vs_gf", 64, "distances"),
        ("least_squares_risk", 64, "risk_mc"),
        ("width_sweep_quick", 8, "width_sweep"),
        ("weak_order_data", 256, "weak_error"),
    ],
)
def test_plot_other_experiments(root, tmp_path, name, paths, table):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config = json.loads((root / "configs" / f"{name}.json").read_text())
    if name == "width_sweep_quick":
        config.update(widths=[16, 32], test_samples=64)
    r = smflow.run(config, backend="cpu", paths=paths, progress=False)
    ax = r.plot()
    assert ax.lines and table in ax.get_title() or table == "weak_error"
    ax.figure.savefig(tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 5_000
    plt.close(ax.figure)


def test_plot_without_matplotlib_says_so(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        small.plot()


def _quickstart_table(cli, root, tmp_path):
    """The CLI's quickstart weak-error table at the horizon, as the examples print it."""
    quick = tmp_path.parent / (tmp_path.name + "-quickstart")
    c = cli("run", root / "configs" / "quickstart.json", "--backend", "cpu", "--quiet",
            "--out", quick)
    assert c.returncode == 0, c.stderr
    want = smflow.Result._read(quick, True).weak_errors
    return want[want["t"] == want["t"].max()][
        ["pair_a", "pair_b", "eta", "error", "stderr", "resolved"]].to_string(index=False)


def test_example_script(tmp_path, root, cli):
    """The example as a script, at its default: the quickstart's own numbers."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "weak_order.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    p = subprocess.run(
        [sys.executable, str(root / "examples" / "weak_order.py"), str(png)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    table = _quickstart_table(cli, root, tmp_path)
    assert table in p.stdout, (table, p.stdout)
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sgd" in p.stdout and "order" in p.stdout
    # Nothing but the figure left in the working directory.
    assert [x.name for x in tmp_path.iterdir()] == ["weak_order.png"]


# Executes a notebook's code cells in order, in one namespace, as Jupyter's kernel would
# (without IPython's display of a cell's last value), then saves the figure `ax` draws.
_RUN_NOTEBOOK = """
import json, sys
nb = json.load(open(sys.argv[1], encoding="utf-8"))
assert nb["nbformat"] == 4, nb["nbformat"]
ns = {"__name__": "__main__"}
for cell in nb["cells"]:
    if cell["cell_type"] == "code":
        assert cell["outputs"] == [], "the notebook is stored without outputs"
        exec(compile("".join(cell["source"]), "<cell>", "exec"), ns)
ns["ax"].figure.savefig(sys.argv[2], dpi=120, bbox_inches="tight")
"""


def test_example_notebook(tmp_path, root, cli):
    """examples/weak_order.ipynb, its cells run as a script: the quickstart's numbers,
    and its figure drawn."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "notebook.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    p = subprocess.run(
        [sys.executable, "-c", _RUN_NOTEBOOK, str(root / "examples" / "weak_order.ipynb"),
         str(png)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    table = _quickstart_table(cli, root, tmp_path)
    assert table in p.stdout, (table, p.stdout)
    assert png.exists() and png.stat().st_size > 10_000
    assert [x.name for x in tmp_path.iterdir()] == ["notebook.png"]


def test_plot_n_point_paired_differences(root, tmp_path):
    """n_point with the coupled estimator draws |SGD − SMF| against η as a weak-order
    study draws its errors, one series per (pair, statistic), labelled with the order."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = smflow.run(root / "configs" / "n_point_paired.json", backend="cpu", paths=4000,
                   progress=False)
    assert {"difference", "independent_stderr", "resolved"} <= set(r.paired.columns)
    ax = r.plot()
    assert ax.get_yscale() == "log" and "SGD − SMF" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(l.startswith("sgd–smf1 mean_dist2[0,1]: order") for l in labels), labels
    assert any(l.startswith("sgd–smf2 n_var") for l in labels), labels
    ax.figure.savefig(tmp_path / "paired.png")
    plt.close(ax.figure)
