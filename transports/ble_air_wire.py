"""The wire between the shared radio model (``ble_air``) and the processes on it.

Several ``islandnode`` processes share one model of the air (the
:class:`~.ble_radio_memory.RadioSpace` that ``ble_air`` runs) through a Unix
domain socket. Each process is a thin client (``ble_radio_air``); every
:class:`~.ble_radio.Radio` operation becomes one message here.

A message is a msgpack array ``[op, *fields]`` in one length-prefixed frame
(``protocol.framing``, at most :data:`MAX_FRAME` bytes). :data:`FIELDS` lists
what each op carries; :func:`decode` checks it, so a bad message is an
:class:`AirProtocolError`, never a crash. Requests that wait for an answer
(scan, connect) carry a request id; links are named by a link id the air
assigns. Each ``WRITE`` is answered with ``WROTE`` once the model has put it
on the air, paced (or the link is ``LOST``); a client has at most
:data:`WRITE_WINDOW` writes per link unanswered, like the few packet buffers
of a Bluetooth controller.

:class:`AirConnection` is the framed connection both ends use (send with a
deadline, receive whole messages). What this is not: the radio model itself
(``ble_radio_memory``) or its range rules.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import trio

from islandrun.protocol.errors import FrameError, LocalProtocolError
from islandrun.protocol.framing import FrameDecoder, encode_frame

from .base import TransportError

#: Largest frame either side accepts: a full scan of every client fits easily.
MAX_FRAME = 64 * 1024
#: A radio address: 1..64 printable characters.
MAX_ADDRESS = 64
#: An advert payload: the 31 bytes of a legacy BLE advertisement.
MAX_ADVERT = 31
#: The largest fragment: the largest ATT MTU (517) less its 3-byte header.
MAX_FRAGMENT = 514
#: Writes a client may have unanswered on one link (a controller's ACL buffers).
WRITE_WINDOW = 8
#: Bytes read from the socket at once.
_READ_SIZE = 16 * 1024


class AirProtocolError(TransportError):
    """The other side of the radio-model socket broke the protocol (a bug or a stranger)."""


class Op(enum.IntEnum):
    """What a message is. Append-only: the numbers are on the wire."""

    JOIN = 1  # client: put my radio on the air at (address)
    JOINED = 2  # air: you are on the air
    REFUSED = 3  # air: (reason) -- then the air hangs up
    STATS = 4  # client (instead of JOIN): what has the air carried?
    STATISTICS = 5  # air: (counters) -- then the air hangs up
    ADVERTISE = 6  # client: (payload)
    SCAN = 7  # client: (request id)
    SIGHTINGS = 8  # air: (request id, [[address, payload, rssi], ...])
    CONNECT = 9  # client: (request id, address)
    CONNECTED = 10  # air: (request id, link id, peer address, mtu)
    CONNECT_FAILED = 11  # air: (request id, reason)
    ACCEPTED = 12  # air: (link id, peer address, mtu) -- another radio connected to you
    WRITE = 13  # client: (link id, fragment)
    WROTE = 14  # air: (link id) -- one write went on the air; its buffer is free
    FRAGMENT = 15  # air: (link id, fragment) -- the other side wrote
    CLOSE = 16  # client: (link id)
    LOST = 17  # air: (link id) -- the link broke


@dataclass(frozen=True, slots=True)
class Message:
    """One message: its op and its fields, checked against :data:`FIELDS`."""

    op: Op
    fields: tuple[Any, ...] = ()


def _int(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _rssi(value: Any) -> bool:
    return type(value) is int and -200 <= value <= 20


def _address(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ADDRESS and value.isprintable()


def _text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 1024


def _advert(value: Any) -> bool:
    return isinstance(value, bytes) and len(value) <= MAX_ADVERT


def _fragment(value: Any) -> bool:
    return isinstance(value, bytes) and 0 < len(value) <= MAX_FRAGMENT


def _sightings(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(s, list) and len(s) == 3 and _address(s[0]) and _advert(s[1]) and _rssi(s[2])
        for s in value
    )


def _counters(value: Any) -> bool:
    return isinstance(value, dict) and all(_address(k) and _int(v) for k, v in value.items())


#: The fields of each op, as checks.
FIELDS: dict[Op, tuple[Callable[[Any], bool], ...]] = {
    Op.JOIN: (_address,),
    Op.JOINED: (),
    Op.REFUSED: (_text,),
    Op.STATS: (),
    Op.STATISTICS: (_counters,),
    Op.ADVERTISE: (_advert,),
    Op.SCAN: (_int,),
    Op.SIGHTINGS: (_int, _sightings),
    Op.CONNECT: (_int, _address),
    Op.CONNECTED: (_int, _int, _address, _int),
    Op.CONNECT_FAILED: (_int, _text),
    Op.ACCEPTED: (_int, _address, _int),
    Op.WRITE: (_int, _fragment),
    Op.WROTE: (_int,),
    Op.FRAGMENT: (_int, _fragment),
    Op.CLOSE: (_int,),
    Op.LOST: (_int,),
}


def encode(message: Message) -> bytes:
    """One framed message; :class:`~islandrun.protocol.errors.LocalProtocolError` if invalid."""
    if not _valid(message.op, message.fields):
        raise LocalProtocolError(f"not a valid {message.op.name} message")
    body = msgpack.packb([int(message.op), *message.fields], use_bin_type=True)
    return encode_frame(body, max_size=MAX_FRAME)


def decode(frame: bytes) -> Message:
    """The message in one frame; :class:`AirProtocolError` if it is not a valid one."""
    try:
        items = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise AirProtocolError(f"not a radio-model message ({type(exc).__name__})") from None
    if not isinstance(items, list) or not items or items[0] not in Op._value2member_map_:
        raise AirProtocolError("not a radio-model message (unknown op)")
    op, fields = Op(items[0]), tuple(items[1:])
    if not _valid(op, fields):
        raise AirProtocolError(f"malformed {op.name} message")
    return Message(op, fields)


def _valid(op: Op, fields: tuple[Any, ...]) -> bool:
    checks = FIELDS[op]
    if len(fields) != len(checks):
        return False
    return all(check(f) for check, f in zip(checks, fields, strict=True))


class AirConnection:
    """Whole messages over one Unix socket stream; sends are serialised and bounded in time.

    Errors: :class:`AirProtocolError` for bad bytes, ``trio.BrokenResourceError``
    or ``trio.ClosedResourceError`` when the socket is gone, ``trio.TooSlowError``
    when the other side stops reading for ``send_timeout`` seconds.
    """

    def __init__(self, stream: trio.abc.Stream, *, send_timeout: float = 5.0) -> None:
        self._stream = stream
        self._send_timeout = send_timeout
        self._send_lock = trio.Lock()
        self._decoder = FrameDecoder(max_size=MAX_FRAME)

    async def send(self, op: Op, *fields: Any) -> None:
        data = encode(Message(op, fields))
        with trio.fail_after(self._send_timeout):
            async with self._send_lock:
                await self._stream.send_all(data)

    async def receive(self) -> Message | None:
        """The next message, or None when the other side hung up between messages."""
        try:
            # Bounded: every pass buffers >= 1 byte of a frame capped at MAX_FRAME.
            while (frame := self._decoder.next_frame()) is None:
                data = await self._stream.receive_some(_READ_SIZE)
                if not data:
                    if self._decoder.buffered:
                        raise AirProtocolError("the radio-model socket closed mid-message")
                    return None
                self._decoder.receive_data(data)
        except FrameError as exc:
            raise AirProtocolError(str(exc)) from None
        return decode(frame)

    async def aclose(self) -> None:
        await self._stream.aclose()
