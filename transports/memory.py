"""An in-process network: the :class:`~.base.Transport` of tests and the simulator.

A :class:`MemoryNetwork` is a hub that many nodes join
(``async with network.node(device_id, is_allowed=...) as transport``). It
moves whole messages between them with the faults a real mesh has, all of
them controlled by the test:

* **latency** per link (seconds, one way), modelled as a delivery time
  stamped on each message, so messages pipeline as on a real link;
* **loss** per link, a probability drawn from the network's seeded
  ``random.Random`` -- applied to gossip only (request streams are TCP-like:
  reliable, ordered);
* **partitions** (:meth:`MemoryNetwork.partition`): nodes in different groups
  cannot reach each other; streams across the cut stall until healed;
* **crash** (``kill -9``): the node's handlers are cancelled and its streams
  reset, so its peers see :class:`~.base.PeerUnavailable`;
* **freeze** (``SIGSTOP``): nothing reaches or leaves the node until
  :meth:`MemoryNetwork.thaw`; its peers just wait, so only their read
  deadlines notice -- exactly the case the node's deadlines must handle.

Connectivity is implicit: every live node that is not cut off is connected
(:meth:`MemoryTransport.connected`); ``connect`` only checks reachability.
Gossip goes directly to each reachable node (a full mesh, no relaying).

Everything is pure trio -- no sockets, no threads -- and reads only
``trio.current_time()``, so it runs under ``trio.testing.MockClock``. Every
buffer is bounded: gossip inboxes drop their oldest message when full,
stream buffers block the sender (back-pressure, like a flow-control window).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from islandrun.protocol.errors import LocalProtocolError
from islandrun.protocol.framing import MAX_FRAME_SIZE

from .base import (
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

ADDRESS_PREFIX = "memory/"


@dataclass(frozen=True, slots=True)
class Link:
    """Conditions on the link between two nodes (the same both ways)."""

    latency: float = 0.0  # seconds, one way
    loss: float = 0.0  # probability that one gossip message is lost, 0..1

    def __post_init__(self) -> None:
        if self.latency < 0 or not math.isfinite(self.latency):
            raise ValueError("latency must be a finite number of seconds >= 0")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError("loss must be a probability between 0 and 1")


class _GossipInbox:
    """One node's bounded queue of gossip on one topic, ordered by delivery time."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # Invariant: a heap of (deliver_at, arrival number, origin, data).
        self._heap: list[tuple[float, int, str, bytes]] = []
        self._arrivals = itertools.count()
        self._wakeup = trio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, deliver_at: float, origin: str, data: bytes) -> None:
        if self._closed:
            return
        if len(self._heap) >= self._capacity:
            heapq.heappop(self._heap)
            self.dropped += 1
        heapq.heappush(self._heap, (deliver_at, next(self._arrivals), origin, data))
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def get(self) -> tuple[str, bytes]:
        """The next due message; :class:`StopAsyncIteration` once closed."""
        while not self._closed:
            if self._heap and self._heap[0][0] <= trio.current_time():
                _, _, origin, data = heapq.heappop(self._heap)
                return origin, data
            due = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(due):
                await self._wakeup.wait()
            if self._wakeup.is_set():
                self._wakeup = trio.Event()
        raise StopAsyncIteration


class _GossipFeed:
    """The async iterator :meth:`MemoryTransport.gossip` returns."""

    def __init__(self, network: MemoryNetwork, local: str, inbox: _GossipInbox) -> None:
        self._network = network
        self._local = local
        self._inbox = inbox

    def __aiter__(self) -> _GossipFeed:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        message = await self._inbox.get()
        await self._network.wait_reachable(self._local, self._local)
        return message


class _Pipe:
    """State both ends of one memory stream share."""

    def __init__(self) -> None:
        self.aborted = False


