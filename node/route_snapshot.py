"""The route snapshot file: one request and the islands around it, as JSON (pure parsing).

``islandnode route --snapshot FILE`` lets a user try a policy before trusting
it: the file describes the islands, this device's capacity, the policy and one
request with its prompt. This module turns the decoded JSON into WAVES's
inputs; the format is documented for users in ``docs/route-snapshot.md``.

Parsing is strict because the file is written by hand: unknown keys, wrong
types and out-of-range numbers are refused with :class:`SnapshotFileError`
naming the place (``islands[2].privacy: ...``), so a typo never silently
changes a decision. Error messages never quote the prompt.

What this is not: it reads no file and runs no agent (that is
:mod:`islandrun.node.cmd_route`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves import Mode, RoutePolicy
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier
from islandrun.protocol.errors import IslandRunError

E = TypeVar("E", bound=enum.Enum)

#: Snapshot format version this module reads.
VERSION = 1


class SnapshotFileError(IslandRunError):
    """The route snapshot file is not valid; the message names the place and the fix."""


class Measure(enum.Enum):
    """``local`` absent from the file: measure this device with TIDE, as the node would."""

    THIS_DEVICE = "this device"


@dataclass(frozen=True, slots=True)
class RouteSnapshot:
    request: RouteRequest
    prompt: str
    islands: tuple[IslandSnapshot, ...] | None  # None: LIGHTHOUSE unavailable
    cached_islands: tuple[IslandSnapshot, ...]
    policy: RoutePolicy
    local: CapacityReport | Measure | None  # None: TIDE unavailable


_ISLAND_KEYS = frozenset(IslandSnapshot.__dataclass_fields__) - {"expected_latency_ms"}
_ISLAND_REQUIRED = frozenset({"device_id", "kind", "privacy", "trust"})
_REQUEST_KEYS = (frozenset(RouteRequest.__dataclass_fields__) - {"request_id"}) | {
    "id",
    "prompt",
}
_POLICY_KEYS = frozenset({
    "weights", "mode", "constraint_objective", "secondary_local_min", "burstable_local_min",
    "max_failover", "cost_ref", "latency_ref_ms",
})
_LOCAL_KEYS = frozenset({"capacity", "accepting"})
_TOP_KEYS = frozenset({"version", "policy", "local", "islands", "cached_islands", "request"})


def _object(value: Any, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SnapshotFileError(f"{where}: must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SnapshotFileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return value


def _choice(enum_type: type[E], value: Any, where: str) -> E:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum_type)
        raise SnapshotFileError(f"{where}: must be one of {choices}, got {value!r}") from None


def _strings(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SnapshotFileError(f"{where}: must be a list of strings")
    return frozenset(value)


def _island(raw: Any, where: str) -> IslandSnapshot:
    fields = dict(_object(raw, where, _ISLAND_KEYS))
    missing = sorted(_ISLAND_REQUIRED - set(fields))
    if missing:
        raise SnapshotFileError(f"{where}: missing {', '.join(missing)}")
    fields["kind"] = _choice(IslandKind, fields.get("kind"), f"{where}.kind")
    for key in ("models", "datasets"):
        if key in fields:
            fields[key] = _strings(fields[key], f"{where}.{key}")
    fields.setdefault("models", frozenset())
    fields.setdefault("name", str(fields.get("device_id", "")))
    try:
        return IslandSnapshot(**fields)
    except IslandRunError as err:
        raise SnapshotFileError(f"{where}: {err}") from None


def _islands(raw: Any, where: str) -> tuple[IslandSnapshot, ...]:
    if not isinstance(raw, list):
        raise SnapshotFileError(f"{where}: must be a list of islands")
    islands = tuple(_island(item, f"{where}[{i}]") for i, item in enumerate(raw))
    seen: set[str] = set()
    for island in islands:
        if island.device_id in seen:
            raise SnapshotFileError(f"{where}: device_id {island.device_id!r} appears twice")
        seen.add(island.device_id)
    return islands


def _request(raw: Any) -> tuple[RouteRequest, str]:
    fields = dict(_object(raw, "request", _REQUEST_KEYS))
    prompt = fields.pop("prompt", None)
    if not isinstance(prompt, str):
        raise SnapshotFileError("request.prompt: must be a string (the text MIST scores)")
    fields["request_id"] = fields.pop("id", "route-cli")
    if "tier" in fields:
        fields["tier"] = _choice(Tier, fields["tier"], "request.tier")
    if "datasets" in fields:
        fields["datasets"] = _strings(fields["datasets"], "request.datasets")
    # Per-token prices need a token count; without one, estimate ~4 characters a token.
    fields.setdefault("tokens", math.ceil(len(prompt) / 4))
    try:
        return RouteRequest(**fields), prompt
    except IslandRunError as err:
        raise SnapshotFileError(str(err)) from None


def _policy(raw: Any) -> RoutePolicy:
    fields = dict(_object(raw, "policy", _POLICY_KEYS))
    if "mode" in fields:
        fields["mode"] = _choice(Mode, fields["mode"], "policy.mode")
    if "weights" in fields and not isinstance(fields["weights"], Mapping):
        raise SnapshotFileError("policy.weights: must be an object of objective name -> weight")
    try:
        return RoutePolicy(**fields)
    except IslandRunError as err:
        raise SnapshotFileError(str(err)) from None


def _local(raw: Any) -> CapacityReport:
    fields = _object(raw, "local", _LOCAL_KEYS)
    capacity = fields.get("capacity")
    accepting = fields.get("accepting", True)
    ok = isinstance(capacity, int | float) and 0.0 <= capacity <= 1.0
    if not ok or not isinstance(accepting, bool):
        raise SnapshotFileError(
            "local: needs capacity (a number in [0, 1]) and optionally accepting (true/false)"
        )
    return CapacityReport(
        capacity=float(capacity), available=float(capacity), accepting=accepting,
        exhaustion_in_s=None, in_flight=0, willingness=1.0, battery_pct=None, charging=None,
    )


def parse_snapshot(data: Any) -> RouteSnapshot:
    """WAVES's inputs from a decoded snapshot file."""
    top = _object(data, "snapshot", _TOP_KEYS)
    if top.get("version", VERSION) != VERSION:
        raise SnapshotFileError(f"version: this islandnode reads version {VERSION}")
    if "request" not in top:
        raise SnapshotFileError("request: missing (the request to route, with its prompt)")
    if "islands" not in top:
        raise SnapshotFileError("islands: missing (use null to test the LIGHTHOUSE fallback)")
    request, prompt = _request(top["request"])
    islands = None if top["islands"] is None else _islands(top["islands"], "islands")
    local: CapacityReport | Measure | None = Measure.THIS_DEVICE
    if "local" in top:
        local = None if top["local"] is None else _local(top["local"])
    return RouteSnapshot(
        request=request,
        prompt=prompt,
        islands=islands,
        cached_islands=_islands(top.get("cached_islands", []), "cached_islands"),
        policy=_policy(top.get("policy", {})),
        local=local,
    )
