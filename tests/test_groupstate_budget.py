"""Cloud budgets across the personal group (node/groupstate_budget.py): the overshoot bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandrun.node.groupstate_budget import ALLOWANCE_SHARE, GroupLedger, overshoot_bound
from islandrun.node.horizon_budget import Budget, BudgetExceeded, BudgetLedger
from tests.test_groupstate import IDS, replica, sync

NOW = 1_795_000_000.0  # a fixed day
CEILING = 10.0
BUDGET = Budget(daily=CEILING)


def group(n: int) -> tuple[list, list[GroupLedger]]:
    states = [replica(i) for i in range(n)]
    ledgers = [
        GroupLedger(lambda s=s: s, BudgetLedger(),
                    lambda s=s: [d for d in IDS[:n] if d != s.me])
        for s in states
    ]
    return states, ledgers


def try_spend(ledger: GroupLedger, cost: float) -> bool:
    try:
        ledger.check("gpt", BUDGET, NOW)
    except BudgetExceeded:
        return False
    ledger.record("gpt", cost, NOW)
    return True


def true_total(ledgers: list[GroupLedger]) -> float:
    return sum(g.own.spent("gpt", NOW).day_spent for g in ledgers)


ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("spend"), st.integers(0, 2), st.floats(0.01, 0.8)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
), max_size=120)


@settings(max_examples=80, deadline=None)
@given(actions=ACTIONS)
def test_spend_never_exceeds_the_documented_bound(actions: list[tuple]) -> None:
    states, ledgers = group(3)
    largest = 0.0
    for action in actions:
        if action[0] == "spend":
            _, who, cost = action
            if try_spend(ledgers[who], cost):
                largest = max(largest, cost)
        elif action[1] != action[2]:
            sync(states[action[1]], states[action[2]])
    assert true_total(ledgers) <= overshoot_bound(CEILING, 3, largest) + 1e-9


def test_two_partitioned_devices_each_stop_at_their_allowance() -> None:
    states, ledgers = group(3)
    spent = [0, 0]
    for _ in range(100):  # both spend while they cannot reach anyone
        for i in (0, 1):
            spent[i] += try_spend(ledgers[i], 0.3)
    allowance = ALLOWANCE_SHARE * CEILING
    for i in (0, 1):
        mine = ledgers[i].own.spent("gpt", NOW).day_spent
        assert allowance <= mine < allowance + 0.3
    assert true_total(ledgers) <= overshoot_bound(CEILING, 3, 0.3)
    # Healing: once the others have pulled (and said so), spending goes on.
    for _ in range(2):
        for a in states:
            for b in states:
                if a is not b:
                    sync(a, b)
    assert ledgers[2].spent("gpt", NOW).day_spent == pytest.approx(true_total(ledgers))
    assert try_spend(ledgers[0], 0.3)


def test_a_synced_group_keeps_to_the_ceiling_as_one_device_would() -> None:
    states, ledgers = group(2)
    turn = 0
    while try_spend(ledgers[turn % 2], 0.4):
        sync(states[0], states[1])
        sync(states[1], states[0])
        turn += 1
        assert turn < 1000
    assert CEILING <= true_total(ledgers) < CEILING + 0.4 + 1e-9
    with pytest.raises(BudgetExceeded, match="daily budget"):
        ledgers[1].check("gpt", BUDGET, NOW)


def test_the_refusal_names_the_device_that_has_not_seen_the_spend() -> None:
    _, ledgers = group(2)
    while try_spend(ledgers[0], 0.5):
        pass
    with pytest.raises(BudgetExceeded, match=IDS[1][-8:]):
        ledgers[0].check("gpt", BUDGET, NOW)
