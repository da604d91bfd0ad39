"""The BLE mesh's relay core: signed packets, TTL flooding, store-and-forward (pure).

Phones in Bluetooth range form a mesh with no infrastructure, so a packet
reaches a device out of its origin's range by *managed flooding* (the
scheme of the Bluetooth Mesh profile): every device hands every new packet
to all its neighbours but the one it came from, and a *time to live* (TTL)
bounds how far it spreads. A bounded seen-set (an LRU of packet ids) stops
a packet from circling.

Wire form of one packet (one reassembled message on a link)::

    ttl (u8) | version (u8) | kind (u8) | packet_id (8) | origin key (32)
    | dst tag (8) | body | signature (64)

The Ed25519 signature of the origin's device key covers everything after
the TTL, and *only* that: the TTL is the one field a relay changes, so it
stays outside the signature (as it stays outside every envelope in
``protocol.envelope``) and a relay decrements it without breaking anything.
A relay verifies the signature before relaying, so nobody can flood in
another device's name; it cannot read the body when the body is sealed
(``protocol.sealing``) -- request streams always are.

Kinds: ``BROADCAST`` (gossip, for everyone, dst all zeros), ``UNICAST``
(request streams, for the device whose :func:`dst_tag` is ``dst``) and
``HELLO`` (link-local, TTL 0: tells a fresh link who is at the other end).

:class:`RelayCore` makes the relay decision: deliver, forward to whom,
store for later. Store-and-forward: a unicast packet that could be handed
to no neighbour (a dead end of the mesh) waits in a bounded per-destination
queue (:class:`StoreAndForward`) until its destination comes into range or
the packet expires.

What this is not: link I/O, fragmentation (``protocol.fragments``), or the
meaning of a body (``transports.ble``).
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from islandrun.protocol.errors import LocalProtocolError, RemoteProtocolError
from islandrun.protocol.ids import device_id_from_public_key

VERSION = 1
_HEAD = struct.Struct(">BBB8s32s8s")  # ttl, version, kind, packet id, origin, dst
_SIG = 64
#: Bytes every packet adds to its body.
OVERHEAD = _HEAD.size + _SIG
BROADCAST_DST = bytes(8)
MAX_TTL = 255


class Kind(enum.IntEnum):
    """Packet kinds. APPEND-ONLY: on the wire."""

    BROADCAST = 1
    UNICAST = 2
    HELLO = 3


class PacketError(RemoteProtocolError):
    """A relay packet is malformed or its signature does not verify."""


def dst_tag(device_id: str) -> bytes:
    """The 8-byte destination tag of a device (a hash of its id)."""
    return hashlib.blake2b(device_id.encode(), digest_size=8, person=b"ir-ble-dst").digest()


@dataclass(frozen=True, slots=True)
class Packet:
    """A verified packet; ``raw`` is its exact wire form (for relaying)."""

    ttl: int
    kind: Kind
    packet_id: bytes
    origin: str  # device id of the signer
    dst: bytes
    body: bytes
    raw: bytes


def encode_packet(
    key: SigningKey, *, kind: Kind, packet_id: bytes, dst: bytes, body: bytes, ttl: int
) -> bytes:
    """Sign and encode one packet as its origin."""
    if not 0 <= ttl <= MAX_TTL or len(packet_id) != 8 or len(dst) != 8:
        raise LocalProtocolError("ttl must be 0..255, packet id and dst 8 bytes")
    signed = _HEAD.pack(0, VERSION, kind, packet_id, bytes(key.verify_key), dst)[1:] + body
    return bytes([ttl]) + signed + key.sign(signed).signature


def decode_packet(data: bytes) -> Packet:
    """Parse and verify one packet; :class:`PacketError` for anything wrong."""
    if len(data) < OVERHEAD:
        raise PacketError(f"a {len(data)}-byte packet is shorter than its header")
    ttl, version, kind, packet_id, origin_key, dst = _HEAD.unpack_from(data)
    if version != VERSION or kind not in Kind._value2member_map_:
        raise PacketError(f"unknown packet version {version} or kind {kind}")
    signed, signature = data[1:-_SIG], data[-_SIG:]
    try:
        VerifyKey(origin_key).verify(signed, signature)
    except (BadSignatureError, ValueError):
        raise PacketError("packet signature does not verify") from None
    body = bytes(data[_HEAD.size : -_SIG])
    origin = device_id_from_public_key(origin_key)
    return Packet(ttl, Kind(kind), packet_id, origin, dst, body, bytes(data))


def with_ttl(raw: bytes, ttl: int) -> bytes:
    """The same packet with another TTL (the signature stays valid)."""
    return bytes([ttl]) + raw[1:]


class SeenSet:
    """The last ``capacity`` packet ids seen: an LRU that never grows past it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("seen-set capacity must be >= 1")
        self.capacity = capacity
        # Invariant: len(self._ids) <= self.capacity.
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def add(self, packet_id: bytes) -> bool:
        """Record ``packet_id``; False if it was already there (a duplicate)."""
        if packet_id in self._ids:
            self._ids.move_to_end(packet_id)
            return False
        self._ids[packet_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class StoreAndForward:
    """Bounded queues of packets waiting for a destination to come into range.

    At most ``per_peer`` packets per destination (the oldest is dropped for a
    new one) and ``peers`` destinations (a new destination past that evicts
    the one waited on longest); a packet older than ``max_age`` seconds is
    dropped, not delivered.
    """

    def __init__(self, *, per_peer: int, peers: int, max_age: float) -> None:
        if per_peer < 1 or peers < 1 or not max_age > 0:
            raise ValueError("store-and-forward bounds must be positive")
        self.per_peer, self.peers, self.max_age = per_peer, peers, max_age
        # Invariant: len(self._queues) <= peers; every queue 1..per_peer long.
        self._queues: OrderedDict[bytes, deque[tuple[float, bytes]]] = OrderedDict()
        self.dropped = 0

    def put(self, dst: bytes, raw: bytes, now: float) -> None:
        queue = self._queues.get(dst)
        if queue is None:
            if len(self._queues) >= self.peers:
                _, evicted = self._queues.popitem(last=False)
                self.dropped += len(evicted)
            queue = self._queues[dst] = deque()
        if len(queue) >= self.per_peer:
            queue.popleft()
            self.dropped += 1
        queue.append((now, raw))

    def take(self, dst: bytes, now: float) -> list[bytes]:
        """Everything still fresh that waits for ``dst`` (removed from the store)."""
        queue = self._queues.pop(dst, deque())
        fresh = [raw for stored, raw in queue if now - stored < self.max_age]
        self.dropped += len(queue) - len(fresh)
        return fresh

    def expire(self, now: float) -> None:
        for dst in list(self._queues):
            queue = self._queues[dst]
            while queue and now - queue[0][0] >= self.max_age:
                queue.popleft()
                self.dropped += 1
            if not queue:
                del self._queues[dst]

    def __len__(self) -> int:
        """Packets stored, all destinations together."""
        return sum(len(q) for q in self._queues.values())

    def destinations(self) -> int:
        return len(self._queues)


@dataclass(frozen=True, slots=True)
class Route:
    """What to do with one packet."""

    deliver: bool
    forward: tuple[str, ...]  # neighbour device ids to send it to
    raw: bytes  # what to forward (TTL already decremented)


DROP = Route(False, (), b"")


class RelayCore:
    """The relay decision for one device, with its seen-set and store.

    Neighbours are device ids with a live link (learnt from HELLO). All
    methods are pure given ``now``.
    """

    def __init__(self, local_id: str, *, seen: SeenSet, store: StoreAndForward) -> None:
        self.local_tag = dst_tag(local_id)
        self.seen = seen
        self.store = store
        self._neighbours: dict[bytes, str] = {}

    def originate(self, packet: Packet, now: float) -> Route:
        """Route a packet we made: to the destination if in range, else flood."""
        self.seen.add(packet.packet_id)
        return self._onward(packet, packet.raw, came_from=None, now=now)

    def receive(self, packet: Packet, *, came_from: str, relay_allowed: bool, now: float) -> Route:
        """Route a packet a neighbour gave us.

        ``relay_allowed`` is the node's allowlist verdict on the origin; a
        broadcast from an origin it refuses is neither delivered nor relayed.
        """
        if packet.kind is Kind.HELLO or not self.seen.add(packet.packet_id):
            return DROP
        if packet.dst == self.local_tag:
            return Route(True, (), b"")
        is_broadcast = packet.kind is Kind.BROADCAST
        if is_broadcast and not relay_allowed:
            return DROP
        route = self._onward(packet, with_ttl(packet.raw, packet.ttl - 1), came_from, now)
        return Route(is_broadcast, route.forward, route.raw)

    def neighbour_up(self, device_id: str, now: float) -> list[bytes]:
        """Record a new neighbour; the stored packets to hand it now."""
        tag = dst_tag(device_id)
        self._neighbours[tag] = device_id
        return self.store.take(tag, now)

    def neighbour_down(self, device_id: str) -> None:
        self._neighbours.pop(dst_tag(device_id), None)

    def neighbours(self) -> Mapping[bytes, str]:
        return self._neighbours

    def _onward(self, packet: Packet, raw: bytes, came_from: str | None, now: float) -> Route:
        if packet.ttl <= 1 and came_from is not None:
            return DROP
        direct = self._neighbours.get(packet.dst)
        if direct is not None:
            return Route(False, (direct,), raw)
        forward = tuple(n for n in self._neighbours.values() if n not in (came_from, packet.origin))
        if not forward and packet.kind is Kind.UNICAST:
            self.store.put(packet.dst, raw, now)
        return Route(False, forward, raw)
