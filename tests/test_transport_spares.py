"""Spare request streams: the pure pool, then the libp2p transport using it on loopback."""

from __future__ import annotations

from dataclasses import replace

import trio

from islandrun.transports.base import MessageStream
from islandrun.transports.spares import SparePool

from .test_transport_libp2p import LOOPBACK, libp2p_cluster
from .transport_contract import DEADLINE_S, allow_all


def test_a_fresh_spare_is_taken_once() -> None:
    pool: SparePool[str] = SparePool(max_age=10.0)
    assert pool.want("peer")
    pool.put("peer", "s1", now=100.0)
    assert pool.take("peer", now=109.0) == ("s1", True)
    assert pool.take("peer", now=109.0) is None


def test_a_spare_at_max_age_is_handed_back_stale() -> None:
    pool: SparePool[str] = SparePool(max_age=10.0)
    pool.want("peer")
    pool.put("peer", "s1", now=100.0)
    assert pool.take("peer", now=110.0) == ("s1", False)


def test_one_spare_per_peer_is_opened_at_a_time() -> None:
    pool: SparePool[str] = SparePool(max_age=10.0)
    assert pool.want("a")
    assert not pool.want("a")  # being opened
    assert pool.want("b")
    pool.put("a", "sa", now=0.0)
    assert not pool.want("a")  # parked
    pool.failed("b")
    assert pool.want("b")  # a failure allows a later try


def test_expired_spares_are_removed_and_drain_empties_the_pool() -> None:
    pool: SparePool[str] = SparePool(max_age=10.0)
    for peer, opened in (("old", 0.0), ("new", 5.0)):
        pool.want(peer)
        pool.put(peer, f"s-{peer}", now=opened)
    assert pool.expired(now=12.0) == [("old", "s-old")]
    assert pool.expired(now=12.0) == []
    assert pool.drain() == ["s-new"]
    assert pool.take("new", now=12.0) is None


def counting_handler(served: list[bytes]):  # type: ignore[no-untyped-def]
    async def handler(stream: MessageStream) -> None:
        request = await stream.receive()
        served.append(request)
        await stream.send(request)

    return handler


async def ask(a, peer: str, text: bytes) -> bytes:  # type: ignore[no-untyped-def]
    with trio.fail_after(DEADLINE_S):
        async with a.open_stream(peer) as stream:
            await stream.send(text)
            return await stream.receive()


async def wait_for(condition, limit: float = DEADLINE_S) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(limit):
        while not condition():
            await trio.sleep(0.01)


def count_stream_opens(transport) -> list[object]:  # type: ignore[no-untyped-def]
    opened: list[object] = []
    new_stream = transport._host.new_stream

    async def counting_new_stream(*args):  # type: ignore[no-untyped-def]
        opened.append(args)
        return await new_stream(*args)

    transport._host.new_stream = counting_new_stream
    return opened


async def test_the_next_request_uses_the_stream_opened_after_the_last() -> None:
    served: list[bytes] = []
    async with libp2p_cluster(2, allow_all) as c:
        a, b = c.nodes
        b.serve(counting_handler(served))
        opened = count_stream_opens(a)
        assert await ask(a, b.local_id, b"one") == b"one"
        await wait_for(lambda: len(opened) == 2)  # the request's stream, then a spare
        assert await ask(a, b.local_id, b"two") == b"two"
        await wait_for(lambda: len(opened) == 3)  # the spare was used; a new one opened
        await trio.sleep(0.2)
        assert len(opened) == 3
        assert served == [b"one", b"two"]  # an idle spare never reaches the handler


async def test_spares_are_renewed_before_the_island_drops_them() -> None:
    served: list[bytes] = []
    quick = replace(LOOPBACK, spare_max_age=0.2, spare_idle_timeout=0.4, reconnect_tick=0.05)
    async with libp2p_cluster(2, allow_all, quick) as c:
        a, b = c.nodes
        b.serve(counting_handler(served))
        opened = count_stream_opens(a)
        for i in range(3):
            assert await ask(a, b.local_id, b"%d" % i) == b"%d" % i
            before = len(opened)
            await trio.sleep(0.5)  # longer than both limits: spares came and went
            assert len(opened) >= before + 2  # renewed every ~0.2 s
        assert served == [b"0", b"1", b"2"]
