"""The Lifeguard suspicion timeout, table-tested like memberlist's
``TestSuspicion_remainingSuspicionTime`` (same cases; memberlist reports the
remaining time, timeout - elapsed, floored to milliseconds)."""

from __future__ import annotations

import itertools

import pytest

from islandrun.node.lighthouse import suspicion_timeout


@pytest.mark.parametrize(
    ("n", "k", "min_s", "max_s", "timeout"),
    [
        (0, 3, 2.0, 30.0, 30.0),  # memberlist: elapsed 0 s, remaining 30 s
        (1, 3, 2.0, 30.0, 16.0),  # elapsed 2 s, remaining 14 s
        (2, 3, 2.0, 30.0, 7.810),  # elapsed 3 s, remaining 4.810 s
        (3, 3, 2.0, 30.0, 2.0),  # elapsed 4 s, remaining -2 s
        (4, 3, 2.0, 30.0, 2.0),  # more confirmations than asked for: the floor
        (5, 3, 2.0, 30.0, 2.0),
        (0, 0, 2.0, 30.0, 2.0),  # no confirmation expected: the floor at once
        (7, 0, 2.0, 30.0, 2.0),
        (0, 1, 5.0, 5.0, 5.0),  # min == max: constant
        (1, 1, 5.0, 5.0, 5.0),
        (1, 3, 2.0, 8.0, 5.0),  # the TEST preset
    ],
)
def test_suspicion_timeout_table(n: int, k: int, min_s: float, max_s: float,
                                 timeout: float) -> None:
    assert suspicion_timeout(n, k, min_s, max_s) == pytest.approx(timeout, abs=1e-3)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_each_confirmation_shortens_and_never_below_the_floor(k: int) -> None:
    times = [suspicion_timeout(n, k, 4.0, 24.0) for n in range(k + 3)]
    assert times[0] == 24.0 and times[k] == 4.0 and min(times) == 4.0
    assert all(a > b for a, b in itertools.pairwise(times[: k + 1]))
    # Logarithmic: the first confirmation buys more than the last one.
    assert times[0] - times[1] >= times[k - 1] - times[k]
