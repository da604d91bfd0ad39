"""WAVES ranking: Eq. 1 weights, the objectives registry, plug-ins, constraint mode, failover."""

from __future__ import annotations

import pytest

from islandrun.node.waves import Mode, RoutePolicy, WavesError, decide, failover
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest
from islandrun.node.waves_objectives import (
    DEFAULT_OBJECTIVES,
    ObjectiveError,
    Objectives,
    RouteContext,
)

from .waves_helpers import IDLE, island

CLOUD = IslandKind.CLOUD
FRIEND = IslandKind.FRIEND
REQUEST = RouteRequest(request_id="r", tokens=1000)


def winner(islands: list[IslandSnapshot], policy: RoutePolicy, sensitivity: float = 0.0) -> str:
    d = decide(REQUEST, sensitivity, islands, policy, IDLE)
    assert d.island is not None
    return d.island.device_id


CHEAP_SLOW = island("cheap", FRIEND, latency_ms=1800.0)
DEAR_FAST = island("dear", CLOUD, latency_ms=100.0, price_per_token=0.00001)


def test_weights_steer_the_choice() -> None:
    islands = [CHEAP_SLOW, DEAR_FAST]
    assert winner(islands, RoutePolicy(weights={"cost": 1.0, "latency": 0.0, "trust": 0.0})) == (
        "cheap"
    )
    assert winner(islands, RoutePolicy(weights={"cost": 0.0, "latency": 1.0, "trust": 0.0})) == (
        "dear"
    )


def test_eq1_score_is_the_weighted_sum_of_clipped_penalties() -> None:
    policy = RoutePolicy(weights={"cost": 0.5, "latency": 0.25, "trust": 0.25, "energy": 0.0})
    d = decide(REQUEST, 0.0, [DEAR_FAST], policy, IDLE)
    # cost 0.01 / cost_ref 0.01 = 1.0; latency r = 100 / 2000 = 0.05 scores r / (1 + r);
    # trust 1 - 0.4 = 0.6.
    assert d.explanation.scores["dear"] == pytest.approx(
        0.5 * 1.0 + 0.25 * (0.05 / 1.05) + 0.25 * 0.6
    )


def test_latency_past_the_reference_still_ranks() -> None:
    # 8 s and 27 s are both past the 2 s reference; the faster island must still win.
    laptop = island("laptop", FRIEND, latency_ms=8000.0)
    phone = island("phone", FRIEND, latency_ms=27000.0)
    policy = RoutePolicy(weights={"latency": 1.0, "cost": 0.0, "trust": 0.0, "energy": 0.0})
    assert winner([phone, laptop], policy) == "laptop"
    d = decide(REQUEST, 0.0, [phone, laptop], policy, IDLE)
    assert d.explanation.scores["laptop"] < d.explanation.scores["phone"] < 1.0


def test_budgets_set_the_scale_of_cost_and_latency() -> None:
    policy = RoutePolicy(weights={"cost": 1.0, "latency": 1.0, "trust": 0.0, "energy": 0.0})
    request = RouteRequest(request_id="r", tokens=1000, max_cost=0.02, max_latency_ms=200.0)
    d = decide(request, 0.0, [DEAR_FAST], policy, IDLE)
    # cost 0.01 / 0.02 = 0.5; latency 100 / 200 = 0.5 scores 0.5 / 1.5.
    assert d.explanation.scores["dear"] == pytest.approx(0.5 + 0.5 / 1.5)


def test_energy_prefers_the_friend_with_more_battery() -> None:
    policy = RoutePolicy(weights={"energy": 1.0, "trust": 0.0, "cost": 0.0, "latency": 0.0})
    low = island("low", FRIEND, willingness=0.2, battery_pct=30.0, charging=False)
    plugged = island("plugged", FRIEND, willingness=1.0, battery_pct=30.0, charging=True)
    assert winner([low, plugged], policy) == "plugged"


def test_ties_break_by_device_id() -> None:
    assert winner([island("b"), island("a"), island("c")], RoutePolicy()) == "a"


def test_unknown_weight_is_an_error_not_a_no_op() -> None:
    with pytest.raises(WavesError, match="carbon"):
        RoutePolicy(weights={"carbon": 1.0})


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_bad_weight_is_an_error(weight: float) -> None:
    with pytest.raises(WavesError, match="weight"):
        RoutePolicy(weights={"cost": weight})


def test_registry_is_immutable_and_names_are_unique() -> None:
    extended = DEFAULT_OBJECTIVES.register("zero", lambda i, c: 0.0, 1.0)
    assert "zero" in extended
    assert "zero" not in DEFAULT_OBJECTIVES
    with pytest.raises(ObjectiveError, match="already registered"):
        extended.register("zero", lambda i, c: 0.0, 1.0)
    with pytest.raises(ObjectiveError, match="no objective named 'nope'"):
        Objectives()["nope"]


def carbon(island: IslandSnapshot, ctx: RouteContext) -> float:
    """A plug-in objective: grid carbon intensity, 0 at 0 g/kWh, 1 at 800 g/kWh or unknown."""
    return island.metrics.get("carbon_g_per_kwh", 800.0) / 800.0


