"""Link choice: LAN preferred, BLE as the fallback, and back (linkchoice, MultiTransport)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from islandrun.protocol.ids import device_id_from_public_key
from islandrun.transports.base import TOPIC_ADVERTS, TransportError
from islandrun.transports.ble import TEST_CONFIG, open_ble_transport
from islandrun.transports.ble_radio_memory import RadioSpace
from islandrun.transports.ble_stream import BleStream
from islandrun.transports.linkchoice import link_order
from islandrun.transports.memory import MemoryNetwork, MemoryStream
from islandrun.transports.multi import MultiTransport, open_multi_transport

from .ble_helpers import allow_everyone, device_key, radio_address
from .transport_contract import collect, echo_handler


def test_link_order_prefers_the_first_transport_that_reaches_the_peer() -> None:
    assert link_order("p", [frozenset({"p"}), frozenset({"p"})]) == (0, 1)
    assert link_order("p", [frozenset(), frozenset({"p"})]) == (1, 0)
    assert link_order("p", [frozenset(), frozenset()]) == (0, 1)


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@asynccontextmanager
async def two_devices(
    lan: MemoryNetwork, air: RadioSpace
) -> AsyncIterator[tuple[MultiTransport, MultiTransport]]:
    air.set_range(radio_address(0), radio_address(1), True)

    @asynccontextmanager
    async def device(i: int) -> AsyncIterator[MultiTransport]:
        key = device_key(i)
        device_id = device_id_from_public_key(bytes(key.verify_key))
        async with (
            lan.node(device_id, is_allowed=allow_everyone) as on_lan,
            open_ble_transport(
                key, air.radio(radio_address(i)), allow_everyone, TEST_CONFIG,
                rng=random.Random(i), wall_clock=trio.current_time,
            ) as on_ble,
            open_multi_transport([on_lan, on_ble]) as both,
        ):  # fmt: skip
            yield both

    async with device(0) as a, device(1) as b:
        with trio.fail_after(10):
            while b.local_id not in a.route(b.local_id)[1].connected():
                await trio.sleep(0.1)
        yield a, b


async def stream_kind(a: MultiTransport, peer: str) -> type:
    async with a.open_stream(peer) as stream:
        await stream.send(b"ping")
        assert await stream.receive() == b"ping"
        return type(stream)


async def test_lan_when_both_reach_ble_when_the_lan_is_gone_and_back(
    clock: trio.testing.MockClock,
) -> None:
    lan, air = MemoryNetwork(rng=random.Random(1)), RadioSpace(rng=random.Random(2))
    async with two_devices(lan, air) as (a, b):
        b.serve(echo_handler)
        assert await stream_kind(a, b.local_id) is MemoryStream
        lan.partition([a.local_id], [b.local_id])
        assert await stream_kind(a, b.local_id) is BleStream
        lan.heal()
        assert await stream_kind(a, b.local_id) is MemoryStream
        assert b.local_id in a.connected()
        assert any(addr.startswith("ble/") for addr in a.addresses())
        assert any(addr.startswith("memory/") for addr in a.addresses())


async def test_gossip_over_both_networks_arrives_once(clock: trio.testing.MockClock) -> None:
    lan, air = MemoryNetwork(rng=random.Random(1)), RadioSpace(rng=random.Random(2))
    async with two_devices(lan, air) as (a, b):
        feed = b.gossip(TOPIC_ADVERTS)
        with pytest.raises(TransportError):
            b.gossip(TOPIC_ADVERTS)
        await a.publish(TOPIC_ADVERTS, b"advert")
        assert await collect(feed, 2.0) == [(a.local_id, b"advert")]
        lan.partition([a.local_id], [b.local_id])
        await a.publish(TOPIC_ADVERTS, b"over ble only")
        assert await collect(feed, 2.0) == [(a.local_id, b"over ble only")]


async def test_connect_tries_each_network(clock: trio.testing.MockClock) -> None:
    lan, air = MemoryNetwork(rng=random.Random(1)), RadioSpace(rng=random.Random(2))
    async with two_devices(lan, air) as (a, b):
        assert await a.connect("memory/" + b.local_id) == b.local_id
        assert await a.connect("ble/" + radio_address(1)) == b.local_id
        with pytest.raises(TransportError):
            await a.connect("nowhere/at-all")
