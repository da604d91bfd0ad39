"""WAVES, the router: constraints first, then the paper's weighted score (pure).

WAVES (paper §VI, "Weighted Agent-based Variance Equilibration System") picks
the island each request runs on. :func:`decide` is a pure function of the
request, its sensitivity (from MIST), the island snapshots (from LIGHTHOUSE),
the user's policy and this device's capacity report (from TIDE): no clock, no
I/O, no randomness, so the ``route`` command and the node make the very same
decision from the very same inputs.

Theory of operation
-------------------
1. *Fallbacks* (§IV-B). An agent that failed is passed as ``None`` and replaced
   by its conservative stand-in: MIST => sensitivity 1.0; TIDE => this
   device exhausted; LIGHTHOUSE => the caller's cached island list. Each one
   used is named in the explanation.
2. *Hard constraints*, checked in this order, first failure named
   (:class:`Constraint`): liveness; tier (below); privacy ``P >= sensitivity``;
   datasets present (data locality, §III-F); model available; capacity;
   battery (a remote island whose TIDE says it will not serve others);
   latency budget; cost budget. Nothing is ever traded against them: under
   load, under attack (a lying TIDE), or when agents fail, WAVES refuses
   rather than downgrades (fail closed, §VIII-D).
3. *Tiers* (§IX-B) decide where this device fits. ``PRIMARY`` runs only
   locally and queues when the device is busy; ``SECONDARY`` may run locally
   while its capacity is >= ``secondary_local_min`` (0.5); ``BURSTABLE`` only
   while it is >= ``burstable_local_min`` (0.8). Below those, the local island
   is removed by the ``tier`` constraint and the request goes elsewhere.
4. *Ranking*. ``WEIGHTED`` mode (Eq. 1) minimises ``sum_k w_k * f_k(island)``
   over the policy's objectives (cost, latency, trust, energy and any plug-in
   ones). ``CONSTRAINT`` mode (§VI-C) minimises one named objective (latency
   by default) and breaks ties by the weighted score. Ties left are broken by
   device id, so decisions are deterministic.
5. *Failover*. The decision keeps the best ``1 + max_failover`` eligible
   islands; :func:`failover` moves to the next one when the chosen island fails
   before answering. Only islands that passed every constraint are kept, so a
   failover can never reach an ineligible island.

What this is not: WAVES does not sanitise prompts (MIST does, when
:attr:`Decision.sanitize` says so), send anything, or write the audit log
(:mod:`islandrun.node.audit` builds records from a :class:`Decision`).
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves_inputs import IslandSnapshot, RouteRequest, Tier
from islandrun.node.waves_objectives import (
    DEFAULT_OBJECTIVES,
    ObjectiveFn,
    Objectives,
    RouteContext,
)
from islandrun.protocol.errors import IslandRunError


class WavesError(IslandRunError):
    """WAVES was used wrongly (bad policy, failover of an island it did not choose)."""


class Constraint(enum.Enum):
    """The hard constraints, in the order they are checked. Each removes an island."""

    LIVENESS = "liveness"
    TIER = "tier"
    PRIVACY = "privacy"
    DATASET = "dataset"
    MODEL = "model"
    CAPACITY = "capacity"
    BATTERY = "battery"
    LATENCY = "latency"
    COST = "cost"
    BUDGET = "spend budget"  # the owner's daily / monthly ceiling for a paid island


class Fallback(enum.Enum):
    """A failed agent and the conservative stand-in WAVES used for it (§IV-B)."""

    MIST = "MIST unavailable: sensitivity treated as 1.0"
    TIDE = "TIDE unavailable: this device treated as exhausted"
    LIGHTHOUSE = "LIGHTHOUSE unavailable: using the cached island list"


class Mode(enum.Enum):
    WEIGHTED = "weighted"  # Eq. 1: minimise the weighted sum of objectives
    CONSTRAINT = "constraint"  # §VI-C: minimise one objective among eligible islands


def _unit_or_raise(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise WavesError(f"policy: {name} must be a number in [0, 1], got {value!r}")


def _positive_or_raise(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 < value < math.inf):
        raise WavesError(f"policy: {name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePolicy:
    """The user's routing preferences. Every field has a safe default."""

    # Weights of Eq. 1 by objective name, overriding each objective's default.
    weights: Mapping[str, float] = field(default_factory=dict, hash=False)
    # The objectives scored; add plug-in ones with ``DEFAULT_OBJECTIVES.register``.
    objectives: Objectives = field(default=DEFAULT_OBJECTIVES, hash=False)
    mode: Mode = Mode.WEIGHTED
    # In CONSTRAINT mode, the objective minimised first (paper §VI-C: latency).
    constraint_objective: str = "latency"
    # Local capacity (TIDE headroom, [0, 1]) needed to keep secondary / burstable work local.
    secondary_local_min: float = 0.5
    burstable_local_min: float = 0.8
    # Eligible islands kept in reserve for failover after the chosen one.
    max_failover: int = 2
    # Cost that scores 1.0 when the request has no cost budget (currency per request).
    cost_ref: float = 0.01
    # Latency that scores 1.0 when the request has no latency budget.
    latency_ref_ms: float = 2000.0
    # Derived once: the (fn, weight) pairs scored, and the CONSTRAINT-mode objective.
    scorers: tuple[tuple[ObjectiveFn, float], ...] = field(init=False, repr=False, compare=False)
    first_objective: ObjectiveFn = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _unit_or_raise("secondary_local_min", self.secondary_local_min)
        _unit_or_raise("burstable_local_min", self.burstable_local_min)
        _positive_or_raise("cost_ref", self.cost_ref)
        _positive_or_raise("latency_ref_ms", self.latency_ref_ms)
        if not (isinstance(self.max_failover, int) and 0 <= self.max_failover <= 16):
            raise WavesError(f"policy: max_failover must be 0..16, got {self.max_failover!r}")
        if not isinstance(self.mode, Mode):
            raise WavesError(f"policy: mode must be a Mode, got {self.mode!r}")
        try:
            scorers = self.objectives.weighted(self.weights)
            first = self.objectives[self.constraint_objective].fn
        except IslandRunError as err:
            raise WavesError(f"policy: {err}") from None
        object.__setattr__(self, "scorers", scorers)
        object.__setattr__(self, "first_objective", first)

    def local_minimum(self, tier: Tier) -> float:
        """Local capacity a request of ``tier`` needs to run on this device."""
        if tier is Tier.PRIMARY:
            return 0.0
        return self.secondary_local_min if tier is Tier.SECONDARY else self.burstable_local_min


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a decision came out as it did: every candidate, its fate and its score."""

    mode: Mode
    fallbacks: tuple[Fallback, ...]
    candidates: tuple[IslandSnapshot, ...]  # every island considered, input order
    removed: Mapping[str, Constraint]  # device id -> the first constraint it failed
    scores: Mapping[str, float]  # device id -> Eq. 1 score, eligible islands only
    firsts: Mapping[str, float]  # CONSTRAINT mode: device id -> the objective minimised
    local_capacity: float  # this device's TIDE headroom as WAVES used it
    local_queued: bool  # primary work accepted locally while the device is busy


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one request runs, or a refusal; with the explanation of either."""

    request: RouteRequest
    sensitivity: float  # as used: after the MIST fallback and clamping
    policy: RoutePolicy
    island: IslandSnapshot | None  # None: refused
    ranked: tuple[IslandSnapshot, ...]  # the chosen island then its failover reserves
    failed: tuple[str, ...]  # device ids that failed before answering, in order
    explanation: Explanation

    @property
    def refused(self) -> bool:
        return self.island is None

    @property
    def queued(self) -> bool:
        """Primary work waiting for this device's capacity rather than running at once."""
        return self.island is not None and self.island.is_local and self.explanation.local_queued

    @property
    def sanitize(self) -> bool:
        """MIST must replace entities: the island is less trusted than this device (T = 1)."""
        return self.island is not None and self.island.trust < 1.0

    @property
    def cost(self) -> float:
        return 0.0 if self.island is None else self.island.cost_of(self.request.tokens)

    @property
    def reason(self) -> str:
        """One line for people and the audit log; never prompt text."""
        return _reason(self)

    def explain(self) -> list[str]:
        """The explanation as lines of text: each candidate, and why it won or lost."""
        return _explain_lines(self)

    def to_dict(self) -> dict[str, Any]:
        """The decision and its explanation as JSON-ready data."""
        return _to_dict(self)


