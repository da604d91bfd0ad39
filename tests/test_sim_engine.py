"""The simulator's event loop: virtual time, FIFO ties, driven coroutines and futures."""

from __future__ import annotations

import pytest

from islandrun.simulations.engine import Future, Loop, SimulationError, sleep


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    loop, seen = Loop(), []
    for name, when in (("b", 2.0), ("a", 1.0), ("c", 2.0), ("d", 1.0)):
        loop.at(when, seen.append, name)
    loop.run_until(5.0)
    assert seen == ["a", "d", "b", "c"]
    assert loop.now == 5.0


def test_run_until_leaves_later_events_for_later() -> None:
    loop, seen = Loop(), []
    loop.at(3.0, seen.append, "late")
    loop.run_until(2.0)
    assert seen == [] and loop.now == 2.0
    loop.run_until(3.0)
    assert seen == ["late"]


def test_a_driven_coroutine_sleeps_in_virtual_time_and_returns() -> None:
    loop, outcome = Loop(), {}

    async def task() -> float:
        await sleep(1.5)
        await sleep(2.0)
        return loop.now

    loop.spawn(task(), lambda result, error: outcome.update(result=result, error=error))
    loop.run_until(10.0)
    assert outcome == {"result": 3.5, "error": None}


def test_a_future_delivers_a_value_or_raises_its_error_in_the_waiter() -> None:
    loop, outcomes = Loop(), []
    good, bad = Future(), Future()

    async def wait(future: Future) -> object:
        return await future

    for future in (good, bad):
        loop.spawn(wait(future), lambda r, e: outcomes.append((loop.now, r, type(e).__name__)))
    loop.at(2.0, good.resolve, "answer")
    loop.at(4.0, bad.fail, ValueError("boom"))
    loop.at(5.0, good.resolve, "ignored: the first outcome wins")
    loop.run_until(10.0)
    assert outcomes == [(2.0, "answer", "NoneType"), (4.0, None, "ValueError")]


def test_awaiting_anything_else_is_refused() -> None:
    class Foreign:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield "not ours"

    async def task() -> None:
        await Foreign()

    loop = Loop()
    loop.spawn(task(), lambda r, e: None)
    with pytest.raises(SimulationError, match="awaited"):
        loop.run_until(1.0)
