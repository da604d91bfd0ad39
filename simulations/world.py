"""A simulated mesh: devices running the node's real agents over a modelled network.

What it is: every device (an :class:`Island`) runs the node's real pure cores —
TIDE's capacity model (``tide_capacity.observe`` / ``assess`` on samples taken from
its modelled executor and battery, once a virtual second), the advert pacing of
:class:`~islandrun.node.advertiser.Advertiser`, real Ed25519-signed adverts
(``lighthouse.seal_advert``) gossiped to the devices it is paired with, and a real
LIGHTHOUSE :class:`~islandrun.node.lighthouse.Membership` that verifies and ingests
them and tracks liveness. Devices the user holds (``origin``) also keep the real
``LatencyBook``, a ``RateLimiter`` and a :class:`~islandrun.node.dispatch.Dispatcher`
(MIST -> WAVES -> sanitize -> run/ship -> failover -> restore -> audit); the
simulator supplies only its ``ship`` and ``run_local`` callbacks, which move the
(possibly sanitized) request over the modelled network to a modelled executor.

The network follows :mod:`islandrun.transports.memory`'s semantics, with its
:class:`~islandrun.transports.memory.Link` values: per-link latency; loss for gossip
only (request streams are reliable); partitions; a crashed peer refuses at once; a
frozen or cut-off peer is noticed only by the client's read deadline
(``ShippingConfig.read_timeout``). Messages to a frozen device are dropped rather
than held (LIGHTHOUSE's next heartbeat repairs that).

Privacy violations are judged here, at the moment text *arrives* at an island: see
:mod:`islandrun.simulations.workload` for the definition.

Cloud islands are as in the node: not LIGHTHOUSE members (they neither sample nor
advertise) but configured (HORIZON): their snapshots come from the owner's config,
always alive, with the price per token HORIZON uses. Trust and privacy always come
from the owner's records (:class:`Book`), never from an advert. Every island, this
device and clouds included, carries the round trip this device measured to it (the
runtime's defaults until measured), so latency-driven policies compare like with like.

What it is not: a policy (how a request is routed is :mod:`.policies`) or a fault
schedule (:mod:`.faults` drives the ``crash`` / ``freeze`` / ... methods here).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from nacl.signing import SigningKey

from islandrun.node import tide_capacity
from islandrun.node.advertiser import Advertiser
from islandrun.node.dispatch import (
    Dispatcher,
    LatencyBook,
    TrustRecord,
    island_snapshots,
    local_snapshot,
)
from islandrun.node.executor import Usage
from islandrun.node.horizon import CLOUD_LATENCY_MS
from islandrun.node.lighthouse import Membership, seal_advert
from islandrun.node.lighthouse_config import BLE, LAN, LighthouseConfig
from islandrun.node.shipping import IslandFailed, ShippingConfig
from islandrun.node.tide_capacity import CapacityReport, Sample, TideConfig, TideState
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot
from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.transports.memory import Link

from .devices import DeviceSpec, Executor, Work
from .engine import Future, Loop, sleep
from .workload import Prompt, leaked

#: Virtual time 0 in Unix seconds (adverts and deadlines carry wall-clock times).
EPOCH = 1_767_225_600.0
READ_TIMEOUT_S = ShippingConfig().read_timeout
SAMPLE_INTERVAL_S = 1.0
PRESETS: dict[str, LighthouseConfig] = {"lan": LAN, "ble": BLE}


@dataclass(slots=True)
class Job:
    """One request of the workload and what became of it."""

    request_id: str
    origin: str  # device id
    at: float  # virtual arrival time
    prompt: Prompt
    status: str = "pending"  # ok, refused, failed
    finished: float | None = None
    island: str | None = None
    cost: float = 0.0
    violation: bool = False
    sanitized: bool = False

    @property
    def latency_s(self) -> float | None:
        return None if self.finished is None else self.finished - self.at


@dataclass(slots=True)
class Book:
    """The owner's pairing records for one group: device id -> trust record."""

    records: dict[str, TrustRecord] = field(default_factory=dict)

    def lookup(self, device_id: str) -> TrustRecord | None:
        return self.records.get(device_id)


