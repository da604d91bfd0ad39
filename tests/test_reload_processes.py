"""Model and index changes reach a running node's adverts without a restart
(node/reload.py), seen from a second real node process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mesh_procs import ISLANDNODE, NodeProc, mesh, wait_until

pytestmark = pytest.mark.slow


def islandnode(node: NodeProc, *args: str) -> None:
    out = subprocess.run([ISLANDNODE, "--home", str(node.home), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def seen(viewer: NodeProc, holder: NodeProc) -> dict[str, list[str]]:
    view = next((p for p in viewer.peers_json() if p["device_id"] == holder.device_id), {})
    return {"models": view.get("models", []), "datasets": view.get("datasets", [])}


def test_models_and_indexes_change_while_the_node_runs(tmp_path: Path, tiny_model: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A tenant's deposit is returned within thirty days.")
    with mesh(tmp_path, ["laptop", "server"], "--defer") as (laptop, server):
        islandnode(server, "models", "add", str(tiny_model), "--name", "first")
        server.start()
        laptop.start("--bootstrap", server.address)

        def becomes(models: list[str], datasets: list[str], what: str) -> None:
            wait_until(lambda: seen(laptop, server) == {"models": models, "datasets": datasets},
                       30, what)

        becomes(["first"], [], "the first advert")
        islandnode(server, "index", "add", "caselaw", str(docs))
        becomes(["first"], ["caselaw"], "the new index in the advert")
        islandnode(server, "models", "add", str(tiny_model), "--name", "second")
        becomes(["first", "second"], ["caselaw"], "the added model in the advert")
        islandnode(server, "models", "remove", "first")
        islandnode(server, "index", "remove", "caselaw")
        becomes(["second"], [], "the removals in the advert")
        assert server.status()["models"] == ["second"]
