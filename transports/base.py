"""The one transport interface: the only seam between the node and the network.

Every way of reaching another device (libp2p over TCP on a LAN, Bluetooth
LE, the in-memory network of tests and the simulator) implements
:class:`Transport`. The node never asks which one it has; if it ever needs
``if transport is libp2p``, this interface is wrong and should change.

A transport offers three things, mirroring what LIGHTHOUSE and WAVES need:

* **broadcast** -- publish our signed advert (and other signed gossip such as
  revocations) to every reachable peer, and receive theirs
  (:meth:`Transport.publish`, :meth:`Transport.gossip`);
* **request streams** -- open a bidirectional stream of whole messages to one
  peer (:meth:`Transport.open_stream`) and accept such streams
  (:meth:`Transport.serve`), used to ship a sealed request and stream sealed
  response chunks back;
* **peers** -- who is connected right now (:meth:`Transport.connected`),
  and how (:meth:`Transport.link`: LAN, or BLE with its hops and signal,
  for WAVES's latency estimate).

What a transport does *not* do: verify signatures, decide trust, or know
message types. It moves opaque bytes and reports which *device id* sent
them (authenticated by the transport's own handshake, e.g. Noise, where it
has one). Everything above bytes is ``protocol`` and ``node``.

Errors: a peer that cannot be reached or breaks mid-stream (its process
died, it reset the stream, the connection dropped) raises
:class:`PeerUnavailable`; a stream that ended normally, or that we closed,
raises :class:`StreamClosed`. A peer that sends a malformed or oversized
frame gets its stream reset and the reader gets
:class:`~islandrun.protocol.errors.FrameError`. Reads do not time out by
themselves: callers wrap every read in ``trio.fail_after`` (ARCHITECTURE:
every network read has a deadline), which a transport must honour by being
cancellable.

Closing: a handler returning closes its stream gracefully (the client reads
:class:`StreamClosed` after the last message). Leaving
:meth:`Transport.open_stream`'s block closes gracefully only if the peer had
already finished (we read its :class:`StreamClosed`); leaving it earlier,
normally or by an exception or a cancellation, *aborts* the stream (a
reset), as does a handler that raises: the other side's next ``send`` or
``receive`` raises :class:`PeerUnavailable`. That is how cancellation
propagates: the client goes away, the remote handler's next send fails and
the remote generation stops.

Trust: the transport enforces exactly one decision of the node's, the
``is_allowed(device_id)`` callback given at construction: gossip whose
origin is not allowed never reaches :meth:`Transport.gossip` (on libp2p it
is not even forwarded). Inbound streams are *not* filtered (pairing will
need them from unpaired devices): handlers check ``stream.peer`` themselves.

Lifetime: each implementation is started by an async context manager of its
own (``MemoryNetwork.node``, ``libp2p.open_libp2p_transport``); leaving it
shuts the transport down. Only ``node.runtime`` and tests choose one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import trio

from islandrun.protocol.errors import IslandRunError

#: Gossip topic names. APPEND-ONLY, they are on the wire.
TOPIC_ADVERTS = "islandrun/adverts/1"
TOPIC_CONTROL = "islandrun/control/1"  # revocations, introductions
#: Topics every transport subscribes to when it starts.
TOPICS = (TOPIC_ADVERTS, TOPIC_CONTROL)

#: The node's allowlist: may gossip from this device id reach us?
IsAllowed = Callable[[str], bool]


class TransportError(IslandRunError):
    """A transport could not do what was asked."""


class PeerUnavailable(TransportError):
    """The peer cannot be reached, or its connection broke."""


class StreamClosed(TransportError):
    """The stream was closed, by us or by the peer (end of stream)."""


class MessageStream(Protocol):
    """A bidirectional stream of whole messages with one peer."""

    @property
    def peer(self) -> str:
        """Device id of the peer at the other end (authenticated)."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one whole message; raises :class:`PeerUnavailable` if broken."""
        ...

    async def receive(self) -> bytes:
        """The next whole message; :class:`StreamClosed` at end of stream."""
        ...

    async def aclose(self) -> None:
        """Close both directions; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class LinkView:
    """How this device reaches one peer right now, as its transport sees it."""

    medium: str  # "lan" or "ble"
    hops: int = 1  # radio hops to the peer (relays + 1)
    rssi_dbm: int | None = None  # signal of our first hop, where the radio reports one
    mtu: int | None = None  # bytes per write on our first hop
    rate_bps: float | None = None  # nominal rate of one hop; None: fast enough not to count


#: What a LAN transport reports for a peer it is connected to.
LAN_LINK = LinkView("lan")


def lan_link(connected: frozenset[str], peer: str) -> LinkView | None:
    """:meth:`Transport.link` of a LAN transport: :data:`LAN_LINK` if ``peer`` is connected."""
    return LAN_LINK if peer in connected else None


#: Handles one inbound stream; runs in the transport's nursery. Exceptions
#: it raises are contained by the transport (logged by type, never fatal).
StreamHandler = Callable[[MessageStream], Awaitable[None]]


class Transport(Protocol):
    """What the node needs from a network."""

    @property
    def local_id(self) -> str:
        """This device's id on this transport (= its device id)."""
        ...

    def addresses(self) -> tuple[str, ...]:
        """Where peers can reach us (multiaddrs for libp2p), for adverts."""
        ...

    def connected(self) -> frozenset[str]:
        """Device ids with a live connection now."""
        ...

    def link(self, peer: str) -> LinkView | None:
        """How a stream to ``peer`` would travel now; None if not connected."""
        ...

    async def publish(self, topic: str, data: bytes) -> None:
        """Broadcast ``data`` on ``topic`` to reachable peers (best effort)."""
        ...

    def gossip(self, topic: str) -> AsyncIterator[tuple[str, bytes]]:
        """Messages on ``topic`` from allowed others: ``(origin device id, data)``.

        One consumer per topic (a second call raises :class:`TransportError`);
        ``topic`` must be one of :data:`TOPICS`. Best effort: when the
        consumer falls behind, messages are dropped
        (memory: the oldest; libp2p 0.8.1: the newest, past 32 queued).
        """
        ...

    async def connect(self, address: str) -> str:
        """Dial ``address`` (from ``--bootstrap``, mDNS or an advert) and keep
        reconnecting to it with backoff while it is down; returns the peer's
        device id, or raises :class:`PeerUnavailable` if the first dial fails
        (the peer stays on the reconnect list)."""
        ...

    def open_stream(self, peer: str) -> AbstractAsyncContextManager[MessageStream]:
        """Open a request stream to ``peer``; closed when the block exits."""
        ...

    def serve(self, handler: StreamHandler) -> None:
        """Accept inbound request streams with ``handler`` (set once)."""
        ...


