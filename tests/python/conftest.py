"""Shared fixtures: the repository root, the CLI binary to compare against, configs."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli_binary() -> Path:
    """The smflow CLI built from this checkout: $SMFLOW_BIN, else release/smflow under
    $CARGO_TARGET_DIR or target/, built with `cargo build --release --locked` if absent."""
    env = os.environ.get("SMFLOW_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    binary = target / "release" / "smflow"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    return binary


@pytest.fixture(scope="session")
def smflow_bin() -> Path:
    b = _cli_binary()
    assert b.exists(), f"no smflow binary at {b}"
    return b


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def cli(smflow_bin):
    """Runs the CLI: cli("run", CONFIG, "--out", DIR, ...) -> CompletedProcess."""

    def go(*args, cwd=None):
        return subprocess.run(
            [str(smflow_bin), *map(str, args)], capture_output=True, text=True, cwd=cwd
        )

    return go


# A small weak-order study (the quickstart's model and dynamics, fewer η and paths).
SMALL = {
    "experiment": "weak_order",
    "name": "small",
    "model": {"kind": "multiplicative", "mean": 2.0, "std": 1.5},
    "x0": [1.0],
    "dynamics": ["sgd", "sme1", "sme2"],
    "batch": 2,
    "etas": [0.125, 0.0625, 0.03125],
    "horizon": 1.0,
    "observables": ["x0"],
    "paths": 4000,
    "sde": {"substeps": 8, "extrapolate": True},
    "seed": 5,
}


@pytest.fixture
def small_config(tmp_path) -> Path:
    import json

    p = tmp_path / "small.json"
    p.write_text(json.dumps(SMALL))
    return p
