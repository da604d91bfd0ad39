"""The real mesh: a py-libp2p host behind the one :class:`~.base.Transport` interface.

``async with open_libp2p_transport(key, is_allowed, config, rng=...) as t`` runs
a py-libp2p 0.8.1 host on TCP with Noise (only -- the library's default also
offers plaintext, secio and TLS) and Yamux. Its identity is the device's
Ed25519 key, so a libp2p peer id *is* a device id
(:mod:`islandrun.protocol.ids`). On top of the host:

* **GossipSub** carries :data:`~.base.TOPICS`. Messages are signed by the host
  key and verified by the library (``strict_signing``) before our topic
  validator runs; the validator lets through only messages whose origin
  (``from_id``) the node's ``is_allowed`` accepts, so gossip from unpaired
  keys is neither delivered nor forwarded. The validator cannot raise: a
  raising sync validator takes the whole pubsub service down in 0.8.1.
* **Request streams** use the protocol :data:`REQUEST_PROTOCOL`, framed by
  :mod:`islandrun.protocol.framing` with our own read loop (the library's
  varint reader gives up on large messages after 100 partial reads).
* **Spare streams** (:mod:`.spares`): after each request stream to a peer,
  the next one is opened in the background, so a request does not wait for
  stream negotiation. The client always speaks first on a request stream;
  an inbound stream's handler starts when its first message arrives.
* **Reconnection**: every address given to :meth:`Libp2pTransport.connect`
  (``--bootstrap``, mDNS, adverts) is remembered and re-dialled with
  jittered exponential backoff while its peer is not connected.

Settings that matter, and why (measured, see ``shared/docs/LIBP2P_NOTES.md``):
``max_connections_per_peer=1`` (the default 3 adds a 250 ms wait to every
dial); health monitoring with 1 s pings that abort the connection on
failure (otherwise a ``SIGSTOP``-ed peer blocks reads forever);
``heartbeat_interval=1`` (default 120 s) and spam protection off (its default
silently drops the 11th message per second, our own publishes included).

Shutdown order: stop publishing, drain the per-peer outbound queues (bounded
wait), stop pubsub and gossipsub, then the host. py-libp2p can still raise
shutdown noise (``RuntimeError: Nursery is closed to new arrivals``) out of
``host.run`` as an ``ExceptionGroup``; it is logged by type and swallowed
only while we are shutting down.

What this is not: discovery (:mod:`.mdns` finds addresses; the runtime
passes them to ``connect``), trust decisions (the node's ``is_allowed``),
or message meaning (bytes only).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import multiaddr
import trio
from libp2p import create_yamux_muxer_option, new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.config import ConnectionConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.subscription import TrioSubscriptionAPI
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service
from nacl.signing import SigningKey

from islandrun.protocol.errors import FrameError
from islandrun.protocol.framing import MAX_FRAME_SIZE, FrameDecoder, encode_frame

from .base import (
    ABORT_TIMEOUT_S,
    TOPICS,
    AbortableStream,
    IsAllowed,
    LinkView,
    PeerUnavailable,
    StreamClosed,
    StreamHandler,
    TransportError,
    check_allowed,
    check_topic,
    claim_feed,
    claim_handler,
    closing_stream,
    lan_link,
    run_handler,
)
from .spares import SparePool

_log = logging.getLogger(__name__)

#: Our request protocol. APPEND-ONLY: a new version is a new id.
REQUEST_PROTOCOL = TProtocol("/islandrun/request/1.0.0")
#: Bytes asked for per read; Yamux hands out at most 64 KiB per frame anyway.
READ_SIZE = 64 * 1024
#: Anything the library, trio or the OS raises when a connection breaks.
_BROKEN: tuple[type[BaseException], ...] = (
    BaseLibp2pError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)


#: The node's check on one gossip message: ``(topic, origin device id, data)``.
GossipCheck = Callable[[str, str, bytes], bool]


@dataclass(frozen=True, slots=True)
class Libp2pConfig:
    """How the libp2p transport behaves. Times are in seconds."""

    #: Multiaddrs to listen on. Loopback by default; a LAN node passes
    #: ``--listen /ip4/0.0.0.0/tcp/PORT``.
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    #: Largest request-stream message we accept or send.
    max_frame_size: int = MAX_FRAME_SIZE
    #: GossipSub heartbeat (mesh repair, gossip emission). Library default: 120.
    heartbeat_interval: int = 1
    #: GossipSub mesh degree D (and D_low, D_high): go-libp2p's defaults.
    mesh_degree: tuple[int, int, int] = (6, 4, 12)
    #: Dial and stream-open limits: a dead address must not hold a caller.
    dial_timeout: float = 5.0
    open_stream_timeout: float = 5.0
    #: Ping every ``health_interval``; a ping unanswered in ``ping_timeout``
    #: closes the connection, so a frozen peer's streams end in ~3 s.
    health_interval: float = 2.0
    ping_timeout: float = 1.0
    #: Reconnect backoff: first retry after ``reconnect_min``, doubling up
    #: to ``reconnect_max``, each delay scaled by a random 0.5..1 (jitter).
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    #: How often the reconnect loop looks at the known peers.
    reconnect_tick: float = 0.5
    #: Longest wait for queued gossip to leave at shutdown.
    drain_timeout: float = 0.5
    #: Spare request streams (:mod:`.spares`): a pre-opened stream is used
    #: only while younger than ``spare_max_age``; an island waits
    #: ``spare_idle_timeout`` (longer) for an inbound stream's first message
    #: before it drops it. Costs one idle stream per peer asked, renewed
    #: every ``spare_max_age``; saves the stream opening (~4 ms) per request.
    spare_max_age: float = 20.0
    spare_idle_timeout: float = 30.0
    #: Extra topic names beyond :data:`~.base.TOPICS` (tests only).
    extra_topics: tuple[str, ...] = field(default=())


def key_pair_from_signing_key(key: SigningKey) -> KeyPair:
    """The libp2p Ed25519 key pair of the device key (same seed, same peer id)."""
    return ed25519_key_pair(bytes(key))


def backoff_delay(failures: int, config: Libp2pConfig, rng: random.Random) -> float:
    """Seconds to wait before the next dial after ``failures`` (>= 1) failed ones."""
    base = min(config.reconnect_min * 2 ** min(failures - 1, 32), config.reconnect_max)
    return base * rng.uniform(0.5, 1.0)


class Libp2pStream:
    """A request stream: whole messages over one libp2p stream (a MessageStream)."""

    def __init__(self, stream: INetStream, peer: str, max_frame_size: int) -> None:
        self._stream = stream
        self._peer = peer
        self._max = max_frame_size
        self._decoder = FrameDecoder(max_size=max_frame_size)
        self._closed = False
        self._early = b""  # read by wait_first_data, not yet decoded
        self.peer_finished = False

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: bytes) -> None:
        frame = encode_frame(message, max_size=self._max)
        if self._closed:
            raise StreamClosed("this stream is closed")
        try:
            await self._stream.write(frame)
        except _BROKEN as exc:
            raise PeerUnavailable(
                f"sending to {self._peer[-8:]} failed ({type(exc).__name__})"
            ) from None

    async def receive(self) -> bytes:
        if self._closed:
            raise StreamClosed("this stream is closed")
        try:
            # Bounded: every pass consumes >= 1 byte of a frame capped at _max.
            while (frame := self._decoder.next_frame()) is None:
                self._decoder.receive_data(await self._read())
        except FrameError:
            await self.abort()
            raise
        return frame

    async def wait_first_data(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the peer's first bytes (kept for
        :meth:`receive`); False if none came or the stream ended."""
        with trio.move_on_after(timeout):
            try:
                self._early = await self._read()
            except TransportError:
                return False
            return True
        return False

    async def _read(self) -> bytes:
        if self._early:
            data, self._early = self._early, b""
            return data
        try:
            data = await self._stream.read(READ_SIZE)
        except StreamEOF:
            data = b""
        except _BROKEN as exc:
            raise PeerUnavailable(
                f"the stream from {self._peer[-8:]} broke ({type(exc).__name__})"
            ) from None
        if data:
            return data
        if _was_reset(self._stream):
            raise PeerUnavailable(f"{self._peer[-8:]} reset the stream")
        if self._decoder.buffered:
            raise PeerUnavailable(f"{self._peer[-8:]} ended the stream mid-message")
        self.peer_finished = True
        raise StreamClosed(f"{self._peer[-8:]} finished the stream")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stream.close()
        except _BROKEN:
            await self.abort()

    async def abort(self) -> None:
        self._closed = True
        try:
            await self._stream.reset()
        except _BROKEN:
            _log.debug("reset of a stream to %s failed; it is gone anyway", self._peer[-8:])


