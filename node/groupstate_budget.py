"""Cloud budgets across the personal group: group-wide spend, bounded overshoot.

What it is. HORIZON's :class:`~islandrun.node.horizon_budget.BudgetLedger`
keeps one device's spend. :class:`GroupLedger` is the same ledger for the
whole personal group: what a cloud cost today (this month) is the sum over
the owner's devices of each device's own figure, synced as ``SPEND`` ops of
the group state (a grow-only counter per ``cloud|period``, one entry per
device). WAVES and HORIZON keep to the ceilings on that sum.

The bound. Devices that cannot reach each other cannot see each other's
spend, so a ceiling can be overshot. To bound it, each device may have at
most an *allowance* ``A = ALLOWANCE_SHARE x ceiling`` of spend that some
other member has not yet acknowledged (a member acknowledges a device's
spend by pulling it: its pull vector covers the ``SPEND`` op). A device
refuses a request when its unacknowledged spend has reached ``A`` -- or the
group total it sees has reached the ceiling. Then, with ``n`` member
devices and ``c`` the cost of the largest single request::

    total spend  <=  ceiling + (n - 1) * A + n * c

Proof sketch: take the last charge anywhere, by device ``i``. Before it,
``i`` saw a total below the ceiling; ``i``'s charge adds at most ``c``; every
other device ``j`` has spend ``i`` has not seen only if ``j`` has not had it
acknowledged, and ``j`` stopped charging once that reached ``A``, so it is
below ``A + c``. In words: two devices spending while apart overshoot by at
most what each may spend before it re-syncs.

The price of the bound: a member that stays offline holds every other
device to ``A`` of new spend until it comes back (or is revoked). ``A`` is
10% of the ceiling: small enough that overshoot stays modest, large enough
that a phone left off for a day blocks little.

Pure: time comes in as an argument; the group state is the caller's.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from .groupstate import GroupState
from .horizon_budget import Budget, BudgetExceeded, BudgetLedger, Spend, _day_and_month

#: Share of a ceiling a device may spend without the group having seen it.
ALLOWANCE_SHARE = 0.1


def overshoot_bound(ceiling: float, members: int, largest_cost: float) -> float:
    """The most a group of ``members`` devices can spend under ``ceiling``."""
    return ceiling + (members - 1) * ALLOWANCE_SHARE * ceiling + members * largest_cost


class GroupLedger(BudgetLedger):
    """Spend per cloud summed over the personal group, with per-device allowances.

    ``own`` is this device's ledger (persisted in ``spend.json`` as before);
    ``members`` gives the other member devices now (active personal pairings).
    """

    def __init__(
        self,
        state: Callable[[], GroupState],
        own: BudgetLedger,
        members: Callable[[], Iterable[str]],
        tz: datetime.tzinfo = datetime.UTC,
    ) -> None:
        super().__init__(tz)
        self._state, self.own, self._members = state, own, members
        #: This device's published figures per key: (op counter, amount), oldest first.
        self._published: dict[str, list[tuple[int, float]]] = {}

    def _keys(self, name: str, now: float) -> tuple[str, str]:
        day, month = _day_and_month(now, self.tz)
        return f"{name}|{day}", f"{name}|{month}"

    def spent(self, name: str, now: float) -> Spend:
        state = self._state()
        day, month = _day_and_month(now, self.tz)
        day_key, month_key = self._keys(name, now)
        return Spend(day=day, day_spent=sum(state.spend(day_key).values()),
                     month=month, month_spent=sum(state.spend(month_key).values()))

    def record(self, name: str, cost: float, now: float) -> Spend:
        mine = self.own.record(name, cost, now)
        state, now_ms = self._state(), int(now * 1000)
        for key, total in zip(self._keys(name, now), (mine.day_spent, mine.month_spent),
                              strict=True):
            op = state.record_spend(key, total, now_ms)
            history = self._published.setdefault(key, [])
            history.append((op.counter, total))
            del history[:-64]  # bounded; an older figure only makes the check stricter
        return self.spent(name, now)

    def unacknowledged(self, key: str) -> tuple[float, str | None]:
        """This device's spend under ``key`` some member has not seen, and who."""
        state = self._state()
        own = state.spend(key).get(state.me, 0.0)
        worst, who = 0.0, None
        for member in self._members():
            seen_up_to = state.acks.get(member, {}).get(state.me, 0)
            seen = max((amount for counter, amount in self._published.get(key, ())
                        if counter <= seen_up_to), default=0.0)
            latest = state.own_spend_op(key)
            if latest is not None and latest.counter <= seen_up_to:
                seen = own
            if own - seen > worst:
                worst, who = own - seen, member
        return worst, who

    def check(self, name: str, budget: Budget, now: float) -> None:
        super().check(name, budget, now)
        for key, ceiling in zip(self._keys(name, now), (budget.daily, budget.monthly),
                                strict=True):
            if ceiling is None:
                continue
            allowance = ALLOWANCE_SHARE * ceiling
            unseen, who = self.unacknowledged(key)
            if unseen >= allowance:
                raise BudgetExceeded(
                    f"cloud {name!r}: this device spent {unseen:.4f} that your device "
                    f"{(who or '')[-8:]} has not seen yet (allowance {allowance:g} while your "
                    "devices are apart); bring it online, or revoke it if it is gone"
                )

    def to_json(self) -> dict:
        return self.own.to_json()
