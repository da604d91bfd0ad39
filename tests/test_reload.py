"""Live reload of models and indexes (node/reload.py), without a node process."""

from __future__ import annotations

from pathlib import Path

import pytest

from islandrun.node import config, index
from islandrun.node.config import ModelSection
from islandrun.node.executor import EchoExecutor
from islandrun.node.reload import Reloader
from islandrun.node.retrieval import RetrievalExecutor
from islandrun.node.shore import Shore


def add_model(home: Path, name: str, path: Path) -> None:
    config.update_config(home, lambda raw: raw.setdefault("models", []).append(
        {"name": name, "path": str(path)}))


def setup(home: Path, tiny_model: Path) -> tuple[Shore, RetrievalExecutor, Reloader]:
    add_model(home, "first", tiny_model)
    shore = Shore(config.load_config(home).models)
    executor = RetrievalExecutor(shore, {})
    return shore, executor, Reloader(home, executor, shore)


def test_nothing_changed_nothing_reloaded(home: Path, tiny_model: Path) -> None:
    _, _, reloader = setup(home, tiny_model)
    assert not reloader.check()


def test_models_and_indexes_follow_the_files(
    home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    _, executor, reloader = setup(home, tiny_model)
    add_model(home, "second", tiny_model)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("deposits are returned")
    index.build_index(home, "caselaw", docs)
    assert reloader.check()
    assert [m.name for m in executor.models()] == ["first", "second"]
    assert [d.name for d in executor.datasets()] == ["caselaw"]
    index.remove_index(home, "caselaw")
    assert reloader.check() and executor.datasets() == ()
    assert not reloader.check()


def test_an_unchanged_model_keeps_its_slot(tiny_model: Path) -> None:
    first = ModelSection(name="first", path=str(tiny_model))
    shore = Shore([first])
    slot = shore._slots["first"]
    shore.update_models([first, ModelSection(name="second", path=str(tiny_model))])
    assert shore._slots["first"] is slot
    shore.update_models([ModelSection(name="first", path=str(tiny_model), context=4096)])
    assert shore._slots["first"] is not slot and list(shore._slots) == ["first"]


def test_a_broken_config_keeps_the_models(
    home: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, executor, reloader = setup(home, tiny_model)
    config.config_path(home).write_text("this is not = = toml")
    assert reloader.check()
    assert [m.name for m in executor.models()] == ["first"]
    assert "config not reloaded" in caplog.text


def test_an_executor_without_reloadable_models_still_gets_indexes(
    home: Path, tmp_path: Path
) -> None:
    executor = RetrievalExecutor(EchoExecutor(), {})
    reloader = Reloader(home, executor, executor._inner)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("text")
    index.build_index(home, "notes", docs)
    assert reloader.check() and [d.name for d in executor.datasets()] == ["notes"]
