"""Progress (a tqdm bar, or any callback) and Ctrl-C: the engine reports its work to
Python at every increment, and a KeyboardInterrupt stops the run there."""

import _thread
import sys
import threading
import time

import pandas.testing as pdt
import pytest

import smflow
from smflow import _smflow
from conftest import SMALL


class Recorder:
    """Stands in for the tqdm bar: records (done, total) of every increment."""

    def __init__(self):
        self.calls = []
        self.closed = False

    def __call__(self, done, total):
        self.calls.append((done, total))

    def close(self):
        self.closed = True


def test_progress_callback_sees_the_whole_run(monkeypatch, small_config):
    rec = Recorder()
    monkeypatch.setattr(smflow, "_tqdm_bar", lambda: rec)
    r = smflow.run(small_config, backend="cpu")
    assert rec.closed
    assert len(rec.calls) >= 2, rec.calls
    done = [d for d, _ in rec.calls]
    totals = {t for _, t in rec.calls}
    assert done == sorted(done) and len(totals) == 1, rec.calls
    assert done[-1] == totals.pop()
    quiet = smflow.run(small_config, backend="cpu", progress=False)
    pdt.assert_frame_equal(r.points, quiet.points, check_exact=True)


def test_tqdm_bar_only_on_a_terminal(monkeypatch):
    class FakeTqdm:
        made = []

        def __init__(self, total, **kw):
            self.total, self.n = total, 0
            FakeTqdm.made.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            pass

    fake = type(sys)("tqdm")
    fake.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", fake)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert smflow._tqdm_bar() is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = smflow._tqdm_bar()
    assert bar is not None
    bar(10, 100)
    bar(60, 100)
    bar.close()
    assert FakeTqdm.made[-1].total == 100 and FakeTqdm.made[-1].n == 60
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    assert smflow._tqdm_bar() is None


def test_an_exception_in_the_callback_stops_the_run(small_config, tmp_path):
    def boom(done, total):
        raise ValueError("stop here")

    out = tmp_path / "o"
    with pytest.raises(ValueError, match="stop here"):
        _smflow.cli(["run", str(small_config), "--backend", "cpu", "--quiet",
                     "--out", str(out)], boom)
    assert not (out / "results.json").exists()


def _interrupted(config, out, after=1.0):
    """Runs `config` on the CPU into `out`, Ctrl-C (simulated by _thread.interrupt_main,
    as the signal handler does) `after` seconds in; asserts KeyboardInterrupt was raised
    after the interrupt, and returns (start, interrupt, stop) times."""
    fired = []

    def interrupt():
        fired.append(time.monotonic())
        _thread.interrupt_main()

    timer = threading.Timer(after, interrupt)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        smflow.run(config, backend="cpu", out=out, progress=False)
    stopped = time.monotonic()
    timer.cancel()
    assert fired, "the run ended before the interrupt"
    return start, fired[0], stopped


def test_keyboard_interrupt_stops_the_run_within_a_second(tmp_path):
    """Ctrl-C during a long run: KeyboardInterrupt is raised promptly, nothing claims
    success, and the next run works."""
    out = tmp_path / "o"
    start, fired, stopped = _interrupted(dict(SMALL, paths=50_000_000), out)
    lag = stopped - fired
    assert lag < 1.0, f"stopped {lag:.2f} s after Ctrl-C"
    assert stopped - start < 30
    assert not (out / "results.json").exists()
    # The observer was removed: a plain run afterwards is unaffected.
    r = smflow.run(dict(SMALL, paths=2000), backend="cpu", progress=False)
    assert len(r.points) > 0


def test_keyboard_interrupt_with_out_none_leaves_nothing(tmp_path, monkeypatch):
    made = []
    real = smflow.tempfile.mkdtemp

    def spy(*a, **k):
        d = real(*a, **k)
        made.append(d)
        return d

    monkeypatch.setattr(smflow.tempfile, "mkdtemp", spy)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        smflow.run(dict(SMALL, paths=50_000_000), backend="cpu", progress=False)
    timer.cancel()
    import os

    assert made and not any(os.path.exists(d) for d in made)


def test_keyboard_interrupt_stops_an_invariant_run(root, tmp_path):
    """The invariant experiment reports its batches too (it had no progress at all)."""
    out = tmp_path / "o"
    _, fired, stopped = _interrupted(root / "configs" / "invariant_1d.json", out)
    assert stopped - fired < 1.0, f"stopped {stopped - fired:.2f} s after Ctrl-C"
    assert not (out / "results.json").exists()
