"""The Bluetooth LE mesh transport (a :class:`~.base.Transport`).

Paper Scenario 2: two friends hiking with phones only. Friend A's phone is
low on battery; its requests run on friend B's phone over Bluetooth, and a
third phone out of A's range relays. This module is that mesh, over any
:class:`~.ble_radio.Radio` -- a real adapter (``ble_bleak``) or the radio
model (``ble_radio_memory``), which runs exactly this code in the tests.

How the pieces fit, bottom up:

* **links** -- we advertise a rotating id (``ble_ids``) and scan; of two
  devices in range, the one with the smaller radio address connects (so a
  pair has one link). Each link carries *fragments*
  (``protocol.fragments``) of whole *packets*, written one at a time
  (paced by the radio) from a bounded per-link queue; a full queue drops
  the packet (flooding and the streams' retransmissions recover). The
  first packet on a link is a signed ``HELLO``: it names the neighbour.
* **packets** -- signed by their origin, TTL outside the signature
  (``ble_relay``). Every device verifies, deduplicates, delivers and
  re-floods (:class:`~.ble_relay.RelayCore`); unicast packets that reach a
  dead end wait in store-and-forward until their destination comes into
  range.
* **gossip** -- :meth:`BleTransport.publish` floods one ``BROADCAST``
  packet; what the node's allowlist refuses is neither delivered nor
  relayed.
* **request streams** -- reliable, ordered streams over ``UNICAST``
  packets (``ble_stream``), whose payloads the node seals end to end, so
  relays carry them blind.

``connected()`` is the neighbours plus every device heard from (through any
number of hops) within ``reach_window`` seconds: those a stream can reach.
``link(peer)`` says how: the hops its latest new packet took (from its TTL),
and the signal (RSSI from our scans) and MTU of the neighbour it came through.

Limits (every one in :class:`BleConfig`): TTL, seen-set size, per-link
queue and reassembly bounds, store-and-forward caps and age, stream window,
gossip inbox (drops the newest when full), open streams.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from nacl.signing import SigningKey

from islandrun.protocol.errors import LocalProtocolError
from islandrun.protocol.fragments import (
    MSG_ID_SPACE,
    FragmentError,
    Reassembler,
    ReassemblyLimits,
    fragment,
)
from islandrun.protocol.ids import device_id_from_public_key

from . import ble_stream
from .base import (
    TOPICS,
    AbortableStream,
    ChannelFeed,
    IsAllowed,
    LinkView,
    PeerUnavailable,
    StreamHandler,
    check_allowed,
    check_topic,
    claim_feed,
    claim_handler,
    closing_stream,
    run_handler,
)
from .ble_ids import EPOCH_S, derive_irk, epoch_of, rotating_id
from .ble_radio import LinkLost, Radio, RadioLink
from .ble_relay import (
    BROADCAST_DST,
    DROP,
    OVERHEAD,
    Kind,
    Packet,
    PacketError,
    RelayCore,
    Route,
    SeenSet,
    StoreAndForward,
    decode_packet,
    dst_tag,
    encode_packet,
)
from .ble_stream import BleStream, Op, StreamSettings

ADDRESS_PREFIX = "ble/"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BleConfig:
    """How the BLE mesh behaves. Times are in seconds."""

    #: Hops a packet may travel: 8 covers a chain of 8 devices (7 relays).
    ttl: int = 8
    #: Packet ids remembered to drop duplicates; must outlast one flood.
    seen_capacity: int = 4096
    #: Per-link reassembly bounds (largest packet, partial packets, timeout).
    reassembly: ReassemblyLimits = field(default_factory=ReassemblyLimits)
    #: Store-and-forward: packets per absent destination, destinations, age.
    store_per_peer: int = 32
    store_peers: int = 16
    store_max_age: float = 300.0
    #: Packets waiting to be written on one link; past this they are dropped.
    link_queue: int = 64
    #: Gossip messages waiting per topic for the node to read.
    gossip_buffer: int = 256
    #: Request streams: window (messages in flight), retransmission timeout
    #: (a 7-hop round trip of small packets at 20-byte MTU takes about a
    #: second) plus time per outstanding byte (20-byte MTU moves ~2.5 KB/s
    #: per hop, and each hop receives a packet whole before relaying it),
    #: silent retransmissions before the peer counts as gone; open streams.
    stream_window: int = 8
    rto: float = 2.0
    rto_per_byte: float = 0.003
    max_retries: int = 6
    max_streams: int = 64
    #: A dialled link must name its device within this.
    hello_timeout: float = 5.0
    #: A device heard from within this counts as connected.
    reach_window: float = 30.0
    #: How often expired reassemblies and stored packets are dropped.
    housekeeping_interval: float = 1.0
    #: Rotating-id epoch (see ``ble_ids``).
    epoch_s: float = EPOCH_S
    #: Recently finished streams remembered, so a late OPEN is ignored.
    closed_memory: int = 1024
    #: Nominal application rate of one link, bit/s, reported in ``link()`` for
    #: latency estimates only (100 kbit/s: 20-byte MTU without DLE; see bench/ble.py).
    link_rate_bps: float = 100_000.0

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError("ttl must be 1..255")
        if min(self.link_queue, self.gossip_buffer, self.max_streams) < 1:
            raise ValueError("queue sizes must be >= 1")
        if not self.link_rate_bps > 0:
            raise ValueError("link_rate_bps must be > 0")

    @property
    def max_payload(self) -> int:
        """Largest stream message or gossip datum that fits in one packet."""
        return self.reassembly.max_message_size - OVERHEAD - ble_stream.HEADER.size


#: Tests and the simulator: fast timers (virtual or real time).
TEST_CONFIG = BleConfig(
    rto=0.25, rto_per_byte=2e-6, max_retries=8, hello_timeout=1.0, housekeeping_interval=0.5
)


@dataclass(frozen=True, slots=True)
class BleStats:
    """A snapshot of the mesh state this device holds."""

    links: int
    neighbours: int
    seen: int
    stored: int
    stored_destinations: int
    store_dropped: int
    queue_dropped: int
    bad_packets: int
    bad_fragments: int
    reassembly_bytes: int
    reassembly_in_flight: int
    streams: int


class _Link:
    """One radio link and the state on our side of it."""

    def __init__(self, radio_link: RadioLink, config: BleConfig, first_msg_id: int) -> None:
        self.radio_link = radio_link
        self.peer: str | None = None
        self.hello = trio.Event()
        self.rssi: int | None = None  # from our latest scan that heard the other side
        self.reassembler = Reassembler(config.reassembly)
        self.outbox_send, self.outbox = trio.open_memory_channel[bytes](config.link_queue)
        self.scope = trio.CancelScope()
        self._msg_id = first_msg_id

    def next_msg_id(self) -> int:
        self._msg_id = (self._msg_id + 1) % MSG_ID_SPACE
        return self._msg_id


class BleTransport:
    """One device on the BLE mesh."""

    def __init__(
        self,
        key: SigningKey,
        radio: Radio,
        is_allowed: IsAllowed,
        config: BleConfig,
        rng: random.Random,
        nursery: trio.Nursery,
    ) -> None:
        self._key = key
        self._id = device_id_from_public_key(bytes(key.verify_key))
        self._radio = radio
        self._is_allowed = is_allowed
        self.config = config
        self._rng = rng
        self._nursery = nursery
        self._relay = RelayCore(
            self._id,
            seen=SeenSet(config.seen_capacity),
            store=StoreAndForward(
                per_peer=config.store_per_peer,
                peers=config.store_peers,
                max_age=config.store_max_age,
            ),
        )
        self._links: dict[str, _Link] = {}  # by radio address
        self._by_peer: dict[str, _Link] = {}  # by device id, once HELLO arrived
        self._dialing: set[str] = set()
        # Invariant: at most 4 * seen_capacity entries (pruned in housekeeping).
        self._heard: OrderedDict[str, float] = OrderedDict()
        # Origin -> (hops, radio address of the neighbour it came through), of
        # the first copy of its latest packet; pruned with ``_heard``.
        self._paths: dict[str, tuple[int, str]] = {}
        self._inboxes = {
            topic: trio.open_memory_channel[tuple[str, bytes]](config.gossip_buffer)
            for topic in TOPICS
        }
        self._feeds_taken: set[str] = set()
        self._streams: dict[tuple[str, bytes], BleStream] = {}
        self._finished = SeenSet(config.closed_memory)
        self._handler: StreamHandler | None = None
        self._settings = StreamSettings(
            config.stream_window,
            config.rto,
            config.rto_per_byte,
            config.max_retries,
            config.max_payload,
        )
        self._dropped = {"queue": 0, "packets": 0, "fragments": 0}

    # -- the Transport interface ------------------------------------------------

    @property
    def local_id(self) -> str:
        return self._id

    def addresses(self) -> tuple[str, ...]:
        return (ADDRESS_PREFIX + self._radio.address,)

    def connected(self) -> frozenset[str]:
        now = trio.current_time()
        heard = {o for o, t in self._heard.items() if now - t < self.config.reach_window}
        return (frozenset(self._by_peer) | heard) - {self._id}

    def link(self, peer: str) -> LinkView | None:
        if peer not in self.connected():
            return None
        direct = self._by_peer.get(peer)
        hops, via = (1, direct.radio_link.address) if direct else self._paths.get(peer, (1, ""))
        first = self._links.get(via)
        return LinkView(
            "ble", hops=hops, rssi_dbm=first.rssi if first else None,
            mtu=first.radio_link.mtu if first else None, rate_bps=self.config.link_rate_bps,
        )  # fmt: skip

    async def connect(self, address: str) -> str:
        if not address.startswith(ADDRESS_PREFIX):
            raise PeerUnavailable(f"{address[:64]!r} is not a BLE address")
        radio_address = address.removeprefix(ADDRESS_PREFIX)
        link = self._links.get(radio_address)
        if link is None:
            try:
                link = self._start_link(await self._radio.connect(radio_address))
            except LinkLost as exc:
                raise PeerUnavailable(f"cannot reach {address[:64]!r}: {exc}") from None
        with trio.move_on_after(self.config.hello_timeout):
            await link.hello.wait()
        if link.peer is None:
            raise PeerUnavailable(f"{address[:64]!r} did not say who it is")
        return link.peer

    async def publish(self, topic: str, data: bytes) -> None:
        check_topic(topic)
        if len(data) > self.config.max_payload:
            raise LocalProtocolError(
                f"gossip of {len(data)} bytes exceeds the {self.config.max_payload}-byte BLE limit"
            )
        self._originate(Kind.BROADCAST, BROADCAST_DST, bytes([TOPICS.index(topic)]) + data)
        await trio.lowlevel.checkpoint()

    def gossip(self, topic: str) -> ChannelFeed:
        claim_feed(self._feeds_taken, topic)
        return ChannelFeed(self._inboxes[topic][1])

    @asynccontextmanager
    async def open_stream(self, peer: str) -> AsyncIterator[AbortableStream]:
        stream_id = self._rng.randbytes(8)
        stream = self._add_stream(peer, stream_id, opening=True)
        self._send_stream(peer, stream_id, Op.OPEN, 0, b"")
        async with closing_stream(stream, client=True) as opened:
            await stream.wait_open()  # a refusal or silence aborts it like any failure
            yield opened

    def serve(self, handler: StreamHandler) -> None:
        self._handler = claim_handler(self._handler, handler)

    def statistics(self) -> BleStats:
        partials = [link.reassembler.statistics() for link in self._links.values()]
        return BleStats(
            links=len(self._links),
            neighbours=len(self._by_peer),
            seen=len(self._relay.seen),
            stored=len(self._relay.store),
            stored_destinations=self._relay.store.destinations(),
            store_dropped=self._relay.store.dropped,
            queue_dropped=self._dropped["queue"],
            bad_packets=self._dropped["packets"],
            bad_fragments=self._dropped["fragments"],
            reassembly_bytes=sum(p.buffered_bytes for p in partials),
            reassembly_in_flight=sum(p.in_flight for p in partials),
            streams=len(self._streams),
        )

    # -- background tasks ---------------------------------------------------------

    async def advertise_loop(self, wall_clock: Callable[[], float]) -> None:
        """Advertise our rotating id, changing it every epoch."""
        irk = derive_irk(bytes(self._key))
        while True:
            now = wall_clock()
            epoch = epoch_of(now, self.config.epoch_s)
            await self._radio.advertise(rotating_id(irk, epoch))
            await trio.sleep(max(0.0, (epoch + 1) * self.config.epoch_s - now))

    async def scan_loop(self) -> None:
        """Connect to every advertiser in range with a larger radio address."""
        while True:
            for sighting in await self._radio.scan():
                address = sighting.address
                if address in self._links:
                    self._links[address].rssi = sighting.rssi
                if address in self._links or address in self._dialing:
                    continue
                if self._radio.address < address:
                    self._dialing.add(address)
                    self._nursery.start_soon(self._dial, address)

    async def accept_loop(self) -> None:
        while True:
            self._start_link(await self._radio.accept())

    async def housekeeping_loop(self) -> None:
        while True:
            await trio.sleep(self.config.housekeeping_interval)
            now = trio.current_time()
            for link in self._links.values():
                link.reassembler.expire(now)
            self._relay.store.expire(now)
            while self._heard and (
                now - next(iter(self._heard.values())) >= self.config.reach_window
                or len(self._heard) > 4 * self.config.seen_capacity
            ):
                self._paths.pop(self._heard.popitem(last=False)[0], None)

    def close_feeds(self) -> None:
        for send, _ in self._inboxes.values():
            send.close()

    # -- links ----------------------------------------------------------------------

    async def _dial(self, address: str) -> None:
        try:
            self._start_link(await self._radio.connect(address))
        except LinkLost:
            _log.debug("dialling a BLE neighbour failed")
        finally:
            self._dialing.discard(address)

    def _start_link(self, radio_link: RadioLink) -> _Link:
        link = _Link(radio_link, self.config, self._rng.randrange(MSG_ID_SPACE))
        previous = self._links.get(radio_link.address)
        if previous is not None:
            previous.scope.cancel()
        self._links[radio_link.address] = link
        self._nursery.start_soon(self._run_link, link)
        return link

    async def _run_link(self, link: _Link) -> None:
        with link.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hello_loop, link)
                nursery.start_soon(self._write_loop, link)
                await self._read_loop(link)
        self._drop_link(link)
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await link.radio_link.aclose()

    async def _hello_loop(self, link: _Link) -> None:
        # HELLO may be lost like any packet: repeat ours until the other side
        # is named; its body says whether we know the other side already, and
        # a HELLO from a side that does not know us yet is answered at once.
        while link.peer is None:
            self._queue(link, self._hello(knows_you=False))
            await trio.sleep(self.config.hello_timeout / 4)

    async def _read_loop(self, link: _Link) -> None:
        try:
            while True:
                data = await link.radio_link.receive()
                try:
                    packet = link.reassembler.receive(data, trio.current_time())
                except FragmentError:
                    self._dropped["fragments"] += 1
                    continue
                if packet is not None:
                    self._on_packet(link, packet)
        except LinkLost:
            link.scope.cancel()

    async def _write_loop(self, link: _Link) -> None:
        try:
            async for raw in link.outbox:
                mtu = link.radio_link.mtu
                for piece in fragment(raw, msg_id=link.next_msg_id(), mtu=mtu):
                    await link.radio_link.write(piece)
        except LinkLost:
            link.scope.cancel()

    def _drop_link(self, link: _Link) -> None:
        if self._links.get(link.radio_link.address) is link:
            del self._links[link.radio_link.address]
        if link.peer is not None and self._by_peer.get(link.peer) is link:
            del self._by_peer[link.peer]
            self._relay.neighbour_down(link.peer)

    def _queue(self, link: _Link, raw: bytes) -> None:
        try:
            link.outbox_send.send_nowait(raw)
        except trio.WouldBlock:
            self._dropped["queue"] += 1

    # -- packets ------------------------------------------------------------------

    def _hello(self, *, knows_you: bool) -> bytes:
        return encode_packet(
            self._key, kind=Kind.HELLO, packet_id=self._rng.randbytes(8), dst=BROADCAST_DST,
            body=bytes([knows_you]), ttl=0,
        )  # fmt: skip

    def _originate(self, kind: Kind, dst: bytes, body: bytes) -> None:
        packet_id = self._rng.randbytes(8)
        ttl = self.config.ttl
        raw = encode_packet(self._key, kind=kind, packet_id=packet_id, dst=dst, body=body, ttl=ttl)
        packet = Packet(ttl, kind, packet_id, self._id, dst, body, raw)
        self._forward(self._relay.originate(packet, trio.current_time()))

    def _forward(self, route: Route) -> None:
        for peer in route.forward:
            link = self._by_peer.get(peer)
            if link is not None:
                self._queue(link, route.raw)

    def _on_packet(self, link: _Link, raw: bytes) -> None:
        try:
            packet = decode_packet(raw)
        except PacketError:
            self._dropped["packets"] += 1
            return
        now = trio.current_time()
        if packet.kind is Kind.HELLO:
            self._on_hello(link, packet.origin, now)
            if packet.body == b"\x00" and link.peer == packet.origin:
                self._queue(link, self._hello(knows_you=True))
            return
        if link.peer is None or packet.origin == self._id:
            return
        self._heard[packet.origin] = now
        self._heard.move_to_end(packet.origin)
        allowed = check_allowed(self._is_allowed, packet.origin)
        route = self._relay.receive(packet, came_from=link.peer, relay_allowed=allowed, now=now)
        if route is not DROP:  # the first copy: the quickest path
            hops = max(1, self.config.ttl - packet.ttl + 1)
            self._paths[packet.origin] = (hops, link.radio_link.address)
        self._forward(route)
        if route.deliver:
            self._deliver(packet, allowed)

    def _on_hello(self, link: _Link, origin: str, now: float) -> None:
        if origin == self._id or link.peer is not None:
            return
        link.peer = origin
        self._by_peer[origin] = link
        link.hello.set()
        for raw in self._relay.neighbour_up(origin, now):
            self._queue(link, raw)

    def _deliver(self, packet: Packet, allowed: bool) -> None:
        if packet.kind is Kind.UNICAST:
            self._on_stream_packet(packet.origin, packet.body)
        elif allowed and packet.body and packet.body[0] < len(TOPICS):
            try:
                self._inboxes[TOPICS[packet.body[0]]][0].send_nowait(
                    (packet.origin, packet.body[1:])
                )
            except (trio.WouldBlock, trio.ClosedResourceError):
                self._dropped["queue"] += 1

    # -- streams ------------------------------------------------------------------

    def _send_stream(self, peer: str, stream_id: bytes, op: Op, seq: int, payload: bytes) -> None:
        body = ble_stream.encode(op, stream_id, seq, payload)
        self._originate(Kind.UNICAST, dst_tag(peer), body)

    def _add_stream(self, peer: str, stream_id: bytes, *, opening: bool) -> BleStream:
        def send_op(op: Op, seq: int, payload: bytes) -> None:
            self._send_stream(peer, stream_id, op, seq, payload)

        stream = BleStream(peer, self._settings, send_op, opening=opening)
        self._streams[(peer, stream_id)] = stream
        self._nursery.start_soon(self._run_stream_timer, peer, stream_id, stream)
        return stream

    async def _run_stream_timer(self, peer: str, stream_id: bytes, stream: BleStream) -> None:
        try:
            await stream.run_timer()
        finally:
            del self._streams[(peer, stream_id)]
            self._finished.add(peer.encode() + stream_id)

    def _on_stream_packet(self, peer: str, body: bytes) -> None:
        decoded = ble_stream.decode(body)
        if decoded is None:
            self._dropped["packets"] += 1
            return
        op, stream_id, seq, payload = decoded
        stream = self._streams.get((peer, stream_id))
        if op is Op.OPEN:
            self._on_open(peer, stream_id, stream)
        elif stream is not None:
            stream.on_packet(op, seq, payload)
        elif op in (Op.DATA, Op.FIN, Op.PING):
            self._send_stream(peer, stream_id, Op.RESET, 0, b"")

    def _on_open(self, peer: str, stream_id: bytes, stream: BleStream | None) -> None:
        if stream is not None:
            self._send_stream(peer, stream_id, Op.ACCEPT, 0, b"")
            return
        if peer.encode() + stream_id in self._finished:
            return
        handler = self._handler
        if handler is None or len(self._streams) >= self.config.max_streams:
            self._send_stream(peer, stream_id, Op.REFUSE, 0, b"")
            return
        stream = self._add_stream(peer, stream_id, opening=False)
        self._send_stream(peer, stream_id, Op.ACCEPT, 0, b"")
        self._nursery.start_soon(run_handler, handler, stream)


@asynccontextmanager
async def open_ble_transport(
    key: SigningKey,
    radio: Radio,
    is_allowed: IsAllowed,
    config: BleConfig = BleConfig(),
    *,
    rng: random.Random,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncIterator[BleTransport]:
    """Run the BLE mesh as ``key`` over ``radio`` for the duration of the block.

    ``wall_clock`` (Unix seconds) picks the rotating-id epoch; tests pass
    ``trio.current_time`` so ids rotate in virtual time.
    """
    async with trio.open_nursery() as nursery:
        transport = BleTransport(key, radio, is_allowed, config, rng, nursery)
        nursery.start_soon(transport.advertise_loop, wall_clock)
        nursery.start_soon(transport.scan_loop)
        nursery.start_soon(transport.accept_loop)
        nursery.start_soon(transport.housekeeping_loop)
        try:
            yield transport
        finally:
            transport.close_feeds()
            nursery.cancel_scope.cancel()
