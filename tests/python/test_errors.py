"""Bad input raises smflow.ConfigError (a ValueError) with exactly the message the CLI
prints after `error: ` (exit 2); the CLI's parse errors (bad arguments) too."""

import json

import pytest

import smflow
from conftest import SMALL


def cli_message(proc) -> str:
    """The CLI's error message: stderr after `error: `, without clap's closing hint."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    text = proc.stderr
    assert text.startswith("error: ")
    lines = [l for l in text[len("error: "):].splitlines()
             if not l.startswith("For more information")]
    return "\n".join(lines).rstrip()


BAD_CONFIGS = {
    "negative_eta": dict(SMALL, etas=[0.1, -0.05]),
    "unknown_field": dict(SMALL, pathz=10),
    "unknown_dynamics": dict(SMALL, dynamics=["sgd", "sme9"]),
    "unknown_experiment": dict(SMALL, experiment="weak_ordr"),
    "bad_model": dict(SMALL, model={"kind": "multiplicative", "mean": 2.0, "std": -1.0}),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_message_equals_cli(tmp_path, cli, case):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(BAD_CONFIGS[case]))
    expected = cli_message(cli("run", path, "--backend", "cpu", "--out", tmp_path / "c"))
    with pytest.raises(smflow.ConfigError) as e:
        smflow.run(path, backend="cpu", out=tmp_path / "p", progress=False)
    assert str(e.value) == expected
    assert isinstance(e.value, ValueError)
    # Nothing written for a refused run.
    assert not (tmp_path / "p").exists()
    # The dict form says the same.
    with pytest.raises(smflow.ConfigError) as d:
        smflow.run(BAD_CONFIGS[case], backend="cpu", progress=False)
    assert str(d.value) == expected


def test_invalid_json_text(tmp_path, cli):
    text = '{"experiment": "weak_order", '
    path = tmp_path / "run.json"
    path.write_text(text)
    expected = cli_message(cli("run", path, "--out", tmp_path / "c"))
    with pytest.raises(smflow.ConfigError) as e:
        smflow.run(text, progress=False)
    assert str(e.value) == expected


def test_missing_config_file(tmp_path, cli):
    missing = tmp_path / "nope.json"
    expected = cli_message(cli("run", missing, "--out", tmp_path / "c"))
    with pytest.raises(smflow.ConfigError) as e:
        smflow.run(missing, progress=False)
    assert str(e.value) == expected and "cannot read" in str(e.value)


@pytest.mark.parametrize(
    "kwargs,args",
    [
        ({"backend": "foo"}, ["--backend", "foo"]),
        ({"paths": 0}, ["--paths", "0"]),
        ({"paths": -3}, ["--paths", "-3"]),
        ({"seed": -1}, ["--seed", "-1"]),
        ({"shard": "3/2"}, ["--shard", "3/2"]),
    ],
)
def test_bad_arguments_message_equals_cli(tmp_path, cli, small_config, kwargs, args):
    expected = cli_message(cli("run", small_config, "--out", tmp_path / "c", *args))
    with pytest.raises(smflow.ConfigError) as e:
        smflow.run(small_config, progress=False, **kwargs)
    assert str(e.value) == expected


def test_bad_backend_names_the_allowed_values(small_config):
    with pytest.raises(smflow.ConfigError, match=r"possible values: auto, cpu, gpu"):
        smflow.run(small_config, backend="foo")


def test_bad_config_type():
    with pytest.raises(TypeError, match="dict, a JSON string or a path"):
        smflow.run(42)


def test_error_classes():
    assert issubclass(smflow.ConfigError, ValueError)
    assert issubclass(smflow.Error, RuntimeError)
    assert smflow.ConfigError.__module__ == "smflow"
