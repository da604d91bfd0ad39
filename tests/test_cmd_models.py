"""``islandnode models``: list, add, remove and add-demo edit config.toml safely."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from islandrun.node import cli, config, tinymodel
from islandrun.node.cmd_mesh import _executor
from islandrun.node.errors import NodeError
from islandrun.node.executor import EchoExecutor
from islandrun.node.shore import Shore


def models(home: Path, *args: str) -> int:
    return cli.main(["--home", str(home), "models", *args])


def listed(home: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert models(home, "list", "--json") == 0
    result: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return result


def test_add_list_remove(home: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert models(home) == 0 and "no models" in capsys.readouterr().out
    assert models(home, "add", str(tiny_model), "--context", "1024", "--threads", "1") == 0
    assert models(home, "add", str(tiny_model), "--name", "second", "--gpu-layers", "-1") == 0
    entries = listed(home, capsys)
    assert [e["name"] for e in entries] == [tiny_model.stem, "second"]
    assert entries[0] == {"name": tiny_model.stem, "path": str(tiny_model.resolve()),
                          "context": 1024, "threads": 1, "gpu_layers": 0, "exists": True}
    assert models(home) == 0 and "second  context=2048" in capsys.readouterr().out
    assert models(home, "remove", tiny_model.stem) == 0
    assert [e["name"] for e in listed(home, capsys)] == ["second"]
    assert config.load_config(home).node.name == "test-node"  # the rest is kept
    assert (home / "config.toml").stat().st_mode & 0o777 == 0o600


def test_refusals_leave_the_config_alone(
    home: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert models(home, "add", str(tiny_model), "--name", "m") == 0
    before = (home / "config.toml").read_bytes()
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    capsys.readouterr()
    cases = [
        (("add", str(tiny_model), "--name", "m"), "a model named 'm' exists"),
        (("add", str(text)), "is not a GGUF file"),
        (("add", str(tmp_path / "none.gguf")), "cannot read"),
        (("add", str(tiny_model), "--name", "z", "--context", "0"), "at least 1"),
        (("remove", "nope"), "no model named 'nope' (configured: m)"),
    ]
    for args, words in cases:
        assert models(home, *args) == 1, args
        assert words in capsys.readouterr().err
        assert (home / "config.toml").read_bytes() == before


def test_add_demo_generates_and_registers(
    home: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vocab = tinymodel.ensure_vocab()
    assert models(home, "add-demo", "--vocab", str(vocab), "--threads", "1") == 0
    (entry,) = listed(home, capsys)
    assert entry["name"] == tinymodel.DEMO_MODEL_NAME and entry["exists"]
    made = Path(str(entry["path"]))
    assert made.parent == home / "models"
    assert made.read_bytes() == tiny_model.read_bytes()  # seed 0 both times


def test_list_shows_missing_files(home: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    config.update_config(home, lambda d: d.update(
        models=[{"name": "gone", "path": str(tmp_path / "gone.gguf")}]))
    capsys.readouterr()
    assert models(home, "list") == 0
    assert "(file missing!)" in capsys.readouterr().out


def test_run_uses_shore_when_models_are_configured(home: Path, tiny_model: Path) -> None:
    def chosen(executor: str | None) -> object:
        args = argparse.Namespace(executor=executor, echo_model="echo", echo_delay=0.0)
        return _executor(args, config.load_config(home))

    assert isinstance(chosen(None), EchoExecutor)
    with pytest.raises(NodeError, match="models add-demo"):
        chosen("llama")
    assert models(home, "add", str(tiny_model), "--name", "tiny") == 0
    shore = chosen(None)
    assert isinstance(shore, Shore) and [m.name for m in shore.models()] == ["tiny"]
    assert isinstance(chosen("echo"), EchoExecutor)
