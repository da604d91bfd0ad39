"""Simulated devices: what each one is (a spec) and its modelled executor.

What it is: :class:`DeviceSpec`, the fixed description of one island (tier and the
owner's trust/privacy scores, how fast its model generates, how many generations it
runs at once, how much work it will queue, its battery and network access), and
:class:`Executor`, the model of its inference engine: ``slots`` generations in
parallel, a bounded queue behind them (a full queue is an out-of-memory refusal),
service time ``prompt_tokens / prefill_tps + max_tokens / tokens_per_s``.

Device classes carry modelled throughputs, not measurements: a phone's 7B model
at 12 tokens/s, a laptop GPU at 40, a home NAS at 25, an edge server at 60 per
slot, a cloud API at 120 per request (paper §XI-B's latency bands follow from
these plus the network).

What it is not: the device's agents (TIDE, LIGHTHOUSE, the dispatcher live in
:mod:`islandrun.simulations.world`) or a model of answer quality.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from islandrun.node.waves_inputs import IslandKind
from islandrun.protocol.errors import IslandRunError

from .engine import Future, Loop


class Overloaded(IslandRunError):
    """The island's queue is full (the model would run out of memory); try elsewhere."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSpec:
    """One island as its owner configured it and as its hardware behaves."""

    name: str
    kind: IslandKind
    trust: float  # the owner's pairing record, never the advert
    privacy: float
    tokens_per_s: float  # generation speed of one slot
    slots: int = 1  # generations run at once
    queue_limit: int = 8  # waiting requests beyond which it refuses (OOM)
    prefill_tps: float = 400.0  # prompt tokens per second
    access_latency_s: float = 0.002  # one-way latency to reach this device's network
    access_loss: float = 0.0  # probability an advert to/from it is lost
    owner_load: float = 0.05  # CPU the owner's own use takes
    battery_pct: float | None = None  # None: mains power
    charging: bool | None = None
    drain_pct_per_ktok: float = 0.0  # battery percentage points per 1,000 tokens generated
    price_in: float = 0.0  # US dollars per million tokens
    price_out: float = 0.0
    models: tuple[str, ...] = ("llama-8b",)
    datasets: tuple[str, ...] = ()
    origin: bool = False  # the user holds it: requests start here
    beacon: str = "lan"  # lan or ble: which LIGHTHOUSE preset it heartbeats with


@dataclass(slots=True)
class Work:
    """One generation: its size and where its outcome goes."""

    prompt_tokens: int
    max_tokens: int
    done: Future
    answer: str
    origin: str = ""  # device id of the requester
    started: float = 0.0


@dataclass(slots=True)
class Executor:
    """The modelled inference engine of one device (see the module docstring)."""

    spec: DeviceSpec
    loop: Loop
    on_tokens: Callable[[int], None]  # battery drain and utilisation accounting
    busy: list[Work] = field(default_factory=list)
    waiting: deque[Work] = field(default_factory=deque)
    busy_seconds: float = 0.0

    def submit(self, work: Work) -> None:
        """Start ``work`` now, queue it, or fail it with :class:`Overloaded`."""
        if len(self.busy) < self.spec.slots:
            self._start(work)
        elif len(self.waiting) < self.spec.queue_limit:
            self.waiting.append(work)
        else:
            work.done.fail(Overloaded(f"{self.spec.name} is out of memory for new work"))

    def service_time(self, work: Work) -> float:
        return work.prompt_tokens / self.spec.prefill_tps + work.max_tokens / self.spec.tokens_per_s

    def _start(self, work: Work) -> None:
        work.started = self.loop.now
        self.busy.append(work)
        self.loop.after(self.service_time(work), self._finish, work)

    def _finish(self, work: Work) -> None:
        if work not in self.busy:
            return  # dropped by a crash
        self.busy.remove(work)
        self.busy_seconds += self.loop.now - work.started
        self.on_tokens(work.prompt_tokens + work.max_tokens)
        work.done.resolve(work)
        if self.waiting:
            self._start(self.waiting.popleft())

    def drop_all(self, error: Callable[[], BaseException], delay: float) -> None:
        """Fail every running and waiting generation ``delay`` seconds from now."""
        for work in self.busy:
            self.busy_seconds += self.loop.now - work.started
        for work in [*self.busy, *self.waiting]:
            self.loop.after(delay, work.done.fail, error())
        self.busy.clear()
        self.waiting.clear()

    @property
    def in_flight(self) -> int:
        return len(self.busy) + len(self.waiting)