class MemoryStream:
    """One end of a memory request stream (a :class:`~.base.MessageStream`)."""

    def __init__(
        self,
        network: MemoryNetwork,
        local: str,
        peer: str,
        pipe: _Pipe,
        send_channel: trio.MemorySendChannel[tuple[float, bytes]],
        receive_channel: trio.MemoryReceiveChannel[tuple[float, bytes]],
    ) -> None:
        self._network = network
        self._local = local
        self._peer = peer
        self._pipe = pipe
        self._send_channel = send_channel
        self._receive_channel = receive_channel
        self._closed = False
        self.peer_finished = False

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: bytes) -> None:
        if len(message) > MAX_FRAME_SIZE:
            raise LocalProtocolError(
                f"message of {len(message)} bytes exceeds the {MAX_FRAME_SIZE}-byte limit"
            )
        self._raise_if_unusable()
        await self._network.wait_reachable(self._local, self._local)
        deliver_at = trio.current_time() + self._network.link(self._local, self._peer).latency
        try:
            await self._send_channel.send((deliver_at, bytes(message)))
        except trio.BrokenResourceError:
            self._raise_if_unusable()
            raise StreamClosed("the peer closed this stream") from None
        except trio.ClosedResourceError:
            self._raise_if_unusable()
            raise

    async def receive(self) -> bytes:
        self._raise_if_unusable()
        try:
            deliver_at, message = await self._receive_channel.receive()
        except trio.EndOfChannel:
            self._raise_if_unusable()
            self.peer_finished = True
            raise StreamClosed("the peer finished this stream") from None
        except trio.ClosedResourceError:
            self._raise_if_unusable()
            raise
        await trio.sleep_until(deliver_at)
        await self._network.wait_reachable(self._local, self._peer)
        return message

    async def aclose(self) -> None:
        self._close_channels()
        await trio.lowlevel.checkpoint()

    async def abort(self) -> None:
        self.mark_aborted()
        await trio.lowlevel.checkpoint()

    def mark_aborted(self) -> None:
        """Reset without waiting (used when a node crashes)."""
        self._pipe.aborted = True
        self._close_channels()

    def _close_channels(self) -> None:
        self._closed = True
        self._send_channel.close()
        self._receive_channel.close()
        self._network.forget_stream(self._local, self)

    def _raise_if_unusable(self) -> None:
        if self._pipe.aborted:
            raise PeerUnavailable("the stream was reset (the peer went away or gave up)")
        if self._closed:
            raise StreamClosed("this stream is closed")


class MemoryTransport:
    """One node's view of a :class:`MemoryNetwork` (a :class:`~.base.Transport`)."""

    def __init__(
        self,
        network: MemoryNetwork,
        device_id: str,
        is_allowed: IsAllowed,
        nursery: trio.Nursery,
    ) -> None:
        self._network = network
        self._id = device_id
        self._is_allowed = is_allowed
        self._nursery = nursery
        self._handler: StreamHandler | None = None
        self._inboxes = {topic: _GossipInbox(network.gossip_buffer) for topic in TOPICS}
        self._feeds_taken: set[str] = set()
        self.alive = True

    @property
    def local_id(self) -> str:
        return self._id

    def addresses(self) -> tuple[str, ...]:
        return (ADDRESS_PREFIX + self._id,)

    def connected(self) -> frozenset[str]:
        return frozenset(
            other for other in self._network.live_ids() if self._network.can_reach(self._id, other)
        ) - {self._id}

    def link(self, peer: str) -> LinkView | None:
        return lan_link(self.connected(), peer)

    async def connect(self, address: str) -> str:
        self._raise_if_down()
        peer = address.removeprefix(ADDRESS_PREFIX)
        await trio.lowlevel.checkpoint()
        if not address.startswith(ADDRESS_PREFIX) or not self._network.can_reach(self._id, peer):
            raise PeerUnavailable(f"cannot reach {address!r} on the memory network")
        return peer

    async def publish(self, topic: str, data: bytes) -> None:
        self._raise_if_down()
        check_topic(topic)
        await self._network.wait_reachable(self._id, self._id)
        self._network.deliver_gossip(self._id, topic, bytes(data))
        await trio.lowlevel.checkpoint()

    def gossip(self, topic: str) -> _GossipFeed:
        claim_feed(self._feeds_taken, topic)
        return _GossipFeed(self._network, self._id, self._inboxes[topic])

    @asynccontextmanager
    async def open_stream(self, peer: str) -> AsyncIterator[AbortableStream]:
        self._raise_if_down()
        stream = await self._network.open_pipe(self._id, peer)
        async with closing_stream(stream, client=True) as opened:
            yield opened

    def serve(self, handler: StreamHandler) -> None:
        self._handler = claim_handler(self._handler, handler)

    # -- used by the network ---------------------------------------------

    def accept(self, origin: str, topic: str, deliver_at: float, data: bytes) -> None:
        if check_allowed(self._is_allowed, origin):
            self._inboxes[topic].put(deliver_at, origin, data)

    def check_serving(self) -> StreamHandler:
        if self._handler is None:
            raise PeerUnavailable(f"device {self._id[-8:]} does not accept request streams")
        return self._handler

    def start_handler(self, stream: MemoryStream) -> None:
        self._nursery.start_soon(run_handler, self.check_serving(), stream)

    def stop(self) -> None:
        self.alive = False
        for inbox in self._inboxes.values():
            inbox.close()

    def _raise_if_down(self) -> None:
        if not self.alive:
            raise TransportError("this node has left the memory network")


