"""The BLE relay core (transports.ble_relay), pure: packets, TTL, flooding, store-and-forward."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from islandrun.protocol.envelope import DOMAIN_ADVERT, PAYLOAD_ADVERT, open_envelope, seal_envelope
from islandrun.protocol.errors import SealError
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.sealing import Sealer
from islandrun.transports.ble_relay import (
    BROADCAST_DST,
    Kind,
    PacketError,
    RelayCore,
    SeenSet,
    StoreAndForward,
    decode_packet,
    dst_tag,
    encode_packet,
    with_ttl,
)

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(5)]
IDS = [device_id_from_public_key(bytes(k.verify_key)) for k in KEYS]


def packet(
    origin: int = 0, *, kind: Kind = Kind.BROADCAST, dst: bytes = BROADCAST_DST, ttl: int = 4,
    body: bytes = b"body", pid: bytes = b"pid00001",
) -> bytes:  # fmt: skip
    return encode_packet(KEYS[origin], kind=kind, packet_id=pid, dst=dst, body=body, ttl=ttl)


def relay_at(index: int, neighbours: list[int], **store: float) -> RelayCore:
    core = RelayCore(
        IDS[index],
        seen=SeenSet(16),
        store=StoreAndForward(per_peer=2, peers=2, max_age=store.get("max_age", 10.0)),
    )
    for n in neighbours:
        core.neighbour_up(IDS[n], 0.0)
    return core


def test_a_packet_round_trips_and_names_its_signer() -> None:
    p = decode_packet(packet(2, kind=Kind.UNICAST, dst=dst_tag(IDS[3]), ttl=7))
    assert (p.origin, p.kind, p.ttl, p.body, p.dst) == (
        IDS[2], Kind.UNICAST, 7, b"body", dst_tag(IDS[3])
    )  # fmt: skip


def test_ttl_is_outside_the_signature_and_everything_else_inside() -> None:
    raw = packet(ttl=8)
    assert decode_packet(with_ttl(raw, 1)).ttl == 1
    for position in range(1, len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        with pytest.raises(PacketError):
            decode_packet(bytes(tampered))


@pytest.mark.parametrize("junk", [b"", b"\x01" * 50, packet()[:-1], b"\x04\x09" + packet()[2:]])
def test_malformed_packets_raise_our_error(junk: bytes) -> None:
    with pytest.raises(PacketError):
        decode_packet(junk)


def test_relays_decrement_ttl_without_breaking_the_envelope_or_reading_sealed_bodies() -> None:
    """An advert envelope and a sealed request cross four relays intact and unread."""
    advert = seal_envelope(
        KEYS[0], domain=DOMAIN_ADVERT, payload_type=PAYLOAD_ADVERT, payload=b"ad", seq=1,
        expires=100.0,
    )  # fmt: skip
    secret = b"my blood test results"
    sealed = Sealer(KEYS[0]).seal(bytes(KEYS[4].verify_key), secret)
    for body, kind, dst in [
        (advert, Kind.BROADCAST, BROADCAST_DST),
        (sealed, Kind.UNICAST, dst_tag(IDS[4])),
    ]:
        raw = packet(0, kind=kind, dst=dst, body=body, ttl=5)
        for hop in (1, 2, 3):
            relay = relay_at(hop, [hop - 1, hop + 1])
            route = relay.receive(decode_packet(raw), came_from=IDS[hop - 1], relay_allowed=True,
                                  now=0.0)  # fmt: skip
            assert route.forward == (IDS[hop + 1],)
            assert secret not in route.raw
            raw = route.raw
            if kind is Kind.UNICAST:
                with pytest.raises(SealError):
                    Sealer(KEYS[hop]).open(decode_packet(raw).body)
        final = decode_packet(raw)
        assert final.ttl == 2
        if kind is Kind.BROADCAST:
            assert open_envelope(final.body, domain=DOMAIN_ADVERT, now=0.0).payload == b"ad"
        else:
            assert Sealer(KEYS[4]).open(final.body) == (bytes(KEYS[0].verify_key), secret)


def test_flooding_skips_the_sender_and_the_origin_and_stops_at_ttl_one() -> None:
    relay = relay_at(1, [0, 2, 3])
    route = relay.receive(decode_packet(packet(0)), came_from=IDS[0], relay_allowed=True, now=0)
    assert route.deliver and set(route.forward) == {IDS[2], IDS[3]}
    assert decode_packet(route.raw).ttl == 3
    last = relay.receive(decode_packet(packet(4, ttl=1, pid=b"pid00002")), came_from=IDS[2],
                         relay_allowed=True, now=0)  # fmt: skip
    assert last.deliver and last.forward == ()


def test_duplicates_are_dropped_and_the_seen_set_never_grows_past_its_capacity() -> None:
    relay = relay_at(1, [0, 2])
    raw = packet(0)
    assert relay.receive(decode_packet(raw), came_from=IDS[0], relay_allowed=True, now=0).deliver
    again = relay.receive(decode_packet(raw), came_from=IDS[2], relay_allowed=True, now=0)
    assert not again.deliver and again.forward == ()
    for i in range(100):
        relay.receive(decode_packet(packet(0, pid=b"%08d" % i)), came_from=IDS[0],
                      relay_allowed=True, now=0)  # fmt: skip
        assert len(relay.seen) <= 16


def test_broadcasts_from_refused_origins_are_neither_delivered_nor_relayed() -> None:
    relay = relay_at(1, [0, 2])
    route = relay.receive(decode_packet(packet(0)), came_from=IDS[0], relay_allowed=False, now=0)
    assert not route.deliver and route.forward == ()


def test_unicast_goes_straight_to_a_neighbour_destination_and_is_delivered_only_there() -> None:
    relay = relay_at(1, [0, 2, 3])
    raw = packet(0, kind=Kind.UNICAST, dst=dst_tag(IDS[3]))
    route = relay.receive(decode_packet(raw), came_from=IDS[0], relay_allowed=False, now=0)
    assert not route.deliver and route.forward == (IDS[3],)
    at_dst = relay_at(3, [1]).receive(decode_packet(route.raw), came_from=IDS[1],
                                      relay_allowed=False, now=0)  # fmt: skip
    assert at_dst.deliver and at_dst.forward == ()


def test_a_dead_end_stores_unicast_until_the_destination_comes_into_range() -> None:
    relay = relay_at(1, [0])
    raw = packet(0, kind=Kind.UNICAST, dst=dst_tag(IDS[4]))
    route = relay.receive(decode_packet(raw), came_from=IDS[0], relay_allowed=True, now=0)
    assert route.forward == () and len(relay.store) == 1
    handed = relay.neighbour_up(IDS[4], 5.0)
    assert [decode_packet(h).body for h in handed] == [b"body"]
    assert len(relay.store) == 0


def test_store_and_forward_is_bounded_per_peer_in_peers_and_in_age() -> None:
    store = StoreAndForward(per_peer=2, peers=2, max_age=10.0)
    for i in range(5):
        store.put(b"peer-aaa", b"%d" % i, float(i))
    assert store.take(b"peer-aaa", 4.0) == [b"3", b"4"]
    for peer in (b"peer-111", b"peer-222", b"peer-333"):
        store.put(peer, b"x", 0.0)
    assert store.destinations() == 2 and store.take(b"peer-111", 0.0) == []
    assert store.take(b"peer-222", 10.0) == []  # too old to deliver
    store.put(b"peer-444", b"y", 0.0)
    store.expire(10.0)
    assert len(store) == 0
    assert store.dropped == 3 + 1 + 1 + 1 + 1


def test_bounds_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        SeenSet(0)
    with pytest.raises(ValueError):
        StoreAndForward(per_peer=0, peers=1, max_age=1)
