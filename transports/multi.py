"""Several transports behind the one interface: LAN first, BLE as the fallback.

:class:`MultiTransport` is itself a :class:`~.base.Transport`, so the node
does not know it has two networks. Every call goes to the member
transports, in preference order:

* gossip is published on all of them and their feeds are merged; a message
  that arrives over both (same origin, same bytes) is delivered once
  (a bounded seen-set of digests);
* a request stream goes over the most preferred transport that reaches the
  peer now (``linkchoice.link_order``); if opening it fails there, the next
  one is tried, so a LAN that just went away costs one failed open, not a
  failed request;
* ``link`` reports the link of the member a stream would use;
* ``connect`` tries every member (an address only one of them understands
  fails fast on the others); ``connected`` and ``addresses`` are unions.

Lifetime: :func:`open_multi_transport` runs the merging of gossip feeds;
the member transports are opened (and closed) by the caller.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from .base import (
    ChannelFeed,
    LinkView,
    MessageStream,
    PeerUnavailable,
    StreamHandler,
    Transport,
    TransportError,
    check_topic,
    claim_feed,
)
from .ble_relay import SeenSet
from .linkchoice import link_order

_log = logging.getLogger(__name__)
#: Recent gossip digests remembered to drop the copy from the other network.
SEEN_GOSSIP = 4096


class MultiTransport:
    """Member transports in preference order, as one transport."""

    def __init__(
        self, transports: Sequence[Transport], nursery: trio.Nursery, *, gossip_buffer: int = 256
    ) -> None:
        if not transports or len({t.local_id for t in transports}) != 1:
            raise TransportError("a MultiTransport needs transports of one and the same device")
        self._transports = tuple(transports)
        self._nursery = nursery
        self._gossip_buffer = gossip_buffer
        self._feeds_taken: set[str] = set()

    @property
    def local_id(self) -> str:
        return self._transports[0].local_id

    def addresses(self) -> tuple[str, ...]:
        return tuple(a for t in self._transports for a in t.addresses())

    def connected(self) -> frozenset[str]:
        return frozenset().union(*(t.connected() for t in self._transports))

    def link(self, peer: str) -> LinkView | None:
        """The link of the first member a stream to ``peer`` would go over."""
        return next((v for t in self.route(peer) if (v := t.link(peer)) is not None), None)

    def route(self, peer: str) -> tuple[Transport, ...]:
        """The member transports a stream to ``peer`` would try, in order."""
        order = link_order(peer, [t.connected() for t in self._transports])
        return tuple(self._transports[i] for i in order)

    async def connect(self, address: str) -> str:
        for transport in self._transports:
            try:
                return await transport.connect(address)
            except TransportError:
                continue
        raise PeerUnavailable(f"no transport can reach {address[:64]!r}")

    async def publish(self, topic: str, data: bytes) -> None:
        check_topic(topic)
        sent = 0
        for transport in self._transports:
            try:
                await transport.publish(topic, data)
                sent += 1
            except TransportError as exc:
                _log.debug("publishing on one transport failed: %s", type(exc).__name__)
        if not sent:
            raise TransportError("gossip could not be published on any transport")

    def gossip(self, topic: str) -> AsyncIterator[tuple[str, bytes]]:
        claim_feed(self._feeds_taken, topic)
        feeds = [t.gossip(topic) for t in self._transports]
        send, receive = trio.open_memory_channel[tuple[str, bytes]](self._gossip_buffer)
        seen = SeenSet(SEEN_GOSSIP)
        for feed in feeds:
            self._nursery.start_soon(_pump, feed, send.clone(), seen)
        send.close()
        return ChannelFeed(receive)

    @asynccontextmanager
    async def open_stream(self, peer: str) -> AsyncIterator[MessageStream]:
        async with AsyncExitStack() as stack:
            last: PeerUnavailable | None = None
            for transport in self.route(peer):
                try:
                    stream = await stack.enter_async_context(transport.open_stream(peer))
                except PeerUnavailable as exc:
                    last = exc
                    continue
                yield stream
                return
            raise PeerUnavailable(f"no transport reaches {peer[-8:]}") from last

    def serve(self, handler: StreamHandler) -> None:
        for transport in self._transports:
            transport.serve(handler)


async def _pump(
    feed: AsyncIterator[tuple[str, bytes]],
    send: trio.MemorySendChannel[tuple[str, bytes]],
    seen: SeenSet,
) -> None:
    async with send:
        async for origin, data in feed:
            digest = hashlib.blake2b(origin.encode() + b"\0" + data, digest_size=16).digest()
            if seen.add(digest):
                try:
                    send.send_nowait((origin, data))
                except trio.WouldBlock:
                    _log.debug("merged gossip feed full; message dropped")


@asynccontextmanager
async def open_multi_transport(transports: Sequence[Transport]) -> AsyncIterator[MultiTransport]:
    """Combine ``transports`` (most preferred first) for the duration of the block."""
    async with trio.open_nursery() as nursery:
        yield MultiTransport(transports, nursery)
        nursery.cancel_scope.cancel()
