"""The BLE mesh over the radio model, in virtual time: hops, cuts, storms, store-and-forward."""

from __future__ import annotations

import dataclasses

import pytest
import trio
import trio.testing

from islandrun.protocol.envelope import DOMAIN_ADVERT, PAYLOAD_ADVERT, open_envelope, seal_envelope
from islandrun.protocol.fragments import ReassemblyLimits
from islandrun.protocol.sealing import Sealer
from islandrun.transports.base import TOPIC_ADVERTS, MessageStream, PeerUnavailable, StreamClosed
from islandrun.transports.ble import TEST_CONFIG
from islandrun.transports.ble_ids import IdResolver, derive_irk, epoch_of, rotating_id
from islandrun.transports.ble_radio_memory import Air

from .ble_helpers import ble_mesh, device_key, radio_address
from .transport_contract import chunk_handler, collect

CHAIN8 = [1, 2, 2, 2, 2, 2, 2, 1]
#: An old phone: 20-byte writes at ~125 kbit/s of application throughput.
SLOW_AIR = Air(mtu=20, rate_bps=125_000, latency=0.002)


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def ask(client: object, peer: str, count: int) -> list[bytes]:
    """Open a stream, send one request, read ``count`` chunks and the end."""
    async with client.open_stream(peer) as stream:  # type: ignore[attr-defined]
        await stream.send(b"request")
        chunks = [await stream.receive() for _ in range(count)]
        with pytest.raises(StreamClosed):
            await stream.receive()
    return chunks