# --- deciding ----------------------------------------------------------------


def _clip(value: float) -> float:
    """An objective value clipped to [0, 1]; NaN counts as the worst."""
    if 0.0 <= value <= 1.0:
        return value
    return 0.0 if value < 0.0 else 1.0


def _sensitivity(value: float | None, fallbacks: list[Fallback]) -> float:
    if value is None or not isinstance(value, int | float) or math.isnan(value):
        fallbacks.append(Fallback.MIST)
        return 1.0
    return min(1.0, max(0.0, float(value)))


def _local_capacity(report: CapacityReport) -> float:
    """This device's usable capacity; anything odd in the report reads as 0 (fail closed)."""
    capacity = report.capacity
    if report.accepting is not True or not isinstance(capacity, int | float):
        return 0.0
    return _clip(capacity) if math.isfinite(capacity) else 0.0


def _screen(
    pool: Sequence[IslandSnapshot],
    request: RouteRequest,
    sensitivity: float,
    local_tier_ok: bool,
    local_has_room: bool,
) -> tuple[dict[str, Constraint], list[IslandSnapshot]]:
    """Split the pool into removed (with the first failed constraint) and eligible."""
    removed: dict[str, Constraint] = {}
    eligible: list[IslandSnapshot] = []
    remote_tier_ok = request.tier is not Tier.PRIMARY
    needs = request.datasets
    model = request.model
    tokens = request.tokens
    max_latency = math.inf if request.max_latency_ms is None else request.max_latency_ms
    max_cost = math.inf if request.max_cost is None else request.max_cost
    for island in pool:
        local = island.is_local
        if not island.alive:
            why = Constraint.LIVENESS
        elif not (local_tier_ok if local else remote_tier_ok):
            why = Constraint.TIER
        elif island.privacy < sensitivity:
            why = Constraint.PRIVACY
        elif needs and not needs <= island.datasets:
            why = Constraint.DATASET
        elif (model not in island.models) if model is not None else not island.models:
            why = Constraint.MODEL
        elif not (local_has_room if local else island.capacity > 0.0):
            why = Constraint.CAPACITY
        elif not local and island.willingness <= 0.0:
            why = Constraint.BATTERY
        elif island.expected_latency_ms > max_latency:
            why = Constraint.LATENCY
        elif island.price_per_request + island.price_per_token * tokens > max_cost:
            why = Constraint.COST
        elif island.budget_left is not None and island.cost_of(tokens) > island.budget_left:
            why = Constraint.BUDGET
        else:
            eligible.append(island)
            continue
        removed[island.device_id] = why
    return removed, eligible


