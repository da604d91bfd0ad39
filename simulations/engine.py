"""The simulator's clock: a deterministic discrete-event loop that can drive coroutines.

What it is: a heap of ``(virtual time, sequence number, callback)`` events, run in
that order, plus a tiny driver that steps ``async`` functions — so the node's real
async code (:class:`~islandrun.node.dispatch.Dispatcher`) runs unchanged, with its
``ship`` / ``run_local`` callbacks suspended on virtual time (:func:`sleep`) or on a
:class:`Future` that a modelled island resolves later.

Why not trio's ``MockClock``: trio's scheduler deliberately runs each batch of
runnable tasks in a random order drawn from an unseeded, private ``random.Random``
(``trio._core._run._r``), so two tasks woken at the same virtual instant interleave
differently from run to run; exact reproducibility would mean patching trio's
privates. Here ties are broken by the order events were scheduled, so a seed fixes a
run completely. It is also about 10x cheaper per event, which is what lets 1,000
nodes x 60 s of virtual time fit in the wall-time budget.

What it is not: a general async framework. Only the two awaitables defined here may
be awaited by the coroutines it drives; anything else is a bug and raises.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from islandrun.protocol.errors import IslandRunError


class SimulationError(IslandRunError):
    """The simulator was misused (an unknown awaitable, time running backwards)."""


class _Sleep:
    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


def sleep(delay: float) -> _Sleep:
    """Suspend the calling coroutine for ``delay`` seconds of virtual time."""
    return _Sleep(max(0.0, delay))


class Future:
    """A value or an error that arrives later; await it from a driven coroutine."""

    __slots__ = ("_done", "_error", "_value", "_waiter")

    def __init__(self) -> None:
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._waiter: Callable[[], None] | None = None

    @property
    def done(self) -> bool:
        return self._done

    def resolve(self, value: Any = None) -> None:
        self._finish(value, None)

    def fail(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, value: Any, error: BaseException | None) -> None:
        if self._done:
            return  # the first outcome wins (a crash after the answer changes nothing)
        self._done, self._value, self._error = True, value, error
        if self._waiter is not None:
            self._waiter()

    def __await__(self) -> Generator[Any, Any, Any]:
        if not self._done:
            yield self
        if self._error is not None:
            raise self._error
        return self._value


Task = Coroutine[Any, Any, Any]


class Loop:
    """Virtual time and the events due in it. ``now`` only moves forward."""

    def __init__(self) -> None:
        self.now = 0.0
        # Invariant: a heap of (time, seq, callback, args); seq makes ties FIFO.
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.events = 0

    def at(self, when: float, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` at virtual time ``when`` (not before now)."""
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), callback, args))

    def after(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        self.at(self.now + delay, callback, *args)

    def spawn(self, task: Task, done: Callable[[Any, BaseException | None], None]) -> None:
        """Start driving ``task`` now; ``done(result, error)`` is called when it ends."""
        self.at(self.now, self._step, task, done)

    def run_until(self, end: float) -> None:
        """Run every event due up to and including ``end``; leave ``now`` at ``end``."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            when, _, callback, args = heapq.heappop(heap)
            self.now = when
            self.events += 1
            callback(*args)
        self.now = max(self.now, end)

    def _step(self, task: Task, done: Callable[[Any, BaseException | None], None]) -> None:
        try:
            awaited = task.send(None)
        except StopIteration as stop:
            done(stop.value, None)
            return
        except Exception as exc:  # the task's own error is its outcome
            done(None, exc)
            return
        if isinstance(awaited, _Sleep):
            self.after(awaited.delay, self._step, task, done)
        elif isinstance(awaited, Future):
            awaited._waiter = lambda: self.at(self.now, self._step, task, done)
        else:
            task.close()
            raise SimulationError(f"a simulated task awaited {type(awaited).__name__}")
