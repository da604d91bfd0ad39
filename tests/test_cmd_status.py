"""``islandnode status``: the snapshot, the view, and real nodes (node/cmd_status.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from islandrun.node.audit import AUDIT_FILE
from islandrun.node.cli import main
from islandrun.node.cmd_status import recent_decisions, render, snapshot
from tests.mesh_procs import ISLANDNODE, ask, mesh, wait_until

A, B, C = "12D3KooWA", "12D3KooWB", "12D3KooWC"


def _peer(device_id: str, name: str) -> dict[str, Any]:
    return {"device_id": device_id, "name": name, "liveness": "alive", "last_seen": 100.0,
            "capacity": 0.5, "in_flight": 0, "battery_pct": 15.0, "charging": False,
            "models": ["tiny"], "datasets": ["notes"], "addresses": []}


def _status() -> dict[str, Any]:
    return {"device_id": "12D3KooWSELF", "name": "laptop", "version": "0", "capacity": 0.8,
            "in_flight": 1, "battery_pct": None, "charging": None, "models": ["echo"],
            "datasets": [], "api": None, "islands": 3, "addresses": []}


def test_tiers_come_from_pairing_records_and_the_allow_list() -> None:
    pairs = [{"device_id": A, "tier": "friend", "revoked_at": None},
             {"device_id": B, "tier": "personal", "revoked_at": 5.0}]
    snap = snapshot(_status(), [_peer(A, "pal"), _peer(B, "old"), _peer(C, "srv")], pairs,
                    allow=[C], clouds=[], decisions=[])
    assert [i["tier"] for i in snap["islands"]] == ["friend", "unpaired", "personal (allow)"]


def test_view_shows_islands_clouds_and_decisions_without_text() -> None:
    decision = {"time": "2026-01-01T10:11:12.000+00:00", "level": "high",
                "entity_types": ["PERSON"], "island_name": "server", "tier": "primary",
                "sanitized": False, "refused": False, "queued": False,
                "reason": "best score", "fallbacks": []}
    cloud = {"name": "gpt", "device_id": "cloud:gpt", "model": "m", "trust": 0.4, "privacy": 0.4}
    snap = snapshot(_status(), [_peer(A, "phone")], [], allow=[A], clouds=[cloud],
                    decisions=[decision])
    console = Console(record=True, width=200)
    console.print(render(snap, now=130.0))
    text = console.export_text()
    for expected in ("laptop", "phone", "personal (allow)", "15%", "30s ago", "cloud:gpt",
                     "10:11:12", "PERSON", "server", "best score"):
        assert expected in text


def test_recent_decisions_keep_only_safe_fields(tmp_path: Path) -> None:
    lines = [json.dumps({"time": f"t{i}", "level": "low", "request_id": "r", "secret": "x",
                         "island_name": "a"}) for i in range(12)]
    (tmp_path / AUDIT_FILE).write_text("\n".join(lines) + "\nnot json\n")
    found = recent_decisions(tmp_path, limit=5)
    assert [d["time"] for d in found] == ["t8", "t9", "t10", "t11"]
    assert all("secret" not in d and "request_id" not in d for d in found)
    assert recent_decisions(tmp_path / "none") == []


def test_no_node_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "status", "--json"]) == 1
    assert "no node is running" in capsys.readouterr().err


@pytest.mark.slow
def test_status_of_a_running_mesh(tmp_path: Path) -> None:
    with mesh(tmp_path, ["laptop", "phone"]) as (laptop, phone):
        wait_until(lambda: len(laptop.peers()) == 1, 30, "the phone's advert")
        assert ask(laptop, "hello there", "--peer", phone.device_id).returncode == 0
        out = subprocess.run([ISLANDNODE, "--home", str(laptop.home), "status", "--json"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        snap = json.loads(out.stdout)
        assert snap["node"]["name"] == "laptop"
        (island,) = snap["islands"]
        assert (island["name"], island["tier"], island["liveness"]) == (
            "phone", "personal (allow)", "alive")
        assert snap["decisions"][-1]["island_name"] == "phone"
        assert "hello" not in out.stdout  # no prompt text
        live = subprocess.run(
            [ISLANDNODE, "--home", str(laptop.home), "status", "--count", "2",
             "--interval", "0.2"], capture_output=True, text=True, timeout=30)
        assert live.returncode == 0, live.stderr
        assert "phone" in live.stdout and "recent decisions" in live.stdout