def _context(request: RouteRequest, sensitivity: float, policy: RoutePolicy) -> RouteContext:
    cost_ref = policy.cost_ref if request.max_cost is None else request.max_cost
    latency_ref = request.max_latency_ms
    if latency_ref is None:
        latency_ref = policy.latency_ref_ms
    return RouteContext(
        request=request,
        sensitivity=sensitivity,
        cost_scale=1.0 / cost_ref if cost_ref > 0.0 else 0.0,
        latency_scale=1.0 / latency_ref if latency_ref > 0.0 else 0.0,
    )


def _rank(
    eligible: list[IslandSnapshot], ctx: RouteContext, policy: RoutePolicy
) -> tuple[dict[str, float], dict[str, float], list[IslandSnapshot]]:
    """Eq. 1 scores, CONSTRAINT-mode values, and the best ``1 + max_failover`` islands."""
    scorers = policy.scorers
    scores: dict[str, float] = {}
    for island in eligible:
        total = 0.0
        for fn, weight in scorers:
            total += weight * _clip(fn(island, ctx))
        scores[island.device_id] = total
    keep = 1 + policy.max_failover
    if policy.mode is Mode.CONSTRAINT:
        first = policy.first_objective
        firsts = {i.device_id: _clip(first(i, ctx)) for i in eligible}
        best = heapq.nsmallest(
            keep, eligible, key=lambda i: (firsts[i.device_id], scores[i.device_id], i.device_id)
        )
        return scores, firsts, best
    best = heapq.nsmallest(keep, eligible, key=lambda i: (scores[i.device_id], i.device_id))
    return scores, {}, best


