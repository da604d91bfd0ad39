"""WAVES hard constraints, tiers, fail-closed refusals, agent fallbacks and explanations."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves import Constraint, Decision, Fallback, RoutePolicy, decide
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier

from .waves_helpers import IDLE, capacity, island, local

CLOUD = IslandKind.CLOUD
FRIEND = IslandKind.FRIEND
POLICY = RoutePolicy()


def route(
    islands: list[IslandSnapshot],
    sensitivity: float | None = 0.0,
    local_report: CapacityReport | None = IDLE,
    **fields: Any,
) -> Decision:
    request = RouteRequest(request_id="r1", **fields)
    return decide(request, sensitivity, islands, POLICY, local_report)


def removed_by(decision: Decision) -> dict[str, str]:
    return {k: v.value for k, v in decision.explanation.removed.items()}


@pytest.mark.parametrize(
    ("candidate", "request_fields", "constraint"),
    [
        (island("x", alive=False), {}, Constraint.LIVENESS),
        (island("x", CLOUD), {"tier": Tier.PRIMARY}, Constraint.TIER),
        (island("x", CLOUD, privacy=0.5), {}, Constraint.PRIVACY),
        (island("x", datasets=frozenset({"a"})), {"datasets": frozenset({"a", "b"})},
         Constraint.DATASET),
        (island("x"), {"model": "other"}, Constraint.MODEL),
        (island("x", models=frozenset()), {}, Constraint.MODEL),
        (island("x", capacity=0.0), {}, Constraint.CAPACITY),
        (island("x", FRIEND, willingness=0.0, battery_pct=12.0, charging=False), {},
         Constraint.BATTERY),
        (island("x", latency_ms=500.0), {"max_latency_ms": 400.0}, Constraint.LATENCY),
        (island("x", latency_ms=150.0, in_flight=2), {"max_latency_ms": 400.0},
         Constraint.LATENCY),
        (island("x", CLOUD, privacy=1.0, price_per_token=0.001), {"tokens": 100, "max_cost": 0.05},
         Constraint.COST),
        (island("x", CLOUD, privacy=1.0, price_per_request=0.2), {"max_cost": 0.1},
         Constraint.COST),
        (island("x", CLOUD, privacy=1.0, price_per_token=0.001, budget_left=0.05),
         {"tokens": 100}, Constraint.BUDGET),
    ],
)
def test_each_constraint_removes_and_is_named(
    candidate: IslandSnapshot, request_fields: dict[str, Any], constraint: Constraint
) -> None:
    decision = route([candidate], sensitivity=0.6, **request_fields)
    assert decision.refused
    assert decision.explanation.removed == {"x": constraint}
    assert f"{constraint.value}: x" in decision.reason


def test_an_island_passing_every_constraint_is_chosen() -> None:
    candidate = island(
        "x", CLOUD, privacy=0.7, datasets=frozenset({"a", "b"}), price_per_token=0.0001,
        latency_ms=300.0,
    )
    decision = route(
        [candidate], sensitivity=0.6, model="m", datasets=frozenset({"a"}), tokens=100,
        max_cost=0.05, max_latency_ms=400.0,
    )
    assert decision.island == candidate
    assert decision.cost == pytest.approx(0.01)
    assert decision.sanitize  # trust 0.4 < this device's 1.0


def test_spend_budget_left_allows_what_it_covers_and_explains_what_it_does_not() -> None:
    paid = island("x", CLOUD, privacy=1.0, price_per_token=0.001, budget_left=0.1)
    assert route([paid], tokens=100).island == paid  # costs 0.1: exactly what is left
    refused = route([paid], tokens=101)
    assert refused.explanation.removed == {"x": Constraint.BUDGET}
    assert "0.1010 > 0.1000 left of its daily / monthly spend ceiling" in "\n".join(
        refused.explain())


def test_privacy_equal_to_sensitivity_is_enough() -> None:
    assert route([island("x", CLOUD, privacy=0.4)], sensitivity=0.4).island is not None


def test_the_first_failed_constraint_is_reported() -> None:
    # Offline, untrusted and modelless: liveness is checked first.
    bad = island("x", CLOUD, alive=False, privacy=0.1, models=frozenset())
    assert route([bad], sensitivity=0.9).explanation.removed == {"x": Constraint.LIVENESS}


def test_paper_motivating_example() -> None:
    # §I: the laptop is busy, the edge server and cloud are not private enough -> home NAS.
    islands = [
        local(),
        island("edge", IslandKind.EDGE, privacy=0.7),
        island("nas", IslandKind.PERSONAL, trust=0.9, privacy=0.9),
        island("gpt", CLOUD, privacy=0.3),
    ]
    d = route(islands, sensitivity=0.85, local_report=capacity(0.1))
    assert d.island is not None and d.island.device_id == "nas"
    assert removed_by(d) == {"here": "tier", "edge": "privacy", "gpt": "privacy"}
    general = route(islands, sensitivity=0.1, local_report=capacity(0.1))
    assert general.island is not None and general.island.device_id in {"nas", "gpt", "edge"}


# --- tiers -------------------------------------------------------------------


def test_primary_runs_locally_even_when_remote_is_better() -> None:
    islands = [local(latency_ms=1000.0), island("fast", latency_ms=1.0)]
    d = route(islands, tier=Tier.PRIMARY)
    assert d.island is not None and d.island.is_local
    assert not d.queued
    assert removed_by(d) == {"fast": "tier"}


def test_primary_queues_locally_when_busy() -> None:
    d = route([local(), island("nas")], tier=Tier.PRIMARY, local_report=capacity(0.0))
    assert d.island is not None and d.island.is_local
    assert d.queued
    assert "queued" in d.reason


def test_primary_is_refused_when_local_lacks_the_model() -> None:
    d = route([local(models=frozenset()), island("nas")], tier=Tier.PRIMARY)
    assert d.refused
    assert removed_by(d) == {"here": "model", "nas": "tier"}


@pytest.mark.parametrize(
    ("tier", "cap", "stays_local"),
    [
        (Tier.SECONDARY, 0.5, True),
        (Tier.SECONDARY, 0.49, False),
        (Tier.BURSTABLE, 0.8, True),
        (Tier.BURSTABLE, 0.79, False),
        (Tier.BURSTABLE, 0.5, False),
    ],
)
def test_secondary_and_burstable_leave_when_capacity_drops(
    tier: Tier, cap: float, stays_local: bool
) -> None:
    islands = [local(), island("nas", latency_ms=60.0)]
    d = route(islands, tier=tier, local_report=capacity(cap))
    assert d.island is not None
    assert d.island.is_local is stays_local
    if not stays_local:
        assert removed_by(d) == {"here": "tier"}
        assert any("below the" in line for line in d.explain())


def test_not_accepting_local_device_counts_as_zero_capacity() -> None:
    islands = [local(), island("nas")]
    d = route(islands, local_report=capacity(0.9, accepting=False))
    assert d.island is not None and d.island.device_id == "nas"
    assert d.explanation.local_capacity == 0.0


def test_tier_thresholds_are_configurable() -> None:
    policy = RoutePolicy(secondary_local_min=0.2)
    request = RouteRequest(request_id="r", tier=Tier.SECONDARY)
    d = decide(request, 0.0, [local(), island("nas")], policy, capacity(0.3))
    assert d.island is not None and d.island.is_local


def test_local_at_zero_capacity_removed_by_capacity_when_the_tier_allows_it() -> None:
    policy = RoutePolicy(secondary_local_min=0.0)
    d = decide(RouteRequest(request_id="r"), 0.0, [local()], policy, capacity(0.0))
    assert removed_by(d) == {"here": "capacity"}


def test_battery_constraint_spares_only_other_peoples_devices() -> None:
    low_local = local(willingness=0.0, battery_pct=5.0, charging=False)
    assert route([low_local]).island == low_local


# --- fail closed -------------------------------------------------------------


def test_refusal_names_every_island_and_its_constraint() -> None:
    islands = [
        island("gpt", CLOUD, privacy=0.3),
        island("claude", CLOUD, privacy=0.4),
        island("nas", models=frozenset({"other"})),
        island("phone", alive=False),
    ]
    d = route(islands, sensitivity=0.9, model="m")
    assert d.refused
    assert removed_by(d) == {"gpt": "privacy", "claude": "privacy", "nas": "model",
                             "phone": "liveness"}
    assert d.reason == (
        "refused: no island satisfies every constraint "
        "(liveness: phone; privacy: gpt, claude; model: nas)"
    )
    lines = d.explain()
    assert "  gpt (cloud): removed by privacy: privacy 0.30 < sensitivity 0.90" in lines
    assert "  nas (personal): removed by model: no model 'm'" in lines


def test_refusal_with_no_islands_at_all() -> None:
    d = route([])
    assert d.refused
    assert "no islands known" in d.reason


def test_load_never_downgrades_privacy() -> None:
    # Attack 1: a (lying) TIDE reports local exhaustion; a sensitive request must not go to cloud.
    islands = [local(), island("gpt", CLOUD, privacy=0.3)]
    d = route(islands, sensitivity=0.9, local_report=capacity(0.0, accepting=False))
    assert d.refused
    assert removed_by(d) == {"here": "tier", "gpt": "privacy"}


# --- agent fallbacks ---------------------------------------------------------


@pytest.mark.parametrize("bad", [None, math.nan])
def test_mist_failure_means_sensitivity_one(bad: float | None) -> None:
    islands = [island("nas", trust=0.9, privacy=0.9), local()]
    d = route(islands, sensitivity=bad)
    assert d.sensitivity == 1.0
    assert d.explanation.fallbacks == (Fallback.MIST,)
    assert d.island is not None and d.island.is_local
    assert removed_by(d) == {"nas": "privacy"}


@pytest.mark.parametrize(("given", "used"), [(-0.5, 0.0), (7.0, 1.0)])
def test_sensitivity_is_clamped(given: float, used: float) -> None:
    assert route([local()], sensitivity=given).sensitivity == used


def test_tide_failure_means_local_exhausted() -> None:
    d = route([local(), island("nas")], local_report=None)
    assert d.explanation.fallbacks == (Fallback.TIDE,)
    assert d.island is not None and d.island.device_id == "nas"
    assert removed_by(d) == {"here": "tier"}


def test_tide_failure_with_primary_tier_queues_locally() -> None:
    d = route([local()], local_report=None, tier=Tier.PRIMARY)
    assert d.queued


@pytest.mark.parametrize("garbage", [math.nan, math.inf, -1.0])
def test_garbage_local_report_reads_as_exhausted(garbage: float) -> None:
    d = route([local(), island("nas")], local_report=capacity(garbage))
    assert d.explanation.local_capacity == 0.0
    assert d.island is not None and d.island.device_id == "nas"


def test_lighthouse_failure_uses_the_cached_list() -> None:
    cached = [island("nas")]
    request = RouteRequest(request_id="r")
    d = decide(request, 0.0, None, POLICY, IDLE, cached_islands=cached)
    assert d.explanation.fallbacks == (Fallback.LIGHTHOUSE,)
    assert d.island == cached[0]
    assert "fallback: LIGHTHOUSE unavailable: using the cached island list" in d.explain()


def test_every_agent_failing_at_once_still_fails_closed() -> None:
    cached = [island("gpt", CLOUD, privacy=0.3), local()]
    d = decide(RouteRequest(request_id="r"), None, None, POLICY, None, cached_islands=cached)
    assert set(d.explanation.fallbacks) == set(Fallback)
    assert d.refused


# --- explanation ---------------------------------------------------------------


def test_explanation_lists_candidates_scores_and_winner() -> None:
    islands = [local(), island("nas"), island("gpt", CLOUD, privacy=0.2)]
    d = route(islands, sensitivity=0.5)
    e = d.explanation
    assert [i.device_id for i in e.candidates] == ["here", "nas", "gpt"]
    assert removed_by(d) == {"gpt": "privacy"}
    assert set(e.scores) == {"here", "nas"}
    assert d.island is not None and d.island.device_id == "here"
    assert e.scores["here"] < e.scores["nas"]
    assert any(line.endswith("<- chosen") and "here" in line for line in d.explain())


def test_to_dict_is_json_and_complete() -> None:
    d = route([local(), island("gpt", CLOUD, privacy=0.2)], sensitivity=0.5)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["island"] == {"device_id": "here", "name": "here", "kind": "personal"}
    assert data["refused"] is False
    by_id = {c["device_id"]: c for c in data["candidates"]}
    assert by_id["gpt"]["removed_by"] == "privacy"
    assert by_id["gpt"]["score"] is None
    assert by_id["here"]["removed_by"] is None
    assert by_id["here"]["score"] == pytest.approx(d.explanation.scores["here"])
    assert data["failover_order"][0] == "here"


def test_personal_islands_need_no_sanitisation() -> None:
    assert not route([island("nas")]).sanitize
    assert route([island("pal", FRIEND)]).sanitize
