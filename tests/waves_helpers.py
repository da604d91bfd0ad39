"""Builders shared by the WAVES tests: islands and local capacity reports with sane defaults."""

from __future__ import annotations

import dataclasses
from typing import Any

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot

_TRUST = {
    IslandKind.PERSONAL: 1.0,
    IslandKind.FRIEND: 0.7,
    IslandKind.EDGE: 0.7,
    IslandKind.CLOUD: 0.4,
}


def island(device_id: str, kind: IslandKind = IslandKind.PERSONAL, **fields: Any) -> IslandSnapshot:
    """An island offering model "m"; trust and privacy follow its kind unless given."""
    fields.setdefault("trust", _TRUST[kind])
    fields.setdefault("privacy", fields["trust"])
    fields.setdefault("models", frozenset({"m"}))
    fields.setdefault("latency_ms", 100.0)
    return IslandSnapshot(device_id=device_id, name=device_id, kind=kind, **fields)


def local(**fields: Any) -> IslandSnapshot:
    fields.setdefault("latency_ms", 50.0)
    return island("here", IslandKind.PERSONAL, is_local=True, **fields)


def capacity(value: float, *, accepting: bool = True) -> CapacityReport:
    """A TIDE report of this device with headroom ``value``."""
    return dataclasses.replace(
        CapacityReport.exhausted(),
        capacity=value,
        available=value,
        accepting=accepting,
        exhaustion_in_s=None,
        willingness=1.0,
    )


IDLE = capacity(1.0)