class MemoryNetwork:
    """The hub: who is on the network, how links behave, which faults are on."""

    def __init__(
        self,
        *,
        rng: random.Random,
        default_link: Link = Link(),
        stream_buffer: int = 64,
        gossip_buffer: int = 256,
    ) -> None:
        self._rng = rng
        self._default_link = default_link
        self._links: dict[frozenset[str], Link] = {}
        self.stream_buffer = stream_buffer
        self.gossip_buffer = gossip_buffer
        self._nodes: dict[str, MemoryTransport] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._streams: dict[str, set[MemoryStream]] = {}
        self._group: dict[str, int] = {}
        self._frozen: set[str] = set()
        # Set (and replaced) whenever reachability may have changed.
        self._changed = trio.Event()

    # -- configuration and faults ------------------------------------------

    def set_link(self, a: str, b: str, link: Link) -> None:
        """Conditions between ``a`` and ``b`` (both directions)."""
        self._links[frozenset((a, b))] = link

    def link(self, a: str, b: str) -> Link:
        return self._links.get(frozenset((a, b)), self._default_link)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut the network: only nodes in the same group reach each other.

        Nodes not named in any group form one more group together.
        """
        self._group = {node: index for index, group in enumerate(groups) for node in group}
        self._notify()

    def heal(self) -> None:
        """Remove every partition."""
        self._group = {}
        self._notify()

    def freeze(self, device_id: str) -> None:
        """Stop everything to and from ``device_id`` (like ``SIGSTOP``)."""
        self._frozen.add(device_id)
        self._notify()

    def thaw(self, device_id: str) -> None:
        """Undo :meth:`freeze` (like ``SIGCONT``): held messages flow again."""
        self._frozen.discard(device_id)
        self._notify()

    def crash(self, device_id: str) -> None:
        """Kill ``device_id`` (like ``kill -9``): streams reset, and its
        ``node()`` block -- handlers and all -- cancelled."""
        node = self._nodes.get(device_id)
        if node is not None:
            self._leave(device_id, node)

    # -- queries ------------------------------------------------------------

    def live_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._nodes))

    def can_reach(self, a: str, b: str) -> bool:
        return a in self._nodes and b in self._nodes and self._group.get(a) == self._group.get(b)

    async def wait_reachable(self, a: str, b: str) -> None:
        """Wait until ``a`` and ``b`` are both thawed and on the same side of any cut."""
        while True:
            changed = self._changed
            live = a in self._nodes and b in self._nodes
            if not live or (self.can_reach(a, b) and not self._frozen & {a, b}):
                return
            await changed.wait()

    # -- joining --------------------------------------------------------------

    @asynccontextmanager
    async def node(
        self, device_id: str, *, is_allowed: IsAllowed
    ) -> AsyncIterator[MemoryTransport]:
        """Join the network as ``device_id`` for the duration of the block."""
        if device_id in self._nodes:
            raise TransportError(f"device {device_id[-8:]} is already on this memory network")
        # The block runs inside the node's nursery, so crash() cancels it too.
        async with trio.open_nursery() as nursery:
            transport = MemoryTransport(self, device_id, is_allowed, nursery)
            self._nodes[device_id] = transport
            self._scopes[device_id] = nursery.cancel_scope
            self._streams[device_id] = set()
            self._notify()
            try:
                yield transport
            finally:
                self._leave(device_id, transport)

    def _leave(self, device_id: str, transport: MemoryTransport) -> None:
        if self._nodes.get(device_id) is not transport:
            return  # crashed already
        del self._nodes[device_id]
        transport.stop()
        self._scopes.pop(device_id).cancel()
        for stream in list(self._streams.pop(device_id, ())):
            stream.mark_aborted()
        self._notify()

    # -- used by transports ---------------------------------------------------

    def deliver_gossip(self, origin: str, topic: str, data: bytes) -> None:
        now = trio.current_time()
        for other in self.live_ids():
            if other == origin or not self.can_reach(origin, other):
                continue
            link = self.link(origin, other)
            if link.loss and self._rng.random() < link.loss:
                continue
            self._nodes[other].accept(origin, topic, now + link.latency, data)

    async def open_pipe(self, local: str, peer: str) -> MemoryStream:
        if peer not in self._nodes or not self.can_reach(local, peer):
            raise PeerUnavailable(f"device {peer[-8:]} is not reachable")
        await self.wait_reachable(local, peer)  # a frozen peer: the dial hangs
        if peer not in self._nodes:
            raise PeerUnavailable(f"device {peer[-8:]} went away")
        self._nodes[peer].check_serving()
        pipe = _Pipe()
        to_peer_send, to_peer_receive = trio.open_memory_channel[tuple[float, bytes]](
            self.stream_buffer
        )
        to_local_send, to_local_receive = trio.open_memory_channel[tuple[float, bytes]](
            self.stream_buffer
        )
        ours = MemoryStream(self, local, peer, pipe, to_peer_send, to_local_receive)
        theirs = MemoryStream(self, peer, local, pipe, to_local_send, to_peer_receive)
        self._nodes[peer].start_handler(theirs)
        self._streams[local].add(ours)
        self._streams[peer].add(theirs)
        return ours

    def forget_stream(self, device_id: str, stream: MemoryStream) -> None:
        self._streams.get(device_id, set()).discard(stream)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
