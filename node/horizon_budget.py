"""HORIZON's spend ledger: what each cloud island cost today and this month.

The owner gives a cloud island daily and monthly spend ceilings
(``[[cloud]] daily_budget`` / ``monthly_budget``, in the user's currency).
:class:`BudgetLedger` adds up what each request cost (from the token usage
the API reports) per calendar day and month, and says what is left. WAVES
sees that figure as the island's ``budget_left`` and removes the island when
a request would cost more (constraint "spend budget"); HORIZON checks the
ceiling again just before sending, since requests running at the same time
each passed WAVES on the same figure.

Calendar days and months are those of ``tz``: UTC as used by the node and
``islandnode cloud list`` (both must agree on when a day ends). When a new
day or month starts, its total starts at zero.

The ledger itself is pure: time comes in as an argument (Unix seconds) and
it does no I/O. :func:`load_ledger` and :func:`save_ledger` keep it in
``<home>/spend.json`` (mode 0600, atomic), so a restart does not reset the
spend. The file holds cloud names, dates and amounts; never keys or text.

What this is not: no pricing (HORIZON turns usage into cost) and no routing.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NodeError
from .home import write_private

#: File name of the ledger inside the node home.
SPEND_FILE = "spend.json"
#: Version of the ledger file format.
SPEND_VERSION = 1


class BudgetExceeded(NodeError):
    """A cloud island's spend ceiling is reached; the message names which one."""


class LedgerFileError(NodeError):
    """The persisted ledger is damaged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """The owner's spend ceilings for one cloud island (None: no ceiling)."""

    daily: float | None = None
    monthly: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """Spend of one cloud island in its current day and month."""

    day: str = ""  # ISO date of the day ``day_spent`` counts
    day_spent: float = 0.0
    month: str = ""  # YYYY-MM of the month ``month_spent`` counts
    month_spent: float = 0.0


def _day_and_month(now: float, tz: datetime.tzinfo) -> tuple[str, str]:
    date = datetime.datetime.fromtimestamp(now, tz=tz).date()
    return date.isoformat(), date.isoformat()[:7]


def _current(spend: Spend, day: str, month: str) -> Spend:
    """``spend`` with totals of a past day or month reset to zero."""
    return Spend(
        day=day,
        day_spent=spend.day_spent if spend.day == day else 0.0,
        month=month,
        month_spent=spend.month_spent if spend.month == month else 0.0,
    )


class BudgetLedger:
    """Spend per cloud island per day and month. No clock, no I/O."""

    def __init__(self, tz: datetime.tzinfo = datetime.UTC) -> None:
        self.tz = tz
        self._spend: dict[str, Spend] = {}

    def spent(self, name: str, now: float) -> Spend:
        """What ``name`` cost in the day and month containing ``now``."""
        return _current(self._spend.get(name, Spend()), *_day_and_month(now, self.tz))

    def record(self, name: str, cost: float, now: float) -> Spend:
        """Add ``cost`` (>= 0, finite) to ``name``'s day and month; the new totals."""
        if not (isinstance(cost, int | float) and 0.0 <= cost < math.inf):
            raise NodeError(f"spend of cloud {name!r} must be a finite amount >= 0, got {cost!r}")
        now_spend = self.spent(name, now)
        updated = dataclasses.replace(
            now_spend,
            day_spent=now_spend.day_spent + cost,
            month_spent=now_spend.month_spent + cost,
        )
        self._spend[name] = updated
        return updated

    def remaining(self, name: str, budget: Budget, now: float) -> float | None:
        """Currency left under the tighter ceiling (>= 0), or None without ceilings."""
        spend = self.spent(name, now)
        left = [
            ceiling - spent
            for ceiling, spent in ((budget.daily, spend.day_spent),
                                   (budget.monthly, spend.month_spent))
            if ceiling is not None
        ]
        return max(0.0, min(left)) if left else None

    def check(self, name: str, budget: Budget, now: float) -> None:
        """Raise :class:`BudgetExceeded`, naming the ceiling, if one is reached."""
        spend = self.spent(name, now)
        for period, ceiling, spent, when in (
            ("daily", budget.daily, spend.day_spent, f"today ({spend.day})"),
            ("monthly", budget.monthly, spend.month_spent, f"this month ({spend.month})"),
        ):
            if ceiling is not None and spent >= ceiling:
                raise BudgetExceeded(
                    f"cloud {name!r}: {period} budget {ceiling:g} reached (spent {spent:.4f} "
                    f"{when}); raise {period}_budget in its [[cloud]] entry or wait"
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SPEND_VERSION,
            "clouds": {name: dataclasses.asdict(s) for name, s in sorted(self._spend.items())},
        }

    @classmethod
    def from_json(cls, data: Any, tz: datetime.tzinfo = datetime.UTC) -> BudgetLedger:
        """The ledger :meth:`to_json` wrote; :class:`LedgerFileError` if damaged."""
        ledger = cls(tz)
        if not isinstance(data, dict) or data.get("version") != SPEND_VERSION:
            raise LedgerFileError(f"unknown ledger format (want version {SPEND_VERSION})")
        clouds = data.get("clouds")
        if not isinstance(clouds, dict):
            raise LedgerFileError("ledger has no 'clouds' object")
        for name, raw in clouds.items():
            ledger._spend[str(name)] = _spend_from_json(raw, str(name))
        return ledger


def _spend_from_json(raw: Any, name: str) -> Spend:
    try:
        spend = Spend(**raw)
    except TypeError:
        raise LedgerFileError(f"ledger entry for {name!r} has unexpected fields") from None
    amounts_ok = all(
        isinstance(v, int | float) and 0.0 <= v < math.inf
        for v in (spend.day_spent, spend.month_spent)
    )
    if not (amounts_ok and isinstance(spend.day, str) and isinstance(spend.month, str)):
        raise LedgerFileError(f"ledger entry for {name!r} has invalid values")
    return spend


def ledger_path(home: Path) -> Path:
    return home / SPEND_FILE


def load_ledger(home: Path, tz: datetime.tzinfo = datetime.UTC) -> BudgetLedger:
    """The ledger kept in ``home`` (empty if there is none yet)."""
    path = ledger_path(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return BudgetLedger.from_json(data, tz)
    except FileNotFoundError:
        return BudgetLedger(tz)
    except (OSError, ValueError, LedgerFileError) as exc:
        raise LedgerFileError(
            f"{path} is damaged ({exc}); fix it, or delete it to restart spend counting from zero"
        ) from None


def encode_ledger(ledger: BudgetLedger) -> bytes:
    """The file contents for ``ledger`` (take them where the ledger is updated)."""
    return json.dumps(ledger.to_json(), indent=1).encode()


def save_ledger(home: Path, data: bytes) -> None:
    """Write :func:`encode_ledger` output to ``home`` atomically, mode 0600."""
    write_private(ledger_path(home), data)