def decide(
    request: RouteRequest,
    sensitivity: float | None,
    islands: Iterable[IslandSnapshot] | None,
    policy: RoutePolicy,
    local: CapacityReport | None,
    *,
    cached_islands: Iterable[IslandSnapshot] = (),
) -> Decision:
    """Pick the island for ``request``, or refuse; pure.

    ``None`` for ``sensitivity``, ``islands`` or ``local`` means MIST,
    LIGHTHOUSE or TIDE failed; WAVES then uses sensitivity 1.0,
    ``cached_islands``, or an exhausted local device respectively.
    """
    fallbacks: list[Fallback] = []
    level = _sensitivity(sensitivity, fallbacks)
    if islands is None:
        fallbacks.append(Fallback.LIGHTHOUSE)
        islands = cached_islands
    if local is None:
        fallbacks.append(Fallback.TIDE)
        local = CapacityReport.exhausted()
    pool = tuple(islands)
    capacity = _local_capacity(local)
    primary = request.tier is Tier.PRIMARY
    local_tier_ok = capacity >= policy.local_minimum(request.tier)
    has_room = capacity > 0.0
    removed, eligible = _screen(pool, request, level, local_tier_ok, has_room or primary)
    ctx = _context(request, level, policy)
    scores, firsts, best = _rank(eligible, ctx, policy)
    explanation = Explanation(
        mode=policy.mode,
        fallbacks=tuple(fallbacks),
        candidates=pool,
        removed=removed,
        scores=scores,
        firsts=firsts,
        local_capacity=capacity,
        local_queued=primary and not has_room,
    )
    return Decision(
        request=request,
        sensitivity=level,
        policy=policy,
        island=best[0] if best else None,
        ranked=tuple(best),
        failed=(),
        explanation=explanation,
    )


def failover(decision: Decision, failed_id: str) -> Decision:
    """The decision after the chosen island ``failed_id`` failed before answering.

    The next reserve island (all of which passed every constraint), or a
    refusal once the ``1 + max_failover`` kept islands have all failed.
    """
    if decision.island is None or decision.island.device_id != failed_id:
        raise WavesError(f"failover: {failed_id!r} is not the island this decision chose")
    rest = decision.ranked[1:]
    return dataclasses.replace(
        decision,
        island=rest[0] if rest else None,
        ranked=rest,
        failed=(*decision.failed, failed_id),
    )


# --- explaining ----------------------------------------------------------------


def _detail(why: Constraint, island: IslandSnapshot, d: Decision) -> str:
    """What exactly failed, from the island's and request's figures."""
    request, e = d.request, d.explanation
    if why is Constraint.TIER:
        if not island.is_local:
            return "primary work runs only on this device"
        need = d.policy.local_minimum(request.tier)
        return (f"this device's capacity {e.local_capacity:.2f} is below the {need:.2f} "
                f"{request.tier.value} work needs to stay local")
    if why is Constraint.PRIVACY:
        return f"privacy {island.privacy:.2f} < sensitivity {d.sensitivity:.2f}"
    if why is Constraint.DATASET:
        return "missing dataset(s): " + ", ".join(sorted(request.datasets - island.datasets))
    if why is Constraint.MODEL:
        wanted = request.model
        return f"no model {wanted!r}" if wanted is not None else "offers no model"
    if why is Constraint.CAPACITY:
        return "this device is at its buffer (TIDE)" if island.is_local else "no spare capacity"
    if why is Constraint.BATTERY:
        pct = "unknown" if island.battery_pct is None else f"{island.battery_pct:.0f}%"
        return f"battery {pct}, not charging: not serving others"
    if why is Constraint.LATENCY:
        return f"expected {island.expected_latency_ms:.0f} ms > budget {request.max_latency_ms} ms"
    if why is Constraint.COST:
        return f"cost {island.cost_of(request.tokens):.4f} > budget {request.max_cost}"
    if why is Constraint.BUDGET:
        return (f"cost {island.cost_of(request.tokens):.4f} > {island.budget_left:.4f} left "
                "of its daily / monthly spend ceiling")
    return "not reachable"


