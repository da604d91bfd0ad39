"""Property: whatever the islands, sensitivity, capacity reports, lies and failures,
WAVES picks an island that satisfies every hard constraint, or refuses - and it
refuses only when no island does.

The checker below restates the constraints from the issue independently of the
router's code, so a bug in the router's screening cannot hide in both.
"""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves import Decision, Mode, RoutePolicy, decide, failover
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier

# Skewed towards islands and requests that match, so most examples have candidates to pick from.
MODELS = st.sampled_from([{"m1", "m2"}, {"m1", "m2"}, {"m1"}, {"m2"}, set()]).map(frozenset)
DATASETS = st.sampled_from([{"d1", "d2"}, {"d1", "d2"}, {"d1"}, set()]).map(frozenset)
NEEDED = st.sampled_from([set(), set(), {"d1"}, {"d1", "d2"}]).map(frozenset)
UNIT = st.floats(0.0, 1.0)
# Privacy and sensitivity often sit on or just beside each other, where off-by-a-bit bugs live.
LEVELS = st.sampled_from([0.0, 0.29, 0.3, 0.49, 0.5, 0.69, 0.7, 0.99, 1.0]) | UNIT
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def islands(draw: st.DrawFn) -> list[IslandSnapshot]:
    count = draw(st.integers(0, 12))
    pool = []
    for index in range(count):
        battery = draw(st.none() | st.floats(0.0, 100.0))
        pool.append(
            IslandSnapshot(
                device_id=f"i{index}",
                name=f"island-{index}",
                kind=draw(st.sampled_from(IslandKind)),
                privacy=draw(LEVELS),
                trust=draw(UNIT),
                models=draw(MODELS),
                datasets=draw(DATASETS),
                capacity=draw(st.sampled_from([0.0, 1.0]) | UNIT),  # remote claims, maybe lies
                in_flight=draw(st.integers(0, 4)),
                willingness=draw(st.sampled_from([0.0, 1.0]) | UNIT),
                battery_pct=battery,
                charging=draw(st.none() | st.booleans()),
                latency_ms=draw(st.floats(0.0, 3000.0)),
                price_per_request=draw(st.sampled_from([0.0, 0.01]) | st.floats(0.0, 0.1)),
                price_per_token=draw(st.sampled_from([0.0, 1e-5])),
                alive=draw(st.sampled_from([True, True, True, False])),
                is_local=draw(st.sampled_from([False, False, False, True])),
            )
        )
    return pool


requests = st.builds(
    RouteRequest,
    request_id=st.just("r"),
    model=st.sampled_from([None, None, "m1", "m2"]),
    datasets=NEEDED,
    tier=st.sampled_from([Tier.SECONDARY, Tier.SECONDARY, Tier.BURSTABLE, Tier.PRIMARY]),
    max_latency_ms=st.one_of(st.none(), st.none(), st.floats(0.0, 4000.0)),
    max_cost=st.one_of(st.none(), st.none(), st.floats(0.0, 0.2)),
    tokens=st.integers(0, 5000),
)

# TIDE reports of this device, including failures (None) and nonsense.
local_reports = st.none() | st.builds(
    lambda capacity, accepting: dataclasses.replace(
        CapacityReport.exhausted(), capacity=capacity, accepting=accepting
    ),
    st.sampled_from([0.0, 0.49, 0.5, 0.79, 0.8, 1.0]) | ANY_FLOAT,
    st.booleans(),
)

policies = st.builds(
    RoutePolicy,
    mode=st.sampled_from(Mode),
    secondary_local_min=st.sampled_from([0.5, 0.8]) | UNIT,
    burstable_local_min=st.sampled_from([0.5, 0.8]) | UNIT,
    max_failover=st.integers(0, 4),
)

sensitivities = st.one_of(LEVELS, LEVELS, LEVELS, st.none(), ANY_FLOAT)


def expected_sensitivity(value: float | None) -> float:
    if value is None or math.isnan(value):
        return 1.0
    return min(1.0, max(0.0, value))


def local_headroom(report: CapacityReport | None) -> float:
    if report is None or not report.accepting or not math.isfinite(report.capacity):
        return 0.0
    return min(1.0, max(0.0, report.capacity))


def satisfies(
    island: IslandSnapshot,
    request: RouteRequest,
    sensitivity: float,
    report: CapacityReport | None,
    policy: RoutePolicy,
) -> bool:
    """Every hard constraint of issue 4, restated."""
    if request.tier is Tier.PRIMARY:
        placed = island.is_local  # primary may queue, so local capacity is no constraint
    elif island.is_local:
        need = policy.secondary_local_min if request.tier is Tier.SECONDARY else (
            policy.burstable_local_min
        )
        headroom = local_headroom(report)
        placed = headroom > 0.0 and headroom >= need
    else:
        placed = island.capacity > 0.0 and island.willingness > 0.0
    model_ok = request.model in island.models if request.model else bool(island.models)
    cost = island.price_per_request + island.price_per_token * request.tokens
    return (
        placed
        and island.alive
        and island.privacy >= sensitivity
        and request.datasets <= island.datasets
        and model_ok
        and (request.max_latency_ms is None
             or island.latency_ms * (1 + island.in_flight) <= request.max_latency_ms)
        and (request.max_cost is None or cost <= request.max_cost)
    )


def check(
    d: Decision, pool: list[IslandSnapshot], s: float, report: CapacityReport | None
) -> None:
    valid = {i.device_id for i in pool if satisfies(i, d.request, s, report, d.policy)}
    assert d.sensitivity == s
    assert {i.device_id for i in d.ranked} <= valid
    if d.island is None:
        assert d.failed or not valid, "refused although an island satisfies every constraint"
        assert d.reason.startswith("refused")
    else:
        assert d.island.device_id in valid
        assert d.island.device_id not in d.failed
    assert set(d.explanation.removed).isdisjoint(valid)
    assert set(d.explanation.removed) | set(d.explanation.scores) == {i.device_id for i in pool}


@settings(max_examples=400, deadline=None)
@given(
    pool=islands(),
    request=requests,
    sensitivity=sensitivities,
    report=local_reports,
    policy=policies,
    failures=st.integers(0, 6),
)
def test_chosen_island_satisfies_every_constraint_or_refusal(
    pool: list[IslandSnapshot],
    request: RouteRequest,
    sensitivity: float | None,
    report: CapacityReport | None,
    policy: RoutePolicy,
    failures: int,
) -> None:
    s = expected_sensitivity(sensitivity)
    d = decide(request, sensitivity, pool, policy, report)
    check(d, pool, s, report)
    for _ in range(failures):
        if d.island is None:
            break
        d = failover(d, d.island.device_id)
        check(d, pool, s, report)
    assert len(d.failed) <= 1 + policy.max_failover
