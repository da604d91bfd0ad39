"""WAVES's objectives: the terms of the paper's Eq. 1 and the registry that holds them.

Eq. 1 scores every eligible island as a weighted sum ``S(i) = sum_k w_k * f_k(i)``
and WAVES picks the smallest. Each ``f_k`` is an *objective*: a function of an
island and the request context returning a penalty in [0, 1] (0 best, 1
worst). The built-in ones are cost, latency, trust (``1 - T``) and energy
(``1 - willingness``, so a friend's phone on a low battery is asked last).

New agents add objectives without touching the router (paper §IV-B,
"Extensibility"): ``DEFAULT_OBJECTIVES.register("carbon", fn, weight=0.2)``
returns a new registry that a :class:`~islandrun.node.waves.RoutePolicy` uses.
Registries are immutable values, so two policies never share mutable state.

Objectives only rank islands that already passed every hard constraint, so a
wrong or hostile objective can make a choice worse but never unsafe. Values
outside [0, 1] (and NaN) are clipped by the router.

What this is not: hard constraints (privacy, model, data, capacity, budgets)
live in :mod:`islandrun.node.waves` and are never weighed against anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from islandrun.node.waves_inputs import IslandSnapshot, RouteRequest
from islandrun.protocol.errors import IslandRunError


class ObjectiveError(IslandRunError):
    """An objective is registered twice, missing, or given a bad weight."""


@dataclass(frozen=True, slots=True)
class RouteContext:
    """Per-decision values objectives may read; built once per decision."""

    request: RouteRequest
    sensitivity: float
    cost_scale: float  # 1 / (the cost that scores 1.0); 0 when every eligible cost is 0
    latency_scale: float  # 1 / (the latency that scores 1.0)


ObjectiveFn = Callable[[IslandSnapshot, RouteContext], float]


@dataclass(frozen=True, slots=True)
class Objective:
    """One term of Eq. 1: a named penalty function and its default weight."""

    name: str
    fn: ObjectiveFn
    weight: float


def _weight(name: str, weight: float) -> float:
    if not (isinstance(weight, int | float) and 0.0 <= weight < math.inf):
        raise ObjectiveError(f"objective {name!r}: weight must be a finite number >= 0")
    return float(weight)


class Objectives:
    """An immutable registry of objectives, in registration order."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Objective] | None = None) -> None:
        self._entries: dict[str, Objective] = dict(entries or {})

    def register(self, name: str, fn: ObjectiveFn, weight: float) -> Objectives:
        """A new registry with one more objective; names are unique."""
        if name in self._entries:
            raise ObjectiveError(f"objective {name!r} is already registered")
        return Objectives({**self._entries, name: Objective(name, fn, _weight(name, weight))})

    def __getitem__(self, name: str) -> Objective:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise ObjectiveError(f"no objective named {name!r} (known: {known})") from None

    def __iter__(self) -> Iterator[Objective]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def weighted(self, overrides: Mapping[str, float]) -> tuple[tuple[ObjectiveFn, float], ...]:
        """``(fn, weight)`` pairs with the user's weights applied, zero weights left out."""
        unknown = [name for name in overrides if name not in self._entries]
        if unknown:  # a typo in the user's weights is an error, not a silent no-op
            raise ObjectiveError(f"weights name unknown objectives: {', '.join(unknown)}")
        pairs = ((o.fn, _weight(o.name, overrides.get(o.name, o.weight))) for o in self)
        return tuple((fn, w) for fn, w in pairs if w > 0.0)


def cost(island: IslandSnapshot, ctx: RouteContext) -> float:
    """Price of this request on the island, relative to the budget (or the policy's scale)."""
    return island.cost_of(ctx.request.tokens) * ctx.cost_scale


def latency(island: IslandSnapshot, ctx: RouteContext) -> float:
    """Expected latency under the island's current load, relative to the budget.

    ``x / (1 + x)`` of the ratio, not the ratio clipped at 1: a clip scores 8 s and
    27 s alike once both exceed the reference (the simulator's personal-group
    scenario showed WAVES then picking the slow phone), while this stays ordered
    at any latency and still gives the budget (or reference) itself 0.5.
    """
    ratio = island.expected_latency_ms * ctx.latency_scale
    return ratio / (1.0 + ratio)


def trust(island: IslandSnapshot, ctx: RouteContext) -> float:
    """``1 - T``: the less trusted an island, the higher its penalty."""
    return 1.0 - island.trust


def energy(island: IslandSnapshot, ctx: RouteContext) -> float:
    """``1 - willingness``: spare devices on low battery (battery-aware sharing)."""
    return 1.0 - island.willingness


#: The built-in weights; the owner changes them in ``[waves.weights]``
#: (node/config_policy.py). Energy weighs as much as the others because it
#: only ever penalises a device on battery and not charging (mains, charging
#: and cloud islands score 0), and it has to outweigh a friend's trust
#: penalty for battery-aware sharing (paper Scenario 2) to happen at all: a
#: phone at its serve floor scores 0.3 x 1.0 to keep a request, a fully
#: charged friend (T = 0.7) 0.3 x 0.3 plus its latency term, so the request
#: moves unless the friend is seconds slower. At 0.1 the phone's whole energy
#: term (0.1) lost to the friend's trust penalty (0.09) plus any BLE latency,
#: and a low phone never offloaded.
DEFAULT_OBJECTIVES = (
    Objectives()
    .register("cost", cost, 0.3)
    .register("latency", latency, 0.3)
    .register("trust", trust, 0.3)
    .register("energy", energy, 0.3)
)
