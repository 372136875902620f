"""Result.plot() and the notebook-style example, executed as a script."""

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


def test_plot_other_experiment(root):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = smflow.run(root / "configs" / "invariant_1d.json", backend="cpu", paths=256,
                   progress=False)
    ax = r.plot()
    assert ax.lines
    plt.close(ax.figure)


def test_plot_without_matplotlib_says_so(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        small.plot()


def test_example_script(tmp_path, root):
    pytest.importorskip("matplotlib")
    png = tmp_path / "weak_order.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    p = subprocess.run(
        [sys.executable, str(root / "examples" / "weak_order.py"), str(png), "2000"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sgd" in p.stdout and "order" in p.stdout
    # Nothing but the figure left in the working directory.
    assert [x.name for x in tmp_path.iterdir()] == ["weak_order.png"]