async def _reset(net_stream: INetStream) -> None:
    """Abort a stream nobody uses (a spare), bounded in time, errors ignored."""
    with trio.move_on_after(ABORT_TIMEOUT_S):
        try:
            await net_stream.reset()
        except _BROKEN:
            _log.debug("reset of an unused stream failed; it is gone anyway")


def _was_reset(stream: INetStream) -> bool:
    """Whether the peer reset ``stream``. py-libp2p 0.8.1's Yamux reports a reset
    that arrives on a window update as a clean end of stream (``StreamEOF``);
    its muxed stream still knows the truth."""
    return bool(getattr(getattr(stream, "muxed_stream", None), "reset_received", False))


class _GossipFeed:
    """The async iterator :meth:`Libp2pTransport.gossip` returns."""

    def __init__(self, subscription: TrioSubscriptionAPI, local_id: str) -> None:
        self._subscription = subscription
        self._local_id = local_id

    def __aiter__(self) -> _GossipFeed:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        while True:  # skips only our own publishes, which the library echoes
            try:
                message = await self._subscription.get()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise StopAsyncIteration from None
            origin = ID(message.from_id).to_base58()
            if origin != self._local_id:
                return origin, bytes(message.data)


@dataclass(slots=True)
class _Known:
    """A peer to keep connected to, and when to try next."""

    info: PeerInfo
    failures: int = 0  # consecutive failed dials
    next_try: float = 0.0