class Island:
    """One device: its spec, executor, TIDE state, battery, adverts and membership."""

    def __init__(self, world: World, spec: DeviceSpec, key: SigningKey, group: int) -> None:
        self.world, self.spec, self.key, self.group = world, spec, key, group
        self.device_id = device_id_from_public_key(bytes(key.verify_key))
        self.executor = Executor(spec, world.loop, self._generated)
        self.tide_config = TideConfig(per_request_load=min(1.0, 1.0 / spec.slots))
        self.tide = TideState()
        self.battery = spec.battery_pct
        self.extra_drain_pct_per_s = 0.0
        self.lighthouse = PRESETS[spec.beacon]
        self.seq = 0
        self.restart_adverts()
        self.peers: list[Island] = []  # the devices it is paired with
        self.membership: Membership | None = None
        self.book = Book()
        self.latency = LatencyBook()
        self.latency_measured: set[str] = set()
        self.crashed = self.frozen = self.lying = False

    # -- wiring ----------------------------------------------------------------

    def pair(self, peers: list[Island]) -> None:
        """Pair with ``peers``: allowlist, trust records (from their specs), membership."""
        self.peers = [p for p in peers if p is not self]
        self.clouds = [p for p in self.peers if p.spec.kind is IslandKind.CLOUD]
        allowed = {p.device_id for p in self.peers if p not in self.clouds}
        self.membership = Membership(self.lighthouse, allowed.__contains__)
        for p in self.peers:
            self.book.records[p.device_id] = TrustRecord(p.spec.kind, p.spec.trust, p.spec.privacy)

    # -- TIDE --------------------------------------------------------------------

    def report(self) -> CapacityReport:
        return tide_capacity.assess(self.tide, self.world.loop.now, self.tide_config)

    def sample(self) -> None:
        """One TIDE sample, battery bookkeeping, LIGHTHOUSE tick and maybe an advert."""
        now = self.world.loop.now
        if self.crashed or self.frozen:
            return
        self._drain(self.extra_drain_pct_per_s * SAMPLE_INTERVAL_S)
        if self.crashed:
            return
        busy = len(self.executor.busy) / self.spec.slots
        sample = Sample(at=now, cpu=min(1.0, self.spec.owner_load + busy), memory=0.3,
                        battery_pct=self.battery, charging=self.spec.charging)
        self.tide = tide_capacity.observe(self.tide, sample, self.tide_config)
        if self.membership is not None and self.spec.origin:
            self.membership.tick(self.world.wall())
        self._maybe_advertise()

    def begin(self) -> None:
        self.tide = tide_capacity.begin_request(self.tide)

    def end(self) -> None:
        self.tide = tide_capacity.end_request(self.tide)

    # -- battery -----------------------------------------------------------------

    def _generated(self, tokens: int) -> None:
        self._drain(tokens / 1000.0 * self.spec.drain_pct_per_ktok)

    def _drain(self, points: float) -> None:
        if self.battery is None or self.spec.charging or points <= 0.0:
            return
        self.battery = max(0.0, self.battery - points)
        if self.battery == 0.0:
            self.world.crash(self)  # flat battery: the device switches off

    # -- LIGHTHOUSE ----------------------------------------------------------------

    def restart_adverts(self) -> None:
        """A fresh Advertiser: the next sample announces this device at once."""
        self.advertiser = Advertiser(self.lighthouse)
        # What the last check saw and when that advert was due: an unchanged advert is
        # not rebuilt before then (Advertiser.due_at would give the same time).
        self._checked: tuple[object, ...] | None = None
        self._due_at = 0.0

    def advert(self, report: CapacityReport) -> m.Advert:
        honest = not self.lying  # a lying TIDE claims an idle, willing device
        return m.Advert(
            device_id=self.device_id,
            name=self.spec.name,
            models=tuple(m.ModelInfo(name=x, context=8192) for x in self.spec.models),
            capacity=report.capacity if honest else 1.0,
            in_flight=report.in_flight if honest else 0,
            battery_pct=None if self.battery is None else round(self.battery, 1),
            charging=self.spec.charging,
            serve_others=report.willingness if honest else 1.0,
            datasets=tuple(m.DatasetInfo(name=d) for d in self.spec.datasets),
            cost=m.CostModel(price_in=self.spec.price_in, price_out=self.spec.price_out),
        )

    def _maybe_advertise(self) -> None:
        wall = self.world.wall()
        report = self.report()
        seen = (report.capacity, report.willingness, self.battery, self.lying)
        if seen == self._checked and wall < self._due_at:
            return
        advert = self.advert(report)
        self._checked, self._due_at = seen, self.advertiser.due_at(advert, wall)
        if self._due_at > wall:
            return
        self._checked = None
        self.seq += 1
        signed = seal_advert(self.key, advert, seq=self.seq,
                             expires=wall + self.lighthouse.advert_ttl)
        self.advertiser.published(advert, wall)
        for peer in self.peers:
            self.world.gossip(self, peer, signed)

    def hear(self, signed: bytes, sender: str) -> None:
        if self.membership is not None and not (self.crashed or self.frozen):
            accepted = self.membership.ingest(signed, sender, self.world.wall()).accepted
            self.world.adverts_heard += accepted

    # -- what WAVES sees from here ----------------------------------------------------

    def islands(self) -> list[IslandSnapshot]:
        """What the runtime gives WAVES: LIGHTHOUSE's islands, the clouds, this device."""
        assert self.membership is not None
        out = island_snapshots(self.membership.snapshot(), self.book, latency=self.latency)
        return [*out, *self.cloud_islands(), self.local()]

    def cloud_islands(self) -> list[IslandSnapshot]:
        """The configured clouds, as HORIZON's ``cloud_snapshots`` builds them."""
        return [
            IslandSnapshot(
                device_id=c.device_id, name=c.spec.name, kind=IslandKind.CLOUD,
                privacy=c.spec.privacy, trust=c.spec.trust, models=frozenset(c.spec.models),
                price_per_token=(c.spec.price_in + c.spec.price_out) / 2e6,
                latency_ms=self.latency.expected(c.device_id)
                if c.device_id in self.latency_measured else CLOUD_LATENCY_MS,
            )
            for c in self.clouds
        ]

    def local(self) -> IslandSnapshot:
        models = tuple(m.ModelInfo(name=x, context=8192) for x in self.spec.models)
        datasets = tuple(m.DatasetInfo(name=d) for d in self.spec.datasets)
        own = local_snapshot(self.device_id, self.spec.name, models, self.report(), datasets)
        return replace(own, latency_ms=self.latency.expected(self.device_id))


