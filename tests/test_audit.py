"""Audit records: complete, JSON, append-only, 0600, and never prompt text or entity values."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from islandrun.node.audit import AUDIT_FILE, AuditLog, audit_record
from islandrun.node.waves import Decision, RoutePolicy, decide, failover
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier

from .waves_helpers import IDLE, island, local

AT = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
ISLANDS = [local(), island("gpt", IslandKind.CLOUD, privacy=0.3, price_per_request=0.002)]


def decision(
    sensitivity: float | None, tier: Tier = Tier.BURSTABLE, islands: list[IslandSnapshot] = ISLANDS
) -> Decision:
    request = RouteRequest(request_id="req-7", client_id="phone", tier=tier)
    return decide(request, sensitivity, islands, RoutePolicy(), IDLE)


def test_record_has_every_field() -> None:
    d = decision(0.1, tier=Tier.SECONDARY)
    record = audit_record(d, at=AT, level="internal", entity_types=["EMAIL", "PERSON", "EMAIL"])
    assert record == {
        "time": "2023-11-14T22:13:20.250+00:00",
        "request_id": "req-7",
        "client_id": "phone",
        "sensitivity": 0.1,
        "level": "internal",
        "entity_types": ["EMAIL", "PERSON"],
        "island": "here",
        "island_name": "here",
        "tier": "secondary",
        "refused": False,
        "queued": False,
        "sanitized": False,
        "reason": d.reason,
        "cost": 0.0,
        "fallbacks": [],
        "failed": [],
    }


def test_refusals_and_failovers_are_recorded() -> None:
    cloud_only = decision(None, islands=ISLANDS[1:])
    refused = audit_record(cloud_only, at=AT, level="restricted", entity_types=[])
    assert refused["refused"] is True
    assert refused["island"] is None
    assert refused["fallbacks"] == ["mist"]
    assert refused["reason"].startswith("refused")
    d = decision(0.1, tier=Tier.SECONDARY)
    moved = audit_record(failover(d, "here"), at=AT, level="public", entity_types=[])
    assert (moved["island"], moved["failed"], moved["cost"]) == ("gpt", ["here"], 0.002)
    assert moved["sanitized"] is True


def test_values_passed_as_types_never_reach_the_record() -> None:
    secret_values = ["john.doe@example.com", "Jane Smith", "4111 1111 1111 1111"]
    record = audit_record(decision(0.2), at=AT, level="Top Secret!", entity_types=secret_values)
    text = json.dumps(record)
    assert record["entity_types"] == ["OTHER"]
    assert record["level"] == "other"
    for value in [*secret_values, "Top Secret"]:
        assert value not in text


def test_log_appends_lines_and_is_private(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    first = audit_record(decision(0.1), at=AT, level="public", entity_types=[])
    second = audit_record(decision(0.9), at=AT + 1, level="restricted", entity_types=["SSN"])
    log.append(first)
    log.append(second)
    path = tmp_path / AUDIT_FILE
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    AuditLog(tmp_path).append(first)  # a new writer appends, never truncates
    assert len(path.read_text().splitlines()) == 3