# -- helpers shared by the implementations ------------------------------------

_log = logging.getLogger(__name__)
#: An abort writes at most one small frame; don't let a dead socket hold it.
ABORT_TIMEOUT_S = 1.0


class AbortableStream(MessageStream, Protocol):
    """What an implementation's stream adds: an abort (reset) of both directions."""

    @property
    def peer_finished(self) -> bool:
        """Whether :meth:`receive` has reported the peer's graceful end."""
        ...

    async def abort(self) -> None:
        """Reset the stream: the peer's next send or receive raises PeerUnavailable.

        Never raises; runs shielded (it is called while a cancellation unwinds).
        """
        ...


class ChannelFeed:
    """A gossip feed reading a trio memory channel; ends when the channel closes."""

    def __init__(self, channel: trio.MemoryReceiveChannel[tuple[str, bytes]]) -> None:
        self._channel = channel

    def __aiter__(self) -> ChannelFeed:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        try:
            return await self._channel.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None


def check_topic(topic: str, topics: tuple[str, ...] = TOPICS) -> None:
    """Refuse a gossip topic the transport does not carry (:data:`TOPICS` by default)."""
    if topic not in topics:
        raise TransportError(f"unknown gossip topic {topic!r}; expected one of {topics}")


def claim_feed(taken: set[str], topic: str, topics: tuple[str, ...] = TOPICS) -> None:
    """Give ``topic``'s gossip feed its one consumer (see :meth:`Transport.gossip`).

    ``taken`` is the transport's set of topics already consumed; a second
    claim, or an unknown topic, raises :class:`TransportError`.
    """
    check_topic(topic, topics)
    if topic in taken:
        raise TransportError(f"gossip on {topic!r} already has a consumer")
    taken.add(topic)


def claim_handler(current: StreamHandler | None, handler: StreamHandler) -> StreamHandler:
    """The handler :meth:`Transport.serve` keeps: ``handler``, unless one is already set."""
    if current is not None:
        raise TransportError("a stream handler is already set")
    return handler


def check_allowed(is_allowed: IsAllowed, device_id: str) -> bool:
    """Ask the node's allowlist; a callback that raises means "no", never a crash."""
    try:
        return bool(is_allowed(device_id))
    except Exception as exc:
        _log.warning(
            "allowlist callback raised %s; treating the sender as not allowed", type(exc).__name__
        )
        return False


@asynccontextmanager
async def closing_stream(
    stream: AbortableStream, *, client: bool
) -> AsyncIterator[AbortableStream]:
    """Close ``stream`` when the block ends: gracefully, or abort it (see Closing)."""
    try:
        yield stream
    except BaseException:
        await _abort(stream)
        raise
    if client and not stream.peer_finished:
        await _abort(stream)
    else:
        await stream.aclose()


async def _abort(stream: AbortableStream) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(ABORT_TIMEOUT_S):
        await stream.abort()


async def run_handler(handler: StreamHandler, stream: AbortableStream) -> None:
    """Run one inbound stream's handler, containing whatever it raises."""
    try:
        async with closing_stream(stream, client=False):
            await handler(stream)
    except TransportError as exc:
        _log.debug("request stream from %s ended: %s", stream.peer[-8:], type(exc).__name__)
    except Exception as exc:
        _log.warning("request handler raised %s; stream reset", type(exc).__name__)
