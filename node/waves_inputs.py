"""What WAVES decides over: island snapshots and route requests (frozen values).

An *island* (paper §III) is a place a request can run: this device, another
of the owner's devices, a friend's device, a private edge server, or a cloud
API. WAVES never sees adverts, pairing records or sockets; something else
(LIGHTHOUSE's table, the ``route`` command's JSON file) turns those into
:class:`IslandSnapshot` values, and the router is a pure function over them.

Both types validate on construction and raise :class:`SnapshotError` with the
offending field, so the router can trust every number it reads: privacy and
trust in [0, 1], capacity in [0, 1], no NaN anywhere. Values that depend only
on the island (its willingness, its expected latency under its current load)
are computed once here, not once per decision.

What this is not: no routing logic (that is :mod:`islandrun.node.waves`) and
no wire format (adverts are :mod:`islandrun.protocol.messages`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from islandrun.protocol.errors import IslandRunError


class SnapshotError(IslandRunError):
    """An island snapshot or route request has an invalid field (named in the message)."""


class IslandKind(enum.Enum):
    """Who runs an island; the paper's trust tiers (§III, §X)."""

    PERSONAL = "personal"  # the owner's own devices (trust 1.0)
    FRIEND = "friend"  # a paired friend's device
    EDGE = "edge"  # a private edge server
    CLOUD = "cloud"  # a cloud API reached through HORIZON


class Tier(enum.Enum):
    """Priority tiers of a prompt (paper §IX-B)."""

    PRIMARY = "primary"  # must run locally; queues under pressure
    SECONDARY = "secondary"  # local while capacity allows, otherwise elsewhere
    BURSTABLE = "burstable"  # local only when capacity is high, otherwise elsewhere


def _check(owner: str, name: str, ok: bool, want: str, value: object) -> None:
    if not ok:
        raise SnapshotError(f"{owner}: {name} must be {want}, got {value!r}")


def _unit(owner: str, name: str, value: float) -> None:
    ok = isinstance(value, int | float) and 0.0 <= value <= 1.0  # False for NaN
    _check(owner, name, ok, "a number in [0, 1]", value)


def _non_negative(owner: str, name: str, value: float) -> None:
    ok = isinstance(value, int | float) and 0.0 <= value < math.inf
    _check(owner, name, ok, "a finite number >= 0", value)


def _names(owner: str, name: str, values: Iterable[str]) -> frozenset[str]:
    ok = not isinstance(values, str) and all(isinstance(v, str) and v for v in values)
    _check(owner, name, ok, "a collection of non-empty strings", values)
    return frozenset(values)


@dataclass(frozen=True, slots=True, kw_only=True)
class IslandSnapshot:
    """One island as WAVES sees it at decision time. Every field is a claim
    from the island's advert or the owner's pairing record; trust and privacy
    come from the local pairing record, never from the island itself."""

    device_id: str
    name: str
    kind: IslandKind
    privacy: float  # P in [0, 1]; eligible only if P >= sensitivity
    trust: float  # T in [0, 1]; scored, and decides sanitisation
    models: frozenset[str]
    datasets: frozenset[str] = frozenset()
    capacity: float = 1.0  # TIDE headroom above the island's buffer, [0, 1]
    in_flight: int = 0  # requests the island is running now
    willingness: float = 1.0  # to serve others, from its battery (TIDE), [0, 1]
    battery_pct: float | None = None  # None: mains power
    charging: bool | None = None
    latency_ms: float = 0.0  # expected time to answer one request when idle
    price_per_request: float = 0.0  # in the user's currency
    price_per_token: float = 0.0
    # What is left of the owner's spend ceiling for this island (HORIZON's
    # daily / monthly budgets), in the user's currency; None: no ceiling.
    budget_left: float | None = None
    alive: bool = True  # LIGHTHOUSE liveness
    is_local: bool = False  # this device
    # Extra per-island figures for plug-in objectives, e.g. {"carbon_g_per_kwh": 120}.
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)
    # Derived once: latency under the island's current load (each in-flight
    # request ahead of ours adds one service time).
    expected_latency_ms: float = field(init=False)

    def __post_init__(self) -> None:
        owner = f"island {self.device_id!r}"
        _check("island", "device_id", isinstance(self.device_id, str) and bool(self.device_id),
               "a non-empty string", self.device_id)
        _check(owner, "name", isinstance(self.name, str), "a string", self.name)
        _check(owner, "kind", isinstance(self.kind, IslandKind), "an IslandKind", self.kind)
        for unit in ("privacy", "trust", "capacity", "willingness"):
            _unit(owner, unit, getattr(self, unit))
        for amount in ("latency_ms", "price_per_request", "price_per_token"):
            _non_negative(owner, amount, getattr(self, amount))
        if self.budget_left is not None:
            _non_negative(owner, "budget_left", self.budget_left)
        _check(owner, "in_flight", isinstance(self.in_flight, int) and self.in_flight >= 0,
               "an integer >= 0", self.in_flight)
        if self.battery_pct is not None:
            ok = isinstance(self.battery_pct, int | float) and 0.0 <= self.battery_pct <= 100.0
            _check(owner, "battery_pct", ok, "a percentage in [0, 100] or null", self.battery_pct)
        metrics_ok = isinstance(self.metrics, Mapping) and all(
            isinstance(v, int | float) and math.isfinite(v) for v in self.metrics.values()
        )
        _check(owner, "metrics", metrics_ok, "a mapping of finite numbers", self.metrics)
        set_ = object.__setattr__
        set_(self, "models", _names(owner, "models", self.models))
        set_(self, "datasets", _names(owner, "datasets", self.datasets))
        set_(self, "metrics", MappingProxyType(dict(self.metrics)))
        set_(self, "expected_latency_ms", self.latency_ms * (1 + self.in_flight))

    def cost_of(self, tokens: int) -> float:
        """Price of one request of ``tokens`` tokens on this island."""
        return self.price_per_request + self.price_per_token * tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRequest:
    """What WAVES needs to know about one request: never its text."""

    request_id: str
    client_id: str = "local"
    model: str | None = None  # None: any model the island has
    datasets: frozenset[str] = frozenset()  # data the request needs, present on the island
    tier: Tier = Tier.SECONDARY
    max_latency_ms: float | None = None  # latency budget; None: no budget
    max_cost: float | None = None  # cost budget per request; None: no budget
    tokens: int = 0  # estimated prompt + answer tokens, for per-token prices

    def __post_init__(self) -> None:
        owner = "request"
        _check(owner, "request_id", isinstance(self.request_id, str) and bool(self.request_id),
               "a non-empty string", self.request_id)
        _check(owner, "client_id", isinstance(self.client_id, str), "a string", self.client_id)
        _check(owner, "model", self.model is None or (isinstance(self.model, str) and
               bool(self.model)), "a non-empty string or null", self.model)
        _check(owner, "tier", isinstance(self.tier, Tier), "a Tier", self.tier)
        for budget in ("max_latency_ms", "max_cost"):
            if getattr(self, budget) is not None:
                _non_negative(owner, budget, getattr(self, budget))
        _check(owner, "tokens", isinstance(self.tokens, int) and self.tokens >= 0,
               "an integer >= 0", self.tokens)
        object.__setattr__(self, "datasets", _names(owner, "datasets", self.datasets))

