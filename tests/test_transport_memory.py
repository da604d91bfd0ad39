"""The in-memory transport: the shared contract, then its fault injection under MockClock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing

from islandrun.transports.base import TOPIC_ADVERTS, MessageStream, PeerUnavailable, StreamClosed
from islandrun.transports.memory import Link, MemoryNetwork, MemoryTransport

from .transport_contract import (
    Cluster,
    OpenCluster,
    Policy,
    TransportContract,
    allow_all,
    chunk_handler,
    collect,
    echo_handler,
    policy_for,
    run_cluster,
)


@asynccontextmanager
async def memory_cluster(
    n: int, policy: Policy, network: MemoryNetwork | None = None
) -> AsyncIterator[Cluster]:
    net = network or MemoryNetwork(rng=random.Random(7))
    ids = [f"device-{i}" for i in range(n)]
    opens = [partial(net.node, ids[i], is_allowed=policy_for(i, ids, policy)) for i in range(n)]

    async def kill(index: int) -> None:
        net.crash(ids[index])
        await trio.lowlevel.checkpoint()

    async with run_cluster(opens) as (nodes, _):
        yield Cluster(nodes, kill)


class TestMemoryContract(TransportContract):
    @pytest.fixture
    def open_cluster(self) -> OpenCluster:
        return memory_cluster


# -- fault injection, in virtual time ------------------------------------------


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def network(**links: Link) -> MemoryNetwork:
    return MemoryNetwork(rng=random.Random(3), default_link=links.get("default", Link()))


def nodes_of(c: Cluster) -> list[MemoryTransport]:
    return [n for n in c.nodes if isinstance(n, MemoryTransport)]


async def test_latency_delays_gossip_and_stream_messages_exactly(
    clock: trio.testing.MockClock,
) -> None:
    net = network(default=Link(latency=0.25))
    async with memory_cluster(2, allow_all, net) as c:
        a, b = nodes_of(c)
        b.serve(echo_handler)
        feed = b.gossip(TOPIC_ADVERTS)
        start = trio.current_time()
        await a.publish(TOPIC_ADVERTS, b"advert")
        assert await feed.__anext__() == (a.local_id, b"advert")
        assert trio.current_time() - start == pytest.approx(0.25)
        async with a.open_stream(b.local_id) as stream:
            start = trio.current_time()
            await stream.send(b"ping")
            assert await stream.receive() == b"ping"
            assert trio.current_time() - start == pytest.approx(0.5)


async def test_stream_messages_pipeline_instead_of_paying_latency_each(
    clock: trio.testing.MockClock,
) -> None:
    # A buffer as large as the answer: with a small one, throughput is
    # buffer / latency (a flow-control window), tested below.
    net = MemoryNetwork(rng=random.Random(1), default_link=Link(latency=0.1), stream_buffer=500)
    async with memory_cluster(2, allow_all, net) as c:
        a, b = nodes_of(c)
        b.serve(chunk_handler(500))
        async with a.open_stream(b.local_id) as stream:
            start = trio.current_time()
            await stream.send(b"go")
            for _ in range(500):
                await stream.receive()
        assert trio.current_time() - start == pytest.approx(0.2)


async def test_loss_is_seeded_and_applies_to_gossip_only(clock: trio.testing.MockClock) -> None:
    async def run_once() -> int:
        net = network(default=Link(loss=0.5))
        async with memory_cluster(2, allow_all, net) as c:
            a, b = nodes_of(c)
            b.serve(chunk_handler(100))
            feed = b.gossip(TOPIC_ADVERTS)
            for i in range(200):
                await a.publish(TOPIC_ADVERTS, b"%d" % i)
            received = len(await collect(feed, 1.0))
            async with a.open_stream(b.local_id) as stream:
                await stream.send(b"go")
                assert len([await stream.receive() for _ in range(100)]) == 100
            return received

    first, second = await run_once(), await run_once()
    assert first == second
    assert 60 < first < 140


async def test_partition_cuts_gossip_and_new_streams_until_healed(
    clock: trio.testing.MockClock,
) -> None:
    net = network()
    async with memory_cluster(3, allow_all, net) as c:
        a, b, d = nodes_of(c)
        b.serve(echo_handler)
        feed_b = b.gossip(TOPIC_ADVERTS)
        net.partition([a.local_id], [b.local_id, d.local_id])
        assert a.connected() == frozenset()
        assert b.connected() == {d.local_id}
        await a.publish(TOPIC_ADVERTS, b"lost")
        assert await collect(feed_b, 1.0) == []
        with pytest.raises(PeerUnavailable):
            async with a.open_stream(b.local_id):
                pass
        net.heal()
        await a.publish(TOPIC_ADVERTS, b"found")
        assert await collect(feed_b, 1.0) == [(a.local_id, b"found")]


async def test_a_frozen_peer_stalls_reads_until_the_deadline_then_resumes(
    clock: trio.testing.MockClock,
) -> None:
    net = network()
    async with memory_cluster(2, allow_all, net) as c:
        a, b = nodes_of(c)
        b.serve(echo_handler)
        async with a.open_stream(b.local_id) as stream:
            net.freeze(b.local_id)
            await stream.send(b"ping")
            with pytest.raises(trio.TooSlowError):
                with trio.fail_after(5):
                    await stream.receive()
            net.thaw(b.local_id)
            with trio.fail_after(1):
                assert await stream.receive() == b"ping"


async def test_a_crash_resets_streams_and_ends_the_crashed_nodes_block(
    clock: trio.testing.MockClock,
) -> None:
    net = network()
    block_ended = trio.Event()

    async def doomed(task_status: trio.TaskStatus[MemoryTransport]) -> None:
        async with net.node("doomed", is_allowed=lambda _: True) as t:
            t.serve(chunk_handler(10**6, pause=0.01))
            task_status.started(t)
            await trio.sleep_forever()
        block_ended.set()

    async with trio.open_nursery() as nursery, net.node("client", is_allowed=lambda _: True) as a:
        await nursery.start(doomed)
        async with a.open_stream("doomed") as stream:
            await stream.send(b"go")
            await stream.receive()
            net.crash("doomed")
            with pytest.raises(PeerUnavailable):
                for _ in range(100):
                    await stream.receive()
        await block_ended.wait()
        assert a.connected() == frozenset()
        with pytest.raises(PeerUnavailable):
            await a.connect("memory/doomed")


async def test_stream_buffers_are_bounded_and_apply_back_pressure(
    clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(rng=random.Random(1), stream_buffer=4)
    sent = 0

    async def producer(stream: MessageStream) -> None:
        nonlocal sent
        await stream.receive()
        for _ in range(100):
            await stream.send(b"x")
            sent += 1

    async with memory_cluster(2, allow_all, net) as c:
        a, b = nodes_of(c)
        b.serve(producer)
        async with a.open_stream(b.local_id) as stream:
            await stream.send(b"go")
            await trio.sleep(1)
            assert sent == 4
            for _ in range(100):
                await stream.receive()
            with pytest.raises(StreamClosed):
                await stream.receive()


async def test_gossip_inbox_is_bounded_and_drops_the_oldest(clock: trio.testing.MockClock) -> None:
    net = MemoryNetwork(rng=random.Random(1), gossip_buffer=3)
    async with memory_cluster(2, allow_all, net) as c:
        a, b = nodes_of(c)
        feed = b.gossip(TOPIC_ADVERTS)
        for i in range(5):
            await a.publish(TOPIC_ADVERTS, b"%d" % i)
        assert [data for _, data in await collect(feed, 1.0)] == [b"2", b"3", b"4"]


def test_link_refuses_impossible_conditions() -> None:
    with pytest.raises(ValueError):
        Link(latency=-1)
    with pytest.raises(ValueError):
        Link(loss=1.5)