Ship = Callable[[str, m.InferenceRequest, Callable[[str], Awaitable[None]]],
                Awaitable[m.ResponseEnd]]


class World:
    """Every island, the links between them, the faults in force and the jobs."""

    def __init__(self, seed: int) -> None:
        self.loop = Loop()
        self.rng = random.Random(f"{seed}:network")
        self._keys = random.Random(f"{seed}:keys")
        self.islands: list[Island] = []
        self.by_id: dict[str, Island] = {}
        self.jobs: dict[str, Job] = {}
        self.side: dict[str, int] = {}  # partition side per device id; absent = side 0
        self.loss = 0.0  # extra gossip loss on every link (the message-loss fault)
        self.adverts_sent = self.adverts_heard = 0
        self.island_failures = 0  # requests an island failed before answering
        self.dispatchers: dict[str, Dispatcher] = {}  # per origin, made by the policy

    def wall(self) -> float:
        return EPOCH + self.loop.now

    def add(self, spec: DeviceSpec, group: int) -> Island:
        island = Island(self, spec, SigningKey(self._keys.randbytes(32)), group)
        self.islands.append(island)
        self.by_id[island.device_id] = island
        # Stagger the samplers so that a thousand devices do not tick at once.
        offset = self._keys.random() * SAMPLE_INTERVAL_S
        if spec.kind is not IslandKind.CLOUD:  # clouds are configured, not members
            self.loop.at(offset, self._tick, island)
        return island

    def _tick(self, island: Island) -> None:
        island.sample()
        self.loop.after(SAMPLE_INTERVAL_S, self._tick, island)

    # -- network -------------------------------------------------------------------

    def link(self, a: Island, b: Island) -> Link:
        loss = 1.0 - (1.0 - a.spec.access_loss) * (1.0 - b.spec.access_loss) * (1.0 - self.loss)
        return Link(latency=a.spec.access_latency_s + b.spec.access_latency_s, loss=loss)

    def reachable(self, a: Island, b: Island) -> bool:
        up = not (a.crashed or b.crashed or a.frozen or b.frozen)
        return up and self.side.get(a.device_id, 0) == self.side.get(b.device_id, 0)

    def gossip(self, sender: Island, receiver: Island, signed: bytes) -> None:
        self.adverts_sent += 1
        link = self.link(sender, receiver)
        if not self.reachable(sender, receiver) or self.rng.random() < link.loss:
            return
        self.loop.after(link.latency, receiver.hear, signed, sender.device_id)

    # -- faults (scheduled by .faults) ---------------------------------------------------

    def crash(self, island: Island) -> None:
        """``kill -9``: its streams reset, so clients notice after one network hop."""
        if island.crashed:
            return
        island.crashed = True
        island.tide = TideState()
        island.executor.drop_all(lambda: IslandFailed("connection lost"),
                                 island.spec.access_latency_s * 2)

    def restart(self, island: Island) -> None:
        island.crashed = False
        island.restart_adverts()

    def freeze(self, island: Island) -> None:
        """``SIGSTOP``: silence; clients notice only by their read deadline."""
        island.frozen = True
        island.executor.drop_all(lambda: IslandFailed("island silent"), READ_TIMEOUT_S)

    def thaw(self, island: Island) -> None:
        island.frozen = False

    def partition(self, cut_off: list[Island]) -> None:
        """Put ``cut_off`` on side 1; requests across the cut stall until the deadline."""
        for island in cut_off:
            self.side[island.device_id] = 1
        for island in self.islands:
            if island.device_id in self.side:
                continue
            for work in [*island.executor.busy, *island.executor.waiting]:
                if self.side.get(work.origin, 0) != 0:
                    self.loop.after(READ_TIMEOUT_S, work.done.fail, IslandFailed("island silent"))

    def heal(self) -> None:
        self.side.clear()

    # -- requests ------------------------------------------------------------------------

    def inspect(self, request: m.InferenceRequest, island: Island) -> None:
        """Judge the text as it arrives at ``island`` (the violation definition)."""
        job = self.jobs[request.request_id]
        if island.spec.privacy >= job.prompt.required_privacy:
            return
        if leaked("\n".join(x.content for x in request.messages), job.prompt.secrets):
            job.violation = True

    async def execute(self, origin: Island, target: Island, request: m.InferenceRequest) -> Work:
        """Run ``request`` on ``target``'s executor, as seen from ``origin``."""
        remote = target is not origin
        if remote and not self.reachable(origin, target):
            refused = 2 * self.link(origin, target).latency  # a crashed peer refuses at once
            await sleep(refused if target.crashed else READ_TIMEOUT_S)
            raise IslandFailed("island unreachable")
        self.inspect(request, target)
        hop = self.link(origin, target).latency if remote else 0.0
        await sleep(hop)
        words = sum(len(x.content.split()) for x in request.messages)
        last = request.messages[-1].content.split()
        work = Work(prompt_tokens=words * 4 // 3, max_tokens=request.max_tokens, done=Future(),
                    answer="Re: " + " ".join(last[:6]), origin=origin.device_id)
        if target.crashed or target.frozen:  # it went away while the request travelled
            await sleep(0.0 if target.crashed else READ_TIMEOUT_S)
            raise IslandFailed("island went away")
        target.begin()
        target.executor.submit(work)
        try:
            await work.done
        finally:
            target.end()
        await sleep(hop)
        self.jobs[request.request_id].cost += (
            work.prompt_tokens * target.spec.price_in + work.max_tokens * target.spec.price_out
        ) / 1e6
        return work

    def shipper(self, origin: Island) -> Ship:
        """The Dispatcher's ``ship``: like the runtime's, any failure becomes IslandFailed."""

        async def ship(device_id: str, request: m.InferenceRequest,
                       on_chunk: Callable[[str], Awaitable[None]]) -> m.ResponseEnd:
            target = self.by_id[device_id]
            start = self.loop.now
            assert origin.membership is not None
            try:
                work = await self.execute(origin, target, request)
            except IslandRunError as exc:
                self.island_failures += 1
                origin.membership.report_failure(device_id, self.wall())
                raise exc if isinstance(exc, IslandFailed) else IslandFailed(str(exc)) from None
            origin.membership.report_success(device_id, self.wall())
            origin.latency.observe(device_id, (self.loop.now - start) * 1000)
            origin.latency_measured.add(device_id)
            await on_chunk(work.answer)
            return m.ResponseEnd(request_id=request.request_id, prompt_tokens=work.prompt_tokens,
                                 completion_tokens=work.max_tokens)

        return ship

    def local_runner(self, origin: Island) -> Callable[..., Awaitable[Usage]]:
        """The Dispatcher's ``run_local``: this device's executor, no fallback on overload."""
        async def run_local(request: m.InferenceRequest,
                            on_chunk: Callable[[str], Awaitable[None]]) -> Usage:
            start = self.loop.now
            work = await self.execute(origin, origin, request)
            origin.latency.observe(origin.device_id, (self.loop.now - start) * 1000)
            await on_chunk(work.answer)
            return Usage(work.prompt_tokens, work.max_tokens)

        return run_local

