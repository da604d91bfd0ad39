"""HORIZON's spend ledger: days and months, ceilings, persistence."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from islandrun.node.errors import NodeError
from islandrun.node.horizon_budget import (
    Budget,
    BudgetExceeded,
    BudgetLedger,
    LedgerFileError,
    encode_ledger,
    ledger_path,
    load_ledger,
    save_ledger,
)

JAN_31_NOON = datetime.datetime(2025, 1, 31, 12, tzinfo=datetime.UTC).timestamp()
DAY = 86400.0


def test_spend_adds_up_per_day_and_month() -> None:
    ledger = BudgetLedger()
    ledger.record("a", 0.25, JAN_31_NOON)
    ledger.record("a", 0.5, JAN_31_NOON + 60)
    ledger.record("b", 9.0, JAN_31_NOON)
    spent = ledger.spent("a", JAN_31_NOON + 120)
    assert (spent.day, spent.day_spent, spent.month, spent.month_spent) == (
        "2025-01-31", 0.75, "2025-01", 0.75)
    feb = ledger.spent("a", JAN_31_NOON + DAY)  # a new day and a new month
    assert (feb.day_spent, feb.month_spent) == (0.0, 0.0)


def test_a_new_day_keeps_the_month() -> None:
    ledger = BudgetLedger()
    ledger.record("a", 1.0, JAN_31_NOON - DAY)
    ledger.record("a", 2.0, JAN_31_NOON)
    spent = ledger.spent("a", JAN_31_NOON)
    assert (spent.day_spent, spent.month_spent) == (2.0, 3.0)


def test_days_follow_the_given_time_zone() -> None:
    tokyo = BudgetLedger(datetime.timezone(datetime.timedelta(hours=9)))
    assert tokyo.spent("a", JAN_31_NOON + 13 * 3600).day == "2025-02-01"
    assert BudgetLedger().spent("a", JAN_31_NOON + 11 * 3600).day == "2025-01-31"


def test_remaining_is_the_tighter_ceiling_and_never_negative() -> None:
    ledger = BudgetLedger()
    assert ledger.remaining("a", Budget(), JAN_31_NOON) is None
    ledger.record("a", 3.0, JAN_31_NOON - DAY)
    ledger.record("a", 1.0, JAN_31_NOON)
    assert ledger.remaining("a", Budget(daily=2.0, monthly=10.0), JAN_31_NOON) == 1.0
    assert ledger.remaining("a", Budget(daily=2.0, monthly=4.5), JAN_31_NOON) == 0.5
    assert ledger.remaining("a", Budget(daily=0.5), JAN_31_NOON) == 0.0


@pytest.mark.parametrize(
    ("budget", "words"),
    [
        (Budget(daily=1.0), r"'a': daily budget 1 reached \(spent 1.0000 today \(2025-01-31\)\)"),
        (Budget(daily=5.0, monthly=2.0), "monthly budget 2 reached"),
    ],
)
def test_check_names_the_ceiling(budget: Budget, words: str) -> None:
    ledger = BudgetLedger()
    ledger.record("a", 1.0, JAN_31_NOON - DAY)
    ledger.record("a", 1.0, JAN_31_NOON)
    with pytest.raises(BudgetExceeded, match=words):
        ledger.check("a", budget, JAN_31_NOON)


def test_check_passes_below_the_ceilings() -> None:
    ledger = BudgetLedger()
    ledger.record("a", 0.99, JAN_31_NOON)
    ledger.check("a", Budget(daily=1.0, monthly=1.0), JAN_31_NOON)
    ledger.check("a", Budget(daily=0.5), JAN_31_NOON + DAY)  # tomorrow starts at zero


@pytest.mark.parametrize("cost", [-1.0, float("nan"), float("inf")])
def test_bad_costs_are_refused(cost: float) -> None:
    with pytest.raises(NodeError, match="finite amount"):
        BudgetLedger().record("a", cost, JAN_31_NOON)


def test_persists_privately_and_round_trips(tmp_path: Path) -> None:
    ledger = BudgetLedger()
    ledger.record("a", 0.125, JAN_31_NOON)
    save_ledger(tmp_path, encode_ledger(ledger))
    assert ledger_path(tmp_path).stat().st_mode & 0o777 == 0o600
    again = load_ledger(tmp_path)
    assert again.spent("a", JAN_31_NOON) == ledger.spent("a", JAN_31_NOON)
    assert load_ledger(tmp_path / "absent").remaining("a", Budget(daily=1), JAN_31_NOON) == 1


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"version": 99, "clouds": {}}),
        json.dumps({"version": 1}),
        json.dumps({"version": 1, "clouds": {"a": {"day_spent": -1.0}}}),
        json.dumps({"version": 1, "clouds": {"a": {"colour": "red"}}}),
        json.dumps({"version": 1, "clouds": {"a": 3}}),
    ],
)
def test_a_damaged_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    ledger_path(tmp_path).write_text(content)
    with pytest.raises(LedgerFileError, match=r"spend\.json is damaged"):
        load_ledger(tmp_path)
