"""The contract every Transport must meet, run against each implementation.

A test module subclasses :class:`TransportContract` and provides the
``open_cluster`` fixture: a factory ``open_cluster(n, policy)`` returning an
async context manager that yields a :class:`Cluster` of ``n`` running,
mutually reachable transports. ``policy(receiver, sender)`` (node indexes,
``-1`` for an unknown id) is each node's ``is_allowed``; it may raise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
import trio

from islandrun.transports.base import (
    TOPIC_ADVERTS,
    TOPIC_CONTROL,
    IsAllowed,
    MessageStream,
    PeerUnavailable,
    StreamClosed,
    Transport,
    TransportError,
)

Policy = Callable[[int, int], bool]
#: Generous bound for anything that should take milliseconds (slow CI).
DEADLINE_S = 10.0


def allow_all(receiver: int, sender: int) -> bool:
    return True


@dataclass
class Cluster:
    nodes: list[Transport]
    kill: Callable[[int], Awaitable[None]]


OpenCluster = Callable[[int, Policy], AbstractAsyncContextManager[Cluster]]


def policy_for(index: int, ids: list[str], policy: Policy) -> IsAllowed:
    def is_allowed(device_id: str) -> bool:
        return policy(index, ids.index(device_id) if device_id in ids else -1)

    return is_allowed


@asynccontextmanager
async def run_cluster(
    opens: list[Callable[[], AbstractAsyncContextManager[Transport]]],
) -> AsyncIterator[tuple[list[Transport], list[trio.CancelScope]]]:
    """Run each transport in its own task, so one can die alone."""

    async def hold(
        open_one: Callable[[], AbstractAsyncContextManager[Transport]],
        task_status: trio.TaskStatus[tuple[trio.CancelScope, Transport]],
    ) -> None:
        with trio.CancelScope() as scope:
            async with open_one() as transport:
                task_status.started((scope, transport))
                await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        started = [await nursery.start(hold, open_one) for open_one in opens]
        yield [t for _, t in started], [s for s, _ in started]
        nursery.cancel_scope.cancel()


async def receive_from(
    feed: AsyncIterator[tuple[str, bytes]], origin: str, data: bytes
) -> list[tuple[str, bytes]]:
    """Read ``feed`` until ``(origin, data)`` arrives; returns all seen before it."""
    seen: list[tuple[str, bytes]] = []
    for _ in range(10_000):
        message = await feed.__anext__()
        if message == (origin, data):
            return seen
        seen.append(message)
    raise AssertionError("message never arrived")


async def collect(feed: AsyncIterator[tuple[str, bytes]], seconds: float) -> list:
    """Everything ``feed`` yields within ``seconds``."""
    seen: list[tuple[str, bytes]] = []
    with trio.move_on_after(seconds):
        for _ in range(10_000):
            seen.append(await feed.__anext__())
    return seen


async def publish_until(publisher: Transport, topic: str, data: bytes, arrived: trio.Event) -> None:
    """Publish every 100 ms until ``arrived`` (gossip meshes form over heartbeats)."""
    for _ in range(int(DEADLINE_S / 0.1)):
        await publisher.publish(topic, data)
        with trio.move_on_after(0.1):
            await arrived.wait()
        if arrived.is_set():
            return


async def deliver(publisher: Transport, topic: str, data: bytes, feed: AsyncIterator) -> list:
    """Publish ``data`` until it comes out of ``feed``; the other messages seen on the way."""
    arrived = trio.Event()
    seen: list[tuple[str, bytes]] = []
    with trio.fail_after(DEADLINE_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_until, publisher, topic, data, arrived)
            seen = await receive_from(feed, publisher.local_id, data)
            arrived.set()
    return seen


async def echo_handler(stream: MessageStream) -> None:
    """Answer each message with itself, until the peer finishes."""
    for _ in range(100_000):
        try:
            message = await stream.receive()
        except StreamClosed:
            return
        await stream.send(message)


def chunk_handler(count: int, pause: float = 0.0) -> Callable[[MessageStream], Awaitable[None]]:
    """Read one request, answer with ``count`` numbered chunks, then finish."""

    async def handler(stream: MessageStream) -> None:
        await stream.receive()
        for i in range(count):
            await stream.send(b"chunk %d" % i)
            if pause:
                await trio.sleep(pause)

    return handler


class TransportContract:
    """Behaviour shared by every transport; subclasses supply ``open_cluster``."""

    async def test_connect_returns_the_peers_device_id(self, open_cluster: OpenCluster) -> None:
        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            with trio.fail_after(DEADLINE_S):
                assert await a.connect(b.addresses()[0]) == b.local_id
            assert b.local_id in a.connected()
            assert a.local_id != b.local_id

    async def test_gossip_reaches_every_allowed_peer(self, open_cluster: OpenCluster) -> None:
        async with open_cluster(3, allow_all) as c:
            a, b, d = c.nodes
            feed_b, feed_d = b.gossip(TOPIC_ADVERTS), d.gossip(TOPIC_ADVERTS)
            await deliver(a, TOPIC_ADVERTS, b"advert-a", feed_b)
            with trio.fail_after(DEADLINE_S):
                await receive_from(feed_d, a.local_id, b"advert-a")

    async def test_gossip_is_per_topic_and_not_echoed_to_sender(
        self, open_cluster: OpenCluster
    ) -> None:
        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            control_a, adverts_b = a.gossip(TOPIC_CONTROL), b.gossip(TOPIC_ADVERTS)
            control_b = b.gossip(TOPIC_CONTROL)
            await deliver(a, TOPIC_CONTROL, b"revoke", control_b)
            assert await collect(adverts_b, 0.3) == []  # not on the other topic
            assert await collect(control_a, 0.3) == []  # not echoed to the sender

    async def test_gossip_from_a_non_allowed_peer_never_arrives(
        self, open_cluster: OpenCluster
    ) -> None:
        def b_refuses_c(receiver: int, sender: int) -> bool:
            return not (receiver == 1 and sender == 2)

        async with open_cluster(3, b_refuses_c) as c:
            a, b, outsider = c.nodes
            feed_a, feed_b = a.gossip(TOPIC_ADVERTS), b.gossip(TOPIC_ADVERTS)
            # The outsider's gossip is on the wire (a, who allows it, gets it) ...
            await deliver(outsider, TOPIC_ADVERTS, b"forged", feed_a)
            for _ in range(5):
                await outsider.publish(TOPIC_ADVERTS, b"forged")
            # ... yet b, which refuses it, only ever sees a's.
            seen = await deliver(a, TOPIC_ADVERTS, b"genuine", feed_b)
            seen += await collect(feed_b, 0.5)
            assert all(origin != outsider.local_id for origin, _ in seen)

    async def test_an_allowlist_that_raises_drops_the_message_not_the_node(
        self, open_cluster: OpenCluster
    ) -> None:
        def raises_for_c(receiver: int, sender: int) -> bool:
            if sender == 2:
                raise RuntimeError("allowlist bug")
            return True

        async with open_cluster(3, raises_for_c) as c:
            a, b, d = c.nodes
            b.serve(echo_handler)
            feed_b = b.gossip(TOPIC_ADVERTS)
            for _ in range(20):
                await d.publish(TOPIC_ADVERTS, b"from-d")
                await trio.sleep(0.02)
            seen = await deliver(a, TOPIC_ADVERTS, b"from-a", feed_b)
            assert all(origin != d.local_id for origin, _ in seen)
            with trio.fail_after(DEADLINE_S):  # b still serves
                async with a.open_stream(b.local_id) as stream:
                    await stream.send(b"ping")
                    assert await stream.receive() == b"ping"

    async def test_gossip_has_one_consumer_per_known_topic(self, open_cluster: OpenCluster) -> None:
        async with open_cluster(1, allow_all) as c:
            (a,) = c.nodes
            a.gossip(TOPIC_ADVERTS)
            with pytest.raises(TransportError):
                a.gossip(TOPIC_ADVERTS)
            with pytest.raises(TransportError):
                a.gossip("no/such/topic")
            with pytest.raises(TransportError):
                await a.publish("no/such/topic", b"x")

    async def test_request_stream_round_trip_with_many_chunks(
        self, open_cluster: OpenCluster
    ) -> None:
        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            b.serve(chunk_handler(2000))
            with trio.fail_after(DEADLINE_S):
                async with a.open_stream(b.local_id) as stream:
                    assert stream.peer == b.local_id
                    await stream.send(b"request" * 200)
                    chunks = [await stream.receive() for _ in range(2000)]
                    with pytest.raises(StreamClosed):
                        await stream.receive()
            assert chunks == [b"chunk %d" % i for i in range(2000)]

    async def test_handler_sees_the_authenticated_peer_and_large_messages(
        self, open_cluster: OpenCluster
    ) -> None:
        peers: list[str] = []

        async def handler(stream: MessageStream) -> None:
            peers.append(stream.peer)
            await echo_handler(stream)

        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            b.serve(handler)
            big = bytes(range(256)) * 8192  # 2 MiB: many reads, one message
            with trio.fail_after(DEADLINE_S):
                async with a.open_stream(b.local_id) as stream:
                    await stream.send(big)
                    assert await stream.receive() == big
            assert peers == [a.local_id]

    async def test_a_peer_dying_mid_stream_is_noticed_within_the_deadline(
        self, open_cluster: OpenCluster
    ) -> None:
        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            b.serve(chunk_handler(1_000_000, pause=0.005))
            async with a.open_stream(b.local_id) as stream:
                await stream.send(b"go")
                with trio.fail_after(DEADLINE_S):
                    await stream.receive()
                await c.kill(1)
                with trio.fail_after(5), pytest.raises((PeerUnavailable, StreamClosed)):
                    for _ in range(1_000_000):
                        await stream.receive()

    async def test_a_client_going_away_stops_the_remote_handler(
        self, open_cluster: OpenCluster
    ) -> None:
        handler_ended = trio.Event()
        outcome: list[type[BaseException]] = []

        async def endless(stream: MessageStream) -> None:
            try:
                await stream.receive()
                for _ in range(1_000_000):
                    await stream.send(b"token")
                    await trio.sleep(0.001)
            except BaseException as exc:
                outcome.append(type(exc))
                raise
            finally:
                handler_ended.set()

        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            b.serve(endless)
            with trio.move_on_after(DEADLINE_S) as scope:
                async with a.open_stream(b.local_id) as stream:
                    await stream.send(b"go")
                    await stream.receive()
                    scope.cancel()  # the client gives up mid-answer
            with trio.fail_after(5):
                await handler_ended.wait()
            assert outcome == [PeerUnavailable], outcome

    async def test_opening_a_stream_to_a_node_that_does_not_serve_fails_cleanly(
        self, open_cluster: OpenCluster
    ) -> None:
        async with open_cluster(2, allow_all) as c:
            a, b = c.nodes
            with trio.fail_after(DEADLINE_S), pytest.raises(PeerUnavailable):
                async with a.open_stream(b.local_id):
                    pass
