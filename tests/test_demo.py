"""The demo: its verdicts (node/demo_workload.py) and the short demo end to end (cmd_demo)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from islandrun.node.demo_cloud import read_record
from islandrun.node.demo_workload import (
    PLANTED,
    SHORT,
    WORKLOAD,
    Outcome,
    island_tier,
    outcome,
    privacy_problems,
    summary,
)
from tests.mesh_procs import ISLANDNODE


def _row(kind: str, island: str, tier: str, sanitized: bool = False) -> Outcome:
    return Outcome(kind=kind, sensitivity=0.5, island=island, island_tier=tier, reason="r",
                   sanitized=sanitized, entities="-")


def test_island_tiers_as_the_laptop_sees_them() -> None:
    tiers = {"12D3KooWF": "friend"}
    assert island_tier(None, "me", tiers) == "refused"
    assert island_tier("me", "me", tiers) == "this device"
    assert island_tier("cloud:x", "me", tiers) == "cloud"
    assert island_tier("12D3KooWF", "me", tiers) == "friend"
    assert island_tier("12D3KooWZ", "me", tiers) == "unpaired"


def test_outcome_of_an_answer_and_of_a_refusal() -> None:
    request = WORKLOAD[0]
    answer = {"islandrun": {"island": "cloud:c", "island_name": "c", "reason": "chose c",
                            "sanitized": True, "sensitivity": 0.4}}
    row = outcome(request, answer, "me", {})
    assert (row.island, row.island_tier, row.sanitized) == ("c", "cloud", True)
    assert "PERSON" in row.entities and "Maria" not in row.entities
    refused = outcome(request, {"error": {"message": "no island"}}, "me", {})
    assert (refused.island_tier, refused.reason) == ("refused", "no island")


def test_privacy_problems_catch_a_leak_and_a_wrong_island() -> None:
    fine = [_row("sensitive", "server", "personal"), _row("sensitive", "refused", "refused"),
            _row("low", "c", "cloud", sanitized=True)]
    assert privacy_problems(fine, [{"messages": [{"content": "[PERSON_1] is ill"}]}]) == []
    bad = privacy_problems([_row("sensitive", "pal", "friend")],
                           [{"messages": [{"content": f"hi {PLANTED[0]}"}]}])
    assert bad == ["a sensitive request ran on pal (friend)",
                   "a planted value #1 reached the cloud"]
    assert PLANTED[0] not in " ".join(bad)  # the problem names no value


def test_summary_counts_per_island() -> None:
    rows = [_row("sensitive", "server", "personal"), _row("low", "server", "personal"),
            _row("low", "c", "cloud", sanitized=True)]
    assert summary(rows) == [("c", "cloud", 1, 0, 1), ("server", "personal", 2, 1, 0)]


def test_the_workload_plants_what_it_checks() -> None:
    prompts = " ".join(r.prompt for r in WORKLOAD)
    assert all(value in prompts for value in PLANTED)
    assert {r.kind for r in SHORT} == {"sensitive", "moderate", "low"}


@pytest.mark.slow
def test_short_demo_end_to_end(tmp_path: Path) -> None:
    work, report = tmp_path / "demo", tmp_path / "report.json"
    done = subprocess.run([ISLANDNODE, "demo", "--short", "--dir", str(work), "--report",
                           str(report)], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "summary" in done.stdout and "all processes stopped cleanly" in done.stdout
    result = json.loads(report.read_text())
    rows = result["rows"]
    assert len(rows) == len(SHORT) and result["problems"] == [] and result["clean"]
    for row in rows:
        if row["kind"] == "sensitive":
            assert row["tier"] in ("personal", "this device", "refused"), row
    assert any(r["tier"] == "cloud" and r["sanitized"] for r in rows)
    # What the cloud server itself recorded: sanitized text, and no planted value.
    received = read_record(work / "cloud-received.jsonl")
    assert received
    sent = json.dumps(received)
    assert not [value for value in PLANTED if value in sent]
    assert re.search(r"\[AGE_\d+\]", sent)  # the 45-year-old became a placeholder