def _removed_summary(d: Decision) -> str:
    by_constraint: dict[Constraint, list[str]] = {}
    names = {i.device_id: i.name or i.device_id for i in d.explanation.candidates}
    for device_id, why in d.explanation.removed.items():
        by_constraint.setdefault(why, []).append(names[device_id])
    parts = []
    for why in Constraint:
        if why in by_constraint:
            listed = by_constraint[why]
            more = f" +{len(listed) - 5} more" if len(listed) > 5 else ""
            parts.append(f"{why.value}: {', '.join(listed[:5])}{more}")
    return "; ".join(parts) or "no islands known"


def _reason(d: Decision) -> str:
    if d.island is None:
        if d.failed:
            return "refused: every eligible island kept for failover failed (" + ", ".join(
                d.failed) + ")"
        return f"refused: no island satisfies every constraint ({_removed_summary(d)})"
    name = d.island.name or d.island.device_id
    if d.queued:
        return f"queued on {name}: primary work stays on this device while it is busy"
    if d.failed:
        return f"failover to {name} after {', '.join(d.failed)} failed"
    count = len(d.explanation.scores)
    if d.policy.mode is Mode.CONSTRAINT:
        first = d.policy.constraint_objective
        return f"chose {name}: lowest {first} of {count} eligible island(s)"
    score = d.explanation.scores[d.island.device_id]
    return f"chose {name}: best score {score:.3f} of {count} eligible island(s)"


def _fate(island: IslandSnapshot, d: Decision) -> tuple[Constraint | None, str]:
    why = d.explanation.removed.get(island.device_id)
    if why is not None:
        return why, f"removed by {why.value}: {_detail(why, island, d)}"
    text = f"eligible, score {d.explanation.scores[island.device_id]:.3f}"
    if island.device_id in d.explanation.firsts:
        objective = d.policy.constraint_objective
        text += f", {objective} {d.explanation.firsts[island.device_id]:.3f}"
    if d.island is not None and island.device_id == d.island.device_id:
        text += " <- chosen"
    elif island.device_id in d.failed:
        text += " (failed)"
    return None, text


def _explain_lines(d: Decision) -> list[str]:
    e = d.explanation
    lines = [
        d.reason,
        f"request {d.request.request_id}: tier {d.request.tier.value}, "
        f"sensitivity {d.sensitivity:.2f}, mode {e.mode.value}, "
        f"local capacity {e.local_capacity:.2f}",
    ]
    lines += [f"fallback: {f.value}" for f in e.fallbacks]
    for island in e.candidates:
        lines.append(f"  {island.name or island.device_id} ({island.kind.value}): "
                     f"{_fate(island, d)[1]}")
    if d.sanitize:
        lines.append("context will be sanitised: the island is less trusted than this device")
    return lines


def _to_dict(d: Decision) -> dict[str, Any]:
    e = d.explanation
    candidates = []
    for island in e.candidates:
        why, text = _fate(island, d)
        candidates.append({
            "device_id": island.device_id,
            "name": island.name,
            "kind": island.kind.value,
            "removed_by": None if why is None else why.value,
            "score": e.scores.get(island.device_id),
            "explanation": text,
        })
    chosen = d.island
    return {
        "request_id": d.request.request_id,
        "tier": d.request.tier.value,
        "sensitivity": d.sensitivity,
        "mode": e.mode.value,
        "refused": d.refused,
        "island": None if chosen is None else {
            "device_id": chosen.device_id, "name": chosen.name, "kind": chosen.kind.value},
        "queued": d.queued,
        "sanitize": d.sanitize,
        "cost": d.cost,
        "reason": d.reason,
        "fallbacks": [f.name.lower() for f in e.fallbacks],
        "local_capacity": e.local_capacity,
        "failover_order": [i.device_id for i in d.ranked],
        "failed": list(d.failed),
        "candidates": candidates,
    }
