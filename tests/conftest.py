"""Shared fixtures: temporary node homes and ready-made identities."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from islandrun.node import config, identity

# Fuzz tests ask for 10,000 examples explicitly; everything else stays quick.
settings.register_profile("default", deadline=None)
settings.load_profile("default")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised node home."""
    h = tmp_path / "home"
    identity.create_key(h)
    config.write_initial_config(h, "test-node")
    return h


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight llama GGUF (real tokenizer), built once per session."""
    from islandrun.node import tinymodel

    return tinymodel.make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.gguf", seed=0)
