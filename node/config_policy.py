"""The owner's routing and capacity preferences: ``[waves]`` and ``[tide]`` in ``config.toml``.

The paper makes WAVES's weights "user-configurable preferences" (§VI, Eq. 1)
and gives TIDE three buffer presets (§IX-A). These sections are where the
owner sets them; :meth:`WavesSection.policy` and :attr:`TideSection.preset`
turn them into the :class:`~islandrun.node.waves.RoutePolicy` and the
:class:`~islandrun.node.tide_capacity.BufferPreset` the node runs with. Both
sync across the owner's personal devices (``groupconfig``).

Example::

    [waves]
    mode = "weighted"            # or "constraint": minimise one objective first
    constraint_objective = "latency"
    latency_ref_ms = 2000.0      # latency that scores 0.5 when a request has no budget
    cost_ref = 0.01              # cost per request that scores 1.0 without a budget
    max_failover = 2             # eligible islands kept in reserve
    secondary_local_min = 0.5    # local headroom secondary work needs to stay here
    burstable_local_min = 0.8    # ... and burstable work

    [waves.weights]              # Eq. 1 weights, each in [0, 10]
    cost = 0.3
    latency = 0.3
    trust = 0.3
    energy = 0.3

    [tide]
    buffer = "moderate"          # "conservative" (30%), "moderate" (20%), "aggressive" (10%)

Every default is the built-in one (the weights of ``DEFAULT_OBJECTIVES``, the
fields of ``RoutePolicy()``, TIDE's moderate buffer), so a config without
these sections routes exactly as before. Values are checked by the same
rules as ``RoutePolicy`` itself (:func:`_by_route_policy`), so the config
never accepts what the router would refuse.

What this is not: the loader (``config``: types, unknown keys, file:line in
errors) and the router (``waves``).
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .tide_capacity import BufferPreset, TideConfig
from .waves import Mode, RoutePolicy, WavesError
from .waves_objectives import DEFAULT_OBJECTIVES

#: The highest weight a config may give an objective: weights only matter
#: relative to each other, and a bound keeps a typo (30 for 0.3) visible.
MAX_WEIGHT = 10.0

_BUILT_IN = RoutePolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsSection:
    """``[waves.weights]``: the weight of each objective of Eq. 1, in [0, 10].

    Only the ratios matter; 0 leaves an objective out. The defaults are the
    built-in ones (``waves_objectives.DEFAULT_OBJECTIVES``).
    """

    #: Price of the request on the island (paid cloud islands).
    cost: float = DEFAULT_OBJECTIVES["cost"].weight
    #: Expected latency under the island's load, over the link it is reached by.
    latency: float = DEFAULT_OBJECTIVES["latency"].weight
    #: ``1 - T``: prefer the islands the owner trusts more.
    trust: float = DEFAULT_OBJECTIVES["trust"].weight
    #: ``1 - willingness``: spare devices on a low battery (mains, charging: 0).
    energy: float = DEFAULT_OBJECTIVES["energy"].weight


@dataclass(frozen=True, slots=True, kw_only=True)
class WavesSection:
    """``[waves]``: how WAVES ranks the islands that pass every hard constraint."""

    weights: WeightsSection = field(default_factory=WeightsSection)
    #: "weighted" (Eq. 1: the smallest weighted sum) or "constraint" (§VI-C:
    #: the smallest ``constraint_objective``, ties broken by the weighted sum).
    mode: str = _BUILT_IN.mode.value
    #: The objective "constraint" mode minimises first: cost, latency, trust or energy.
    constraint_objective: str = _BUILT_IN.constraint_objective
    #: Milliseconds of expected latency that score 0.5 when a request has no budget (> 0).
    latency_ref_ms: float = _BUILT_IN.latency_ref_ms
    #: Cost per request (currency) that scores 1.0 when a request has no budget (> 0).
    cost_ref: float = _BUILT_IN.cost_ref
    #: Eligible islands kept in reserve to fail over to (0-16).
    max_failover: int = _BUILT_IN.max_failover
    #: Local TIDE headroom, [0, 1], that secondary / burstable work needs to stay here.
    secondary_local_min: float = _BUILT_IN.secondary_local_min
    burstable_local_min: float = _BUILT_IN.burstable_local_min

    def policy(self) -> RoutePolicy:
        """The router's policy for these settings."""
        rest = {k: v for k, v in asdict(self).items() if k not in ("weights", "mode")}
        return RoutePolicy(weights=asdict(self.weights), mode=Mode(self.mode), **rest)


@dataclass(frozen=True, slots=True, kw_only=True)
class TideSection:
    """``[tide]``: this owner's capacity buffer (paper §IX-A)."""

    #: Capacity kept for the owner: "conservative" (30%: offload early, the
    #: device stays responsive), "moderate" (20%), "aggressive" (10%: use the
    #: device hard, fewer paid cloud requests).
    buffer: str = BufferPreset(TideConfig().buffer).name.lower()

    @property
    def preset(self) -> BufferPreset:
        return BufferPreset[self.buffer.upper()]


def _weight(value: float) -> float:
    if not 0.0 <= value <= MAX_WEIGHT:
        raise ValueError(f"must be between 0 and {MAX_WEIGHT:g} (only the ratios matter)")
    return value


def _one_of(choices: typing.Iterable[str]) -> typing.Callable[[str], str]:
    allowed = tuple(choices)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(c) for c in allowed)}")
        return value

    return check


def _by_route_policy(key: str) -> typing.Callable[[Any], Any]:
    """Check ``key`` exactly as ``RoutePolicy`` does, with its message."""

    def check(value: Any) -> Any:
        try:
            RoutePolicy(**{key: value})
        except WavesError as err:
            raise ValueError(str(err).removeprefix(f"policy: {key} ")) from None
        return value

    return check


#: Extra checks per (section, key) beyond the type, for ``config._CHECKS``.
CHECKS: dict[tuple[str, str], typing.Callable[[Any], Any]] = {
    **{("waves.weights", name): _weight for name in (f.name for f in fields(WeightsSection))},
    ("waves", "mode"): _one_of(m.value for m in Mode),
    ("waves", "constraint_objective"): _one_of(o.name for o in DEFAULT_OBJECTIVES),
    **{("waves", key): _by_route_policy(key) for key in (
        "latency_ref_ms", "cost_ref", "max_failover", "secondary_local_min",
        "burstable_local_min")},
    ("tide", "buffer"): _one_of(p.name.lower() for p in BufferPreset),
}