def test_a_new_objective_plugs_in_without_editing_the_router() -> None:
    coal = island("coal", metrics={"carbon_g_per_kwh": 750.0})
    hydro = island("hydro", latency_ms=300.0, metrics={"carbon_g_per_kwh": 20.0})
    without = RoutePolicy()
    assert winner([coal, hydro], without) == "coal"  # faster, same otherwise
    green = RoutePolicy(objectives=DEFAULT_OBJECTIVES.register("carbon", carbon, weight=0.5))
    assert winner([coal, hydro], green) == "hydro"
    d = decide(REQUEST, 0.0, [coal, hydro], green, IDLE)
    assert d.explanation.scores["hydro"] < d.explanation.scores["coal"]
    # Its weight is a user weight like any other.
    off = RoutePolicy(objectives=green.objectives, weights={"carbon": 0.0})
    assert winner([coal, hydro], off) == "coal"


def test_a_misbehaving_objective_is_clipped_and_cannot_reach_ineligible_islands() -> None:
    def hostile(island: IslandSnapshot, ctx: RouteContext) -> float:
        return -1e9 if island.kind is CLOUD else float("nan")

    policy = RoutePolicy(objectives=DEFAULT_OBJECTIVES.register("hostile", hostile, 5.0))
    gpt = island("gpt", CLOUD, privacy=0.3)
    nas = island("nas")
    assert winner([gpt, nas], policy, sensitivity=0.2) == "gpt"  # clipped to 0, still ranks
    assert winner([gpt, nas], policy, sensitivity=0.9) == "nas"  # never past a constraint
    d = decide(REQUEST, 0.2, [gpt, nas], policy, IDLE)
    assert all(0.0 <= s <= 5.0 + 1.0 for s in d.explanation.scores.values())


def test_constraint_mode_minimises_latency_first() -> None:
    # Weighted mode prefers the trusted, free friend; §VI-C mode takes the fastest eligible.
    friend = island("friend", FRIEND, latency_ms=400.0)
    cloud = island("cloud", CLOUD, privacy=0.5, latency_ms=200.0, price_per_token=0.000005)
    assert winner([friend, cloud], RoutePolicy()) == "friend"
    fastest = RoutePolicy(mode=Mode.CONSTRAINT)
    assert winner([friend, cloud], fastest) == "cloud"
    # Privacy is still non-negotiable.
    assert winner([friend, cloud], fastest, sensitivity=0.6) == "friend"
    d = decide(REQUEST, 0.0, [friend, cloud], fastest, IDLE)
    # latency ratios 400 / 2000 and 200 / 2000, scored r / (1 + r).
    assert d.explanation.firsts == {
        "friend": pytest.approx(0.2 / 1.2), "cloud": pytest.approx(0.1 / 1.1)
    }
    assert "lowest latency" in d.reason


def test_constraint_mode_objective_is_configurable_and_checked() -> None:
    cheap = RoutePolicy(mode=Mode.CONSTRAINT, constraint_objective="cost")
    assert winner([CHEAP_SLOW, DEAR_FAST], cheap) == "cheap"
    with pytest.raises(WavesError, match="no objective named 'speed'"):
        RoutePolicy(mode=Mode.CONSTRAINT, constraint_objective="speed")


@pytest.mark.parametrize(
    "bad",
    [
        {"secondary_local_min": 1.5},
        {"max_failover": -1},
        {"cost_ref": 0.0},
        {"latency_ref_ms": float("nan")},
    ],
)
def test_bad_policy_is_our_error(bad: dict[str, float]) -> None:
    with pytest.raises(WavesError, match="policy"):
        RoutePolicy(**bad)  # type: ignore[arg-type]


# --- failover ----------------------------------------------------------------


def ranked_islands() -> list[IslandSnapshot]:
    return [
        island(name, latency_ms=latency)
        for name, latency in (("a", 10.0), ("b", 20.0), ("c", 30.0), ("d", 40.0), ("e", 50.0))
    ] + [island("gpt", CLOUD, privacy=0.1, latency_ms=1.0)]


def test_failover_walks_eligible_islands_in_score_order() -> None:
    d = decide(REQUEST, 0.5, ranked_islands(), RoutePolicy(max_failover=2), IDLE)
    assert [i.device_id for i in d.ranked] == ["a", "b", "c"]
    d = failover(d, "a")
    assert d.island is not None and d.island.device_id == "b"
    assert "failover to b after a failed" in d.reason
    d = failover(d, "b")
    assert d.island is not None and d.island.device_id == "c"
    d = failover(d, "c")
    assert d.refused  # bounded: d and e were never kept
    assert d.failed == ("a", "b", "c")
    assert "every eligible island kept for failover failed (a, b, c)" in d.reason
    lines = d.explain()
    assert any("a (personal)" in line and "(failed)" in line for line in lines)


def test_failover_never_reaches_an_ineligible_island() -> None:
    d = decide(REQUEST, 0.5, ranked_islands(), RoutePolicy(max_failover=16), IDLE)
    seen = []
    while d.island is not None:
        seen.append(d.island.device_id)
        d = failover(d, d.island.device_id)
    assert seen == ["a", "b", "c", "d", "e"]  # gpt (privacy 0.1 < 0.5) never


def test_failover_of_an_island_not_chosen_is_an_error() -> None:
    d = decide(REQUEST, 0.5, ranked_islands(), RoutePolicy(), IDLE)
    with pytest.raises(WavesError, match="'b' is not the island"):
        failover(d, "b")
    refused = decide(REQUEST, 0.5, [], RoutePolicy(), IDLE)
    with pytest.raises(WavesError):
        failover(refused, "a")


def test_zero_failover_keeps_only_the_winner() -> None:
    d = decide(REQUEST, 0.5, ranked_islands(), RoutePolicy(max_failover=0), IDLE)
    assert failover(d, "a").refused