async def test_an_8_device_chain_carries_a_signed_advert_and_a_stream_over_7_hops(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(8, chain=True, air=SLOW_AIR) as mesh:
        await mesh.wait_linked(CHAIN8)
        first, last = mesh.nodes[0], mesh.nodes[7]
        advert = seal_envelope(
            device_key(0), domain=DOMAIN_ADVERT, payload_type=PAYLOAD_ADVERT, payload=b"battery",
            seq=1, expires=1e9,
        )  # fmt: skip
        feed = last.gossip(TOPIC_ADVERTS)
        await first.publish(TOPIC_ADVERTS, advert)
        with trio.fail_after(30):
            origin, data = await feed.__anext__()
        # Six relays decremented the TTL; the origin's signature still holds.
        assert origin == first.local_id
        assert open_envelope(data, domain=DOMAIN_ADVERT, now=0).device_id == first.local_id
        assert first.local_id in last.connected() and len(first.connected()) >= 1
        last.serve(chunk_handler(10))
        with trio.fail_after(60):
            assert await ask(first, last.local_id, 10) == [b"chunk %d" % i for i in range(10)]


async def test_a_ttl_too_short_for_the_chain_does_not_arrive(
    clock: trio.testing.MockClock,
) -> None:
    config = dataclasses.replace(TEST_CONFIG, ttl=3)
    async with ble_mesh(5, chain=True, config=config) as mesh:
        await mesh.wait_linked([1, 2, 2, 2, 1])
        near, far = mesh.nodes[3].gossip(TOPIC_ADVERTS), mesh.nodes[4].gossip(TOPIC_ADVERTS)
        await mesh.nodes[0].publish(TOPIC_ADVERTS, b"hi")
        assert [d for _, d in await collect(near, 5.0)] == [b"hi"]  # 3 hops
        assert await collect(far, 5.0) == []  # 4 hops


async def test_partition_cuts_the_chain_and_healing_restores_it(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(5, chain=True) as mesh:
        await mesh.wait_linked([1, 2, 2, 2, 1])
        far = mesh.nodes[4].gossip(TOPIC_ADVERTS)
        mesh.space.set_range(radio_address(2), radio_address(3), False)
        await mesh.wait_linked([1, 2, 1, 1, 1])
        await mesh.nodes[0].publish(TOPIC_ADVERTS, b"lost")
        assert await collect(far, 5.0) == []
        mesh.space.set_range(radio_address(2), radio_address(3), True)
        await mesh.wait_linked([1, 2, 2, 2, 1])
        await mesh.nodes[0].publish(TOPIC_ADVERTS, b"found")
        assert [d for _, d in await collect(far, 5.0)] == [b"found"]


async def test_a_stream_survives_a_brief_partition_by_retransmitting(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(4, chain=True) as mesh:
        await mesh.wait_linked([1, 2, 2, 1])
        mesh.nodes[3].serve(chunk_handler(30, pause=0.1))
        with trio.fail_after(60):
            async with mesh.nodes[0].open_stream(mesh.nodes[3].local_id) as stream:
                await stream.send(b"go")
                got = [await stream.receive() for _ in range(5)]
                mesh.space.set_range(radio_address(1), radio_address(2), False)
                await trio.sleep(1.0)
                mesh.space.set_range(radio_address(1), radio_address(2), True)
                got += [await stream.receive() for _ in range(25)]
        assert got == [b"chunk %d" % i for i in range(30)]


async def test_store_and_forward_delivers_to_a_peer_that_comes_back_into_range(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(3, chain=True) as mesh:
        a, b, c = mesh.nodes
        mesh.space.set_range(radio_address(1), radio_address(2), False)
        await mesh.wait_linked([1, 1, 0])
        c.serve(chunk_handler(3))

        async def come_back() -> None:
            await trio.sleep(1.0)
            assert b.statistics().stored >= 1  # the OPEN waits at the dead end
            mesh.space.set_range(radio_address(1), radio_address(2), True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(come_back)
            with trio.fail_after(30):
                assert await ask(a, c.local_id, 3) == [b"chunk 0", b"chunk 1", b"chunk 2"]
        assert b.statistics().stored == 0


async def test_a_peer_that_never_comes_back_fails_the_stream_within_the_retry_budget(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(3, chain=True) as mesh:
        await mesh.wait_linked([1, 2, 1])
        mesh.kill(2)
        start = trio.current_time()
        with pytest.raises(PeerUnavailable):
            async with mesh.nodes[0].open_stream(mesh.nodes[2].local_id):
                pass
        budget = TEST_CONFIG.rto * (TEST_CONFIG.max_retries + 1)
        assert trio.current_time() - start <= budget + 0.5


async def test_duplicate_storms_in_a_full_mesh_stay_within_every_cap(
    clock: trio.testing.MockClock,
) -> None:
    config = dataclasses.replace(
        TEST_CONFIG, seen_capacity=64, link_queue=8, gossip_buffer=16, store_per_peer=2,
        store_peers=2,
    )  # fmt: skip
    async with ble_mesh(6, config=config, air=SLOW_AIR) as mesh:
        await mesh.wait_linked([5] * 6)
        feeds = [n.gossip(TOPIC_ADVERTS) for n in mesh.nodes]
        peak = []
        for burst in range(10):
            for node in mesh.nodes:
                for i in range(20):
                    await node.publish(TOPIC_ADVERTS, b"storm %d %d" % (burst, i))
            await trio.sleep(0.2)
            peak += [n.statistics() for n in mesh.nodes]
        assert all(s.seen <= 64 and s.stored <= 4 for s in peak)
        assert all(s.reassembly_in_flight <= 5 * config.reassembly.max_in_flight for s in peak)
        assert sum(s.queue_dropped for s in peak) > 0  # the storm did overflow queues
        # ... and the mesh still works once it has passed.
        await trio.sleep(5.0)
        for feed in feeds:
            await collect(feed, 0.1)
        await mesh.nodes[0].publish(TOPIC_ADVERTS, b"after the storm")
        seen = await collect(feeds[5], 2.0)
        assert (mesh.nodes[0].local_id, b"after the storm") in seen


async def test_streams_deliver_everything_in_order_over_lossy_air(
    clock: trio.testing.MockClock,
) -> None:
    lossy = Air(mtu=20, rate_bps=250_000, latency=0.003, loss=0.02)
    async with ble_mesh(4, chain=True, air=lossy, seed=5) as mesh:
        await mesh.wait_linked([1, 2, 2, 1])
        mesh.nodes[3].serve(chunk_handler(20))
        with trio.fail_after(300):
            chunks = await ask(mesh.nodes[0], mesh.nodes[3].local_id, 20)
        assert chunks == [b"chunk %d" % i for i in range(20)]
        assert mesh.space.lost > 0


async def test_a_packet_over_the_receivers_reassembly_cap_is_dropped_not_buffered(
    clock: trio.testing.MockClock,
) -> None:
    small = dataclasses.replace(TEST_CONFIG, reassembly=ReassemblyLimits(max_message_size=600))
    async with ble_mesh(2, config=small) as mesh:
        await mesh.wait_linked([1, 1])
        feed = mesh.nodes[1].gossip(TOPIC_ADVERTS)
        big = dataclasses.replace(TEST_CONFIG, reassembly=ReassemblyLimits())
        mesh.nodes[0].config = big  # the sender believes in a larger limit
        await mesh.nodes[0].publish(TOPIC_ADVERTS, bytes(2000))
        await mesh.nodes[0].publish(TOPIC_ADVERTS, b"small")
        assert [d for _, d in await collect(feed, 2.0)] == [b"small"]
        stats = mesh.nodes[1].statistics()
        assert stats.bad_fragments >= 1 and stats.reassembly_bytes == 0


async def test_relays_carry_sealed_requests_blind(clock: trio.testing.MockClock) -> None:
    secret = b"PATIENT-HBA1C-9.1"

    async def open_and_echo(stream: MessageStream) -> None:
        sealed = await stream.receive()
        _, plain = Sealer(device_key(2)).open(sealed)
        await stream.send(Sealer(device_key(2)).seal(bytes(device_key(0).verify_key), plain))

    async with ble_mesh(3, chain=True) as mesh:
        mesh.space.sniff = []
        await mesh.wait_linked([1, 2, 1])
        mesh.nodes[2].serve(open_and_echo)
        sealer = Sealer(device_key(0))
        async with mesh.nodes[0].open_stream(mesh.nodes[2].local_id) as stream:
            await stream.send(sealer.seal(bytes(device_key(2).verify_key), secret))
            assert sealer.open(await stream.receive())[1] == secret
        on_air = b"".join(fragment[6:] for fragment in mesh.space.sniff)
        assert len(on_air) > 200 and secret not in on_air


async def test_the_advert_carries_a_rotating_id_only_paired_devices_resolve(
    clock: trio.testing.MockClock,
) -> None:
    async with ble_mesh(2, config=dataclasses.replace(TEST_CONFIG, epoch_s=60.0)) as mesh:
        irk = derive_irk(bytes(device_key(0)))
        friend = IdResolver({"device-0": irk}, epoch_s=60.0)
        stranger = IdResolver({"someone": derive_irk(b"\x09" * 32)}, epoch_s=60.0)
        seen = []
        await trio.sleep(30.0)  # mid-epoch, away from the boundary
        for _ in range(3):
            await trio.sleep(60.0)
            (sighting,) = mesh.space.sightings(radio_address(1))
            now = trio.current_time()
            assert sighting.payload == rotating_id(irk, epoch_of(now, 60.0))
            assert friend.resolve(sighting.payload, now) == "device-0"
            assert stranger.resolve(sighting.payload, now) is None
            seen.append(sighting.payload)
        assert len(set(seen)) == 3
