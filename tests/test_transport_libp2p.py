"""The libp2p transport on loopback: the shared contract, then what only real sockets show."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.peer.id import ID
from nacl.signing import SigningKey

from islandrun.protocol.errors import FrameError
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.transports.base import (
    TOPIC_ADVERTS,
    MessageStream,
    PeerUnavailable,
    StreamClosed,
    TransportError,
)
from islandrun.transports.libp2p import (
    Libp2pConfig,
    Libp2pStream,
    Libp2pTransport,
    backoff_delay,
    key_pair_from_signing_key,
    open_libp2p_transport,
)

from .transport_contract import (
    DEADLINE_S,
    Cluster,
    OpenCluster,
    Policy,
    TransportContract,
    allow_all,
    deliver,
    echo_handler,
    policy_for,
    run_cluster,
)

LOOPBACK = Libp2pConfig(listen=("/ip4/127.0.0.1/tcp/0",))
REPO = Path(__file__).resolve().parent.parent


def key(seed: int) -> SigningKey:
    return SigningKey(bytes([seed]) * 32)


def device_id(k: SigningKey) -> str:
    return device_id_from_public_key(bytes(k.verify_key))


@asynccontextmanager
async def libp2p_cluster(
    n: int, policy: Policy, config: Libp2pConfig = LOOPBACK
) -> AsyncIterator[Cluster]:
    keys = [key(i + 1) for i in range(n)]
    ids = [device_id(k) for k in keys]
    opens = [
        partial(
            open_libp2p_transport,
            keys[i],
            policy_for(i, ids, policy),
            config,
            rng=random.Random(i),
        )
        for i in range(n)
    ]
    async with run_cluster(opens) as (nodes, scopes):
        with trio.fail_after(DEADLINE_S):
            for i in range(n):
                for j in range(i + 1, n):
                    await nodes[i].connect(nodes[j].addresses()[0])

        async def kill(index: int) -> None:
            scopes[index].cancel()
            await trio.sleep(0)

        yield Cluster(nodes, kill)


class TestLibp2pContract(TransportContract):
    @pytest.fixture
    def open_cluster(self) -> OpenCluster:
        return libp2p_cluster


def tcp_port(transport: Libp2pTransport) -> int:
    return int(multiaddr.Multiaddr(transport.addresses()[0]).value_for_protocol("tcp"))


async def assert_still_serving(a: Libp2pTransport, b: Libp2pTransport, feed: object) -> None:
    with trio.fail_after(DEADLINE_S):
        async with a.open_stream(b.local_id) as stream:
            await stream.send(b"still there?")
            assert await stream.receive() == b"still there?"
    await deliver(a, TOPIC_ADVERTS, os.urandom(8), feed)  # type: ignore[arg-type]


def test_the_libp2p_peer_id_is_the_device_id() -> None:
    k = key(9)
    pair = key_pair_from_signing_key(k)
    assert ID.from_pubkey(pair.public_key).to_base58() == device_id(k)


async def test_a_running_host_uses_the_device_key() -> None:
    k = key(5)
    async with open_libp2p_transport(k, lambda _: True, LOOPBACK, rng=random.Random(0)) as t:
        assert t.local_id == device_id(k)
        assert all(a.startswith("/ip4/127.0.0.1/tcp/") for a in t.addresses())
        assert all(a.endswith("/p2p/" + device_id(k)) for a in t.addresses())


async def test_garbage_on_the_listening_port_leaves_the_host_serving() -> None:
    rng = random.Random(11)
    garbage = [
        bytes(rng.randrange(256) for _ in range(4096)),  # noise
        b"\x13/multistream/1.0.0\n\x07/bogus\n",  # unknown security protocol
        b"\xff" * 9 + b"\x7f",  # a varint length far beyond any limit
        b"\x13/multistream/1.0.0\n\x07/noise\n" + b"\x00\x20" + bytes(32),  # bogus Noise
        b"",  # connect and hang up
    ]
    async with libp2p_cluster(2, allow_all) as c:
        a, b = c.nodes
        assert isinstance(a, Libp2pTransport) and isinstance(b, Libp2pTransport)
        b.serve(echo_handler)
        feed = b.gossip(TOPIC_ADVERTS)
        for payload in garbage:
            with trio.fail_after(DEADLINE_S):
                conn = await trio.open_tcp_stream("127.0.0.1", tcp_port(b))
                if payload:
                    await conn.send_all(payload)
                with trio.move_on_after(0.2):
                    await conn.receive_some(1024)
                await conn.aclose()
        await assert_still_serving(a, b, feed)


async def test_an_oversized_frame_resets_that_stream_only() -> None:
    errors: list[type[BaseException]] = []

    async def handler(stream: MessageStream) -> None:
        try:
            await echo_handler(stream)
        except Exception as exc:
            errors.append(type(exc))
            raise

    small = Libp2pConfig(listen=LOOPBACK.listen, max_frame_size=1024)
    async with libp2p_cluster(2, allow_all, small) as c:
        a, b = c.nodes
        b.serve(handler)
        feed = b.gossip(TOPIC_ADVERTS)
        with trio.fail_after(DEADLINE_S):
            async with a.open_stream(b.local_id) as stream:
                assert isinstance(stream, Libp2pStream)
                await stream._stream.write(b"\x7f\xff\xff\xff" + b"x" * 64)  # announces 2 GiB
                with pytest.raises(PeerUnavailable):
                    await stream.receive()
        assert errors == [FrameError]
        await assert_still_serving(a, b, feed)  # type: ignore[arg-type]


async def test_bad_addresses_are_refused_with_our_error() -> None:
    async with libp2p_cluster(1, allow_all) as c:
        (a,) = c.nodes
        with pytest.raises(TransportError):
            await a.connect("not a multiaddr")
        with pytest.raises(TransportError):
            await a.connect("/ip4/127.0.0.1/tcp/1")  # no device id
        with pytest.raises(TransportError):
            await a.connect(a.addresses()[0])  # ourselves
        with pytest.raises(PeerUnavailable):
            await a.connect("/ip4/127.0.0.1/tcp/1/p2p/" + device_id(key(77)))
    with pytest.raises(TransportError):
        async with open_libp2p_transport(
            key(1), lambda _: True, LOOPBACK, rng=random.Random(0), bootstrap=["/ip4/1.2.3"]
        ):
            pass


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    config = Libp2pConfig(reconnect_min=1.0, reconnect_max=8.0)
    rng = random.Random(0)
    delays = [backoff_delay(n, config, rng) for n in range(1, 8)]
    bases = [1, 2, 4, 8, 8, 8, 8]
    assert all(base / 2 <= d <= base for d, base in zip(delays, bases, strict=True))
    assert backoff_delay(10_000, config, rng) <= 8.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_a_restarted_peer_is_reconnected_with_backoff() -> None:
    port = free_port()
    b_config = Libp2pConfig(listen=(f"/ip4/127.0.0.1/tcp/{port}",))
    b_key = key(2)
    address = f"/ip4/127.0.0.1/tcp/{port}/p2p/{device_id(b_key)}"

    async def run_b(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with open_libp2p_transport(b_key, lambda _: True, b_config, rng=random.Random(2)):
                task_status.started(scope)
                await trio.sleep_forever()

    async with (
        trio.open_nursery() as nursery,
        open_libp2p_transport(key(1), lambda _: True, LOOPBACK, rng=random.Random(1)) as a,
    ):
        b_scope = await nursery.start(run_b)
        with trio.fail_after(DEADLINE_S):
            await a.connect(address)
        b_scope.cancel()
        with trio.fail_after(DEADLINE_S):
            while device_id(b_key) in a.connected():
                await trio.sleep(0.05)
        await trio.sleep(1.5)  # a few failed redials while b is away
        await nursery.start(run_b)
        with trio.fail_after(DEADLINE_S):
            while device_id(b_key) not in a.connected():
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def child_peer(seed: int) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.libp2p_child", str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(child.stdout.readline)
        yield child, line.strip()
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
        child.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP])
async def test_a_real_peer_killed_or_frozen_mid_stream_is_detected_within_5s(fault: int) -> None:
    async with (
        child_peer(3) as (child, address),
        open_libp2p_transport(key(1), lambda _: True, LOOPBACK, rng=random.Random(1)) as a,
    ):
        peer = await a.connect(address)
        async with a.open_stream(peer) as stream:
            await stream.send(b"go")
            with trio.fail_after(DEADLINE_S):
                for _ in range(20):
                    await stream.receive()
            os.kill(child.pid, fault)
            start = trio.current_time()
            with pytest.raises((PeerUnavailable, StreamClosed)), trio.fail_after(5):
                for _ in range(1_000_000):
                    await stream.receive()
            assert trio.current_time() - start < 5


async def test_gossip_the_node_does_not_accept_is_neither_delivered_nor_relayed() -> None:
    # a -> b -> c in a line: b's check drops "forged" gossip, so c never sees it.
    keys = [key(i + 40) for i in range(3)]
    ids = [device_id(k) for k in keys]

    def accepts(topic: str, origin: str, data: bytes) -> bool:
        return not data.startswith(b"forged")

    async with (
        open_libp2p_transport(keys[0], ids.__contains__, LOOPBACK, rng=random.Random(1)) as a,
        open_libp2p_transport(keys[1], ids.__contains__, LOOPBACK, rng=random.Random(2),
                              accepts=accepts) as b,
        open_libp2p_transport(keys[2], ids.__contains__, LOOPBACK, rng=random.Random(3)) as c,
    ):
        with trio.fail_after(DEADLINE_S):
            await b.connect(a.addresses()[0])
            await c.connect(b.addresses()[0])
        feed_b, feed_c = b.gossip(TOPIC_ADVERTS), c.gossip(TOPIC_ADVERTS)
        for i in range(3):
            await a.publish(TOPIC_ADVERTS, b"forged-%d" % i)
        seen_b = await deliver(a, TOPIC_ADVERTS, b"genuine", feed_b)
        seen_c = await deliver(a, TOPIC_ADVERTS, b"genuine-2", feed_c)
        assert not any(data.startswith(b"forged") for _, data in seen_b + seen_c)
