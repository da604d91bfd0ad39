"""MTU-sized fragments of one message, and their bounded reassembly (sans-IO).

A Bluetooth LE link moves one GATT write or notification at a time, at most
the link's *payload MTU* bytes (ATT_MTU - 3: 20 bytes on an old phone, 244
with LE Data Length Extension). A message larger than that is cut into
fragments, each with a 6-byte header::

    msg_id (u16) | index (u16) | count (u16) | piece

``msg_id`` tells concurrent messages on one link apart (the sender counts
it up per link and lets it wrap); ``index`` orders the pieces; ``count``
says how many there are. :func:`fragment` cuts, :class:`Reassembler`
glues. The reassembler is h11-style sans-IO: bytes and ``now`` in, whole
messages out, no clock read, no I/O.

Theory of operation, and the bounds that keep a hostile or broken peer
from costing more than :class:`ReassemblyLimits` allows:

1. A fragment whose header is short, whose index is not below its count, or
   whose count disagrees with an earlier fragment of the same message is a
   :class:`FragmentError` (the partial message is dropped; the link lives).
2. A partial message may not hold more than ``max_message_size`` bytes, and
   every piece but a lone empty message's is non-empty, so the number of
   stored pieces is bounded by bytes too.
3. At most ``max_in_flight`` partial messages; a new one evicts the oldest.
4. A partial message older than ``timeout`` seconds is dropped by
   :meth:`Reassembler.expire` (a lost fragment is never resent at this layer;
   the layer above -- a flood's other paths, a stream's retransmission --
   recovers).
5. Duplicates (a piece seen before, or any piece of a message completed
   recently) and reordering are tolerated silently.

What this is not: framing of whole messages on a byte stream
(``framing``), or any notion of who the peer is. One reassembler serves one
link.
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from .errors import LocalProtocolError, RemoteProtocolError

HEADER = struct.Struct(">HHH")
#: The most pieces one message may have (the header's u16 count).
MAX_FRAGMENTS = 0xFFFF
#: msg ids wrap at this value.
MSG_ID_SPACE = 0x10000


class FragmentError(RemoteProtocolError):
    """A fragment from the link is malformed or breaks a reassembly bound."""


def fragment(message: bytes, *, msg_id: int, mtu: int) -> list[bytes]:
    """Cut ``message`` into fragments of at most ``mtu`` bytes each."""
    room = mtu - HEADER.size
    if room < 1:
        raise LocalProtocolError(f"an MTU of {mtu} bytes leaves no room after the fragment header")
    if not 0 <= msg_id < MSG_ID_SPACE:
        raise LocalProtocolError("msg_id must fit in 16 unsigned bits")
    count = max(1, math.ceil(len(message) / room))
    if count > MAX_FRAGMENTS:
        raise LocalProtocolError(
            f"a {len(message)}-byte message needs {count} fragments at MTU {mtu}; "
            f"the limit is {MAX_FRAGMENTS}"
        )
    return [
        HEADER.pack(msg_id, index, count) + message[index * room : (index + 1) * room]
        for index in range(count)
    ]


def fragment_count(size: int, mtu: int) -> int:
    """How many fragments a ``size``-byte message takes at ``mtu``."""
    return max(1, math.ceil(size / (mtu - HEADER.size)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReassemblyLimits:
    """Bounds on one link's reassembler. Worst-case memory is about
    ``max_in_flight * max_message_size`` bytes."""

    #: Largest message accepted, in bytes. A sealed request with some history
    #: is tens of KiB; on BLE anything near this takes minutes to send.
    max_message_size: int = 256 * 1024
    #: Partial messages held at once; a new one past this evicts the oldest.
    max_in_flight: int = 8
    #: Seconds a partial message may wait for its missing pieces.
    timeout: float = 30.0
    #: Completed msg ids remembered, so late duplicates don't start a new one.
    remembered: int = 64

    def __post_init__(self) -> None:
        if self.max_message_size < 1 or self.max_in_flight < 1 or self.remembered < 0:
            raise ValueError("reassembly limits must be positive")
        if not self.timeout > 0:
            raise ValueError("reassembly timeout must be > 0 seconds")


@dataclass(slots=True)
class _Partial:
    started: float
    count: int
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


@dataclass(frozen=True, slots=True)
class ReassemblyStats:
    """A snapshot of what one reassembler has done (counts since creation)."""

    completed: int
    expired: int
    evicted: int
    duplicates: int
    rejected: int
    in_flight: int
    buffered_bytes: int


class Reassembler:
    """Glues fragments back into messages within :class:`ReassemblyLimits`."""

    def __init__(self, limits: ReassemblyLimits = ReassemblyLimits()) -> None:
        self.limits = limits
        # Invariant: len(self._partials) <= limits.max_in_flight, in start order.
        self._partials: OrderedDict[int, _Partial] = OrderedDict()
        self._done: OrderedDict[int, None] = OrderedDict()
        self._counts = {"completed": 0, "expired": 0, "evicted": 0, "duplicates": 0, "rejected": 0}

    def receive(self, data: bytes, now: float) -> bytes | None:
        """Take one fragment; the whole message once its last piece arrived."""
        if len(data) < HEADER.size:
            self._counts["rejected"] += 1
            raise FragmentError(f"a fragment of {len(data)} bytes is shorter than its header")
        msg_id, index, count = HEADER.unpack_from(data)
        piece = bytes(data[HEADER.size :])
        if msg_id in self._done:
            self._counts["duplicates"] += 1
            return None
        self._check_header(msg_id, index, count, piece)
        partial = self._partials.get(msg_id) or self._start(msg_id, count, now)
        if index in partial.pieces:
            self._counts["duplicates"] += 1
            return None
        if partial.size + len(piece) > self.limits.max_message_size:
            self._reject(msg_id)
            raise FragmentError(
                f"message {msg_id} grows past the {self.limits.max_message_size}-byte limit"
            )
        partial.pieces[index] = piece
        partial.size += len(piece)
        return self._complete(msg_id) if len(partial.pieces) == partial.count else None

    def expire(self, now: float) -> int:
        """Drop partial messages older than the timeout; how many were dropped."""
        stale = [m for m, p in self._partials.items() if now - p.started >= self.limits.timeout]
        for msg_id in stale:
            del self._partials[msg_id]
        self._counts["expired"] += len(stale)
        return len(stale)

    @property
    def buffered_bytes(self) -> int:
        return sum(p.size for p in self._partials.values())

    def statistics(self) -> ReassemblyStats:
        return ReassemblyStats(
            **self._counts, in_flight=len(self._partials), buffered_bytes=self.buffered_bytes
        )

    def _check_header(self, msg_id: int, index: int, count: int, piece: bytes) -> None:
        problem = None
        if count == 0 or index >= count:
            problem = f"fragment index {index} is not below its count {count}"
        elif not piece and count > 1:
            problem = "an empty piece of a multi-fragment message"
        elif msg_id in self._partials and self._partials[msg_id].count != count:
            problem = f"message {msg_id} changed its fragment count"
        if problem is not None:
            self._reject(msg_id)
            raise FragmentError(problem)

    def _start(self, msg_id: int, count: int, now: float) -> _Partial:
        if len(self._partials) >= self.limits.max_in_flight:
            self._partials.popitem(last=False)
            self._counts["evicted"] += 1
        partial = _Partial(started=now, count=count)
        self._partials[msg_id] = partial
        return partial

    def _complete(self, msg_id: int) -> bytes:
        partial = self._partials.pop(msg_id)
        self._counts["completed"] += 1
        if self.limits.remembered:
            self._done[msg_id] = None
            if len(self._done) > self.limits.remembered:
                self._done.popitem(last=False)
        return b"".join(partial.pieces[i] for i in range(partial.count))

    def _reject(self, msg_id: int) -> None:
        self._partials.pop(msg_id, None)
        self._counts["rejected"] += 1