class Libp2pTransport:
    """A running libp2p host seen through the :class:`~.base.Transport` interface."""

    def __init__(
        self,
        host: IHost,
        pubsub: Pubsub,
        is_allowed: IsAllowed,
        config: Libp2pConfig,
        rng: random.Random,
        accepts: GossipCheck | None = None,
    ) -> None:
        self._host = host
        self._pubsub = pubsub
        self._is_allowed = is_allowed
        self._accepts = accepts
        self._config = config
        self._rng = rng
        self._id = host.get_id().to_base58()
        self._handler: StreamHandler | None = None
        self._subscriptions: dict[str, TrioSubscriptionAPI] = {}
        self._feeds_taken: set[str] = set()
        self._known: dict[ID, _Known] = {}
        self._spares: SparePool[INetStream] = SparePool(config.spare_max_age)
        self._nursery: trio.Nursery | None = None  # set by start()
        #: Set when the spare being opened for a peer is ready (or failed).
        self._spare_opening: dict[str, trio.Event] = {}
        self.closing = False
        for topic in self.topics:
            pubsub.set_topic_validator(topic, self._validate, False)

    @property
    def topics(self) -> tuple[str, ...]:
        return TOPICS + self._config.extra_topics

    # -- Transport ---------------------------------------------------------

    @property
    def local_id(self) -> str:
        return self._id

    def addresses(self) -> tuple[str, ...]:
        return tuple(str(addr) for addr in self._host.get_addrs())

    def connected(self) -> frozenset[str]:
        connections = self._host.get_network().connections
        return frozenset(peer.to_base58() for peer, conns in connections.items() if conns)

    def link(self, peer: str) -> LinkView | None:
        return lan_link(self.connected(), peer)

    async def connect(self, address: str) -> str:
        info = _peer_info(address)
        if info.peer_id.to_base58() == self._id:
            raise TransportError("that address is this device itself")
        self._known[info.peer_id] = _Known(info)
        await self._dial(info)
        return info.peer_id.to_base58()

    async def publish(self, topic: str, data: bytes) -> None:
        check_topic(topic, self.topics)
        if self.closing:
            raise TransportError("the transport is shutting down; not publishing")
        try:
            await self._pubsub.publish(topic, bytes(data))
        except BaseLibp2pError as exc:
            raise TransportError(f"publishing failed ({type(exc).__name__})") from None

    def gossip(self, topic: str) -> _GossipFeed:
        claim_feed(self._feeds_taken, topic, self.topics)
        return _GossipFeed(self._subscriptions[topic], self._id)

    @asynccontextmanager
    async def open_stream(self, peer: str) -> AsyncIterator[AbortableStream]:
        if self.closing:
            raise TransportError("the transport is shutting down")
        try:
            peer_id = ID.from_base58(peer)
        except Exception:
            raise PeerUnavailable("that is not a device id") from None
        net_stream = await self._take_spare(peer)
        if net_stream is None:
            # A stale connection just after the peer died fails here too: not a retry case.
            with _peer_call(f"opening a stream to {peer[-8:]}", self._config.open_stream_timeout):
                net_stream = await self._host.new_stream(peer_id, [REQUEST_PROTOCOL])
        stream = Libp2pStream(net_stream, peer, self._config.max_frame_size)
        try:
            async with closing_stream(stream, client=True) as opened:
                yield opened
        finally:
            # Only now: opening it during the request would compete with the
            # request's own first message and first reply for the event loop.
            self._open_spare_soon(peer)

    def serve(self, handler: StreamHandler) -> None:
        self._handler = claim_handler(self._handler, handler)
        # Registered only now, so a peer asking a non-serving node fails at
        # protocol negotiation (PeerUnavailable at open), as on every transport.
        self._host.set_stream_handler(REQUEST_PROTOCOL, self._on_stream)

    # -- internals ------------------------------------------------------------

    def _validate(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        """Topic validator: origin must be us, or allowed and (when the node
        gave an ``accepts`` check) carrying data the node accepts -- so
        forged or expired envelopes are not relayed. Never raises."""
        try:
            origin = ID(message.from_id).to_base58()
            if origin == self._id:
                return True
            if not check_allowed(self._is_allowed, origin):
                return False
            topic = message.topicIDs[0] if message.topicIDs else ""
            return self._accepts is None or bool(self._accepts(topic, origin, message.data))
        except Exception as exc:
            _log.warning("gossip validator failed (%s); message dropped", type(exc).__name__)
            return False

    async def _on_stream(self, net_stream: INetStream) -> None:
        peer = net_stream.muxed_conn.peer_id.to_base58()
        stream = Libp2pStream(net_stream, peer, self._config.max_frame_size)
        # The client speaks first; a spare stream stays silent until it is
        # used, and the handler (and the node's in-flight count) starts then.
        if (
            self._handler is None  # set before registration
            or self.closing
            or not await stream.wait_first_data(self._config.spare_idle_timeout)
        ):
            await stream.abort()
            return
        await run_handler(self._handler, stream)

    async def _take_spare(self, peer: str) -> INetStream | None:
        """The peer's spare stream if it is fresh and its connection alive
        (waiting for one being opened: that is sooner than a new one)."""
        if (opening := self._spare_opening.get(peer)) is not None:
            with trio.move_on_after(self._config.open_stream_timeout):
                await opening.wait()
        taken = self._spares.take(peer, trio.current_time())
        if taken is None:
            return None
        net_stream, fresh = taken
        if fresh and not net_stream.muxed_conn.is_closed:
            return net_stream
        await _reset(net_stream)
        return None

    def _open_spare_soon(self, peer: str) -> None:
        if self._nursery is not None and not self.closing and self._spares.want(peer):
            self._spare_opening[peer] = trio.Event()
            self._nursery.start_soon(self._open_spare, peer)

    async def _open_spare(self, peer: str) -> None:
        try:
            await self._open_spare_stream(peer)
        finally:
            self._spare_opening.pop(peer).set()

    async def _open_spare_stream(self, peer: str) -> None:
        try:
            with trio.fail_after(self._config.open_stream_timeout):
                net_stream = await self._host.new_stream(ID.from_base58(peer), [REQUEST_PROTOCOL])
        except (trio.TooSlowError, *_BROKEN) as exc:
            _log.debug("no spare stream to %s (%s)", peer[-8:], type(exc).__name__)
            self._spares.failed(peer)
            return
        if self.closing:
            self._spares.failed(peer)
            await _reset(net_stream)
            return
        self._spares.put(peer, net_stream, trio.current_time())

    async def _renew_spares(self) -> None:
        for peer, net_stream in self._spares.expired(trio.current_time()):
            await _reset(net_stream)
            self._open_spare_soon(peer)

    async def _dial(self, info: PeerInfo) -> None:
        with _peer_call(f"dialling {info.peer_id.to_base58()[-8:]}", self._config.dial_timeout):
            await self._host.connect(info)

    async def start(self, nursery: trio.Nursery, bootstrap: Sequence[str]) -> None:
        await self._pubsub.wait_until_ready()
        for topic in self.topics:
            self._subscriptions[topic] = await self._pubsub.subscribe(topic)
        for address in bootstrap:
            info = _peer_info(address)
            self._known[info.peer_id] = _Known(info)
        self._nursery = nursery
        nursery.start_soon(self._reconnect_loop)

    async def _reconnect_loop(self) -> None:
        while not self.closing:
            now = trio.current_time()
            connected = self._host.get_network().connections
            async with trio.open_nursery() as nursery:
                for peer_id, known in list(self._known.items()):
                    if connected.get(peer_id):
                        known.failures = 0
                    elif known.next_try <= now:
                        nursery.start_soon(self._redial, known)
            await self._renew_spares()
            await trio.sleep(self._config.reconnect_tick)

    async def _redial(self, known: _Known) -> None:
        try:
            await self._dial(known.info)
        except PeerUnavailable:
            known.failures += 1
            delay = backoff_delay(known.failures, self._config, self._rng)
            known.next_try = trio.current_time() + delay
        else:
            known.failures = 0

    async def drain(self) -> None:
        """Stop publishing and give queued gossip a bounded time to leave."""
        self.closing = True
        for net_stream in self._spares.drain():
            await _reset(net_stream)
        with trio.move_on_after(self._config.drain_timeout):
            while any(len(queue) for queue in self._pubsub.peer_queues.values()):
                await trio.sleep(0.01)


@contextmanager
def _peer_call(doing: str, timeout: float) -> Iterator[None]:
    """Bound one call to a peer by ``timeout``; a timeout or a broken
    connection raises :class:`PeerUnavailable` saying what we were ``doing``."""
    try:
        with trio.fail_after(timeout):
            yield
    except trio.TooSlowError:
        raise PeerUnavailable(f"{doing} timed out") from None
    except _BROKEN as exc:
        raise PeerUnavailable(f"{doing} failed ({type(exc).__name__})") from None


def _peer_info(address: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(address))
    except Exception:
        raise TransportError(
            f"{address!r} is not a libp2p address of a device; expected "
            "/ip4/HOST/tcp/PORT/p2p/DEVICE_ID"
        ) from None


def _build(key: SigningKey, config: Libp2pConfig) -> tuple[IHost, Pubsub, GossipSub]:
    key_pair = key_pair_from_signing_key(key)
    noise = NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_opt=create_yamux_muxer_option(),
        listen_addrs=[multiaddr.Multiaddr(a) for a in config.listen],
        connection_config=ConnectionConfig(
            max_connections_per_peer=1,
            dial_timeout=config.dial_timeout,
            enable_health_monitoring=True,
            health_initial_delay=1.0,
            health_warmup_window=0.0,
            health_check_interval=config.health_interval,
            ping_timeout=config.ping_timeout,
            abort_connection_on_ping_failure=True,
        ),
    )
    degree, low, high = config.mesh_degree
    gossipsub = GossipSub(
        protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
        degree=degree,
        degree_low=low,
        degree_high=high,
        heartbeat_interval=config.heartbeat_interval,
        spam_protection_enabled=False,
    )
    return host, Pubsub(host, gossipsub), gossipsub


@asynccontextmanager
async def open_libp2p_transport(
    key: SigningKey,
    is_allowed: IsAllowed,
    config: Libp2pConfig = Libp2pConfig(),
    *,
    rng: random.Random,
    bootstrap: Sequence[str] = (),
    accepts: GossipCheck | None = None,
) -> AsyncIterator[Libp2pTransport]:
    """Run a libp2p host as ``key`` for the duration of the block.

    ``bootstrap`` addresses are dialled in the background (and re-dialled
    with backoff), so a peer that is not up yet does not stop the start.
    ``accepts(topic, origin, data)`` is the node's check on gossip from
    allowed peers before it is delivered or relayed (e.g. a valid signed
    envelope); it runs in the gossip validator, so keep it fast and pure.
    """
    host, pubsub, gossipsub = _build(key, config)
    transport = Libp2pTransport(host, pubsub, is_allowed, config, rng, accepts)
    for address in bootstrap:
        _peer_info(address)  # a bad address is the user's mistake: say so now
    body_error: BaseException | None = None
    try:
        # Our nursery is innermost: cancelling it at the end must not cancel
        # the services' own shutdown, or their Cancelled would replace (and
        # the nursery then swallow) whatever the body raised.
        async with (
            host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in config.listen]),
            background_trio_service(pubsub),
            background_trio_service(gossipsub),
            trio.open_nursery() as nursery,
        ):
            await transport.start(nursery, bootstrap)
            try:
                yield transport
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                with trio.CancelScope(shield=True):
                    await transport.drain()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        _reraise_after_shutdown(group, body_error)


def _reraise_after_shutdown(group: BaseExceptionGroup, body_error: BaseException | None) -> None:
    """Turn what py-libp2p raised while stopping into what our caller should see."""
    if body_error is not None and not isinstance(body_error, trio.Cancelled):
        raise body_error
    _, failures = group.split(trio.Cancelled)
    if failures is None:
        raise body_error if body_error is not None else group
    kinds = sorted({type(exc).__name__ for exc in _leaves(failures)})
    we_were_cancelled = trio.current_effective_deadline() == -math.inf
    if body_error is None or we_were_cancelled:
        _log.warning("libp2p raised %s while shutting down; ignored", ", ".join(kinds))
        if body_error is not None:
            raise body_error
        return
    raise TransportError(f"the libp2p host stopped unexpectedly ({', '.join(kinds)})") from group


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
