"""A request stream over the BLE mesh (a :class:`~.base.MessageStream`).

Every stream message travels as a sealed-by-the-caller body inside a signed
``UNICAST`` mesh packet (``ble_relay``), prefixed by a small stream header::

    op (u8) | stream id (8) | seq (u32) | payload

The opener picks a random stream id and sends ``OPEN`` until the peer
answers ``ACCEPT`` (or ``REFUSE``: it serves no streams). Then each
direction is a go-back-N ARQ (``ble_arq``): ``DATA`` and ``FIN`` are
numbered, ``ACK n`` says "your first n are consumed by my reader" -- so
the sender's window is also the receiver's buffer and a slow reader slows
the sender instead of losing data -- ``PING`` asks for an ACK when a reader
waits on a silent peer, and ``RESET`` aborts. A stream's timer task
(:meth:`BleStream.run_timer`) does the retransmitting and notices a peer
that went away.

What this is not: routing, signing, fragmenting (the transport's), or
reading the payload (sealed end to end by the node).
"""

from __future__ import annotations

import enum
import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio

from islandrun.protocol.errors import LocalProtocolError

from .base import PeerUnavailable, StreamClosed, TransportError
from .ble_arq import ReceiveWindow, SendWindow

HEADER = struct.Struct(">B8sI")


class Op(enum.IntEnum):
    """Stream operations. APPEND-ONLY: on the wire."""

    OPEN = 1
    ACCEPT = 2
    REFUSE = 3
    DATA = 4
    FIN = 5
    ACK = 6
    PING = 7
    RESET = 8


@dataclass(frozen=True, slots=True)
class StreamSettings:
    window: int  # messages in flight per direction (= the receiver's buffer)
    rto: float  # seconds of silence before a retransmission
    rto_per_byte: float  # more seconds per byte outstanding
    max_retries: int  # silent retransmissions in a row before giving up
    max_message: int  # largest message, bytes


#: How a stream hands one of its packets to the mesh: (op, seq, payload).
SendOp = Callable[[Op, int, bytes], None]


def encode(op: Op, stream_id: bytes, seq: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(op, stream_id, seq) + payload


def decode(body: bytes) -> tuple[Op, bytes, int, bytes] | None:
    """``(op, stream id, seq, payload)``, or None if the body is not a stream packet."""
    if len(body) < HEADER.size:
        return None
    op, stream_id, seq = HEADER.unpack_from(body)
    if op not in Op._value2member_map_:
        return None
    return Op(op), stream_id, seq, body[HEADER.size :]


class BleStream:
    """One end of a request stream, driven by packets the transport hands it."""

    def __init__(
        self, peer: str, settings: StreamSettings, send_op: SendOp, *, opening: bool
    ) -> None:
        self._peer = peer
        self._settings = settings
        self._send_op = send_op
        self._tx = SendWindow(
            window=settings.window,
            rto=settings.rto,
            max_retries=settings.max_retries,
            per_byte=settings.rto_per_byte,
        )
        self._rx = ReceiveWindow()
        # Invariant: len(self._inbox) <= settings.window.
        self._inbox: deque[bytes] = deque()
        self._fin_received = False
        self._opening = opening
        self._error: TransportError | None = None
        self._closed = False
        self._readers = 0
        self._changed = trio.Event()
        self.peer_finished = False
        if opening:
            self._tx.arm(trio.current_time())

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def done(self) -> bool:
        """Nothing more will happen on this stream."""
        return self._error is not None or (self._closed and self._tx.idle and self._fin_received)

    # -- the MessageStream API ------------------------------------------------

    async def wait_open(self) -> None:
        """Wait for the peer's ACCEPT; :class:`PeerUnavailable` if it refuses or is silent."""
        while self._opening and self._error is None:
            await self._wait_change()
        if self._error is not None:
            raise self._error

    async def send(self, message: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if len(message) > self._settings.max_message:
            raise LocalProtocolError(
                f"message of {len(message)} bytes exceeds the "
                f"{self._settings.max_message}-byte BLE limit"
            )
        while True:
            self._raise_if_unusable()
            if self._tx.has_room():
                break
            await self._wait_change()
        seq = self._tx.push(bytes(message), trio.current_time())
        self._send_op(Op.DATA, seq, message)
        self._kick()

    async def receive(self) -> bytes:
        await trio.lowlevel.checkpoint()
        self._readers += 1
        try:
            while True:
                self._raise_if_unusable()
                if self._inbox:
                    return self._pop()
                if self._fin_received:
                    self.peer_finished = True
                    raise StreamClosed("the peer finished this stream")
                self._tx.arm(trio.current_time())
                self._kick()
                await self._wait_change()
        finally:
            self._readers -= 1

    async def aclose(self) -> None:
        if not self._closed and self._error is None:
            self._closed = True
            seq = self._tx.push(None, trio.current_time(), force=True)
            self._send_op(Op.FIN, seq, b"")
            self._kick()
        self._closed = True
        await trio.lowlevel.checkpoint()

    async def abort(self) -> None:
        if self._error is None:
            self._send_op(Op.RESET, 0, b"")
            self._fail(PeerUnavailable("this stream was reset"))
        self._closed = True
        await trio.lowlevel.checkpoint()

    # -- driven by the transport ---------------------------------------------

    def on_packet(self, op: Op, seq: int, payload: bytes) -> None:
        now = trio.current_time()
        self._tx.heard(now)
        if op not in (Op.REFUSE, Op.RESET):
            # Anything but a refusal means the peer has the stream: its
            # ACCEPT may have been lost while a later ACK or PING arrived.
            self._opening = False
        if op is Op.REFUSE:
            self._fail(PeerUnavailable(f"device {self._peer[-8:]} does not accept request streams"))
        elif op is Op.RESET:
            self._fail(PeerUnavailable("the stream was reset (the peer went away or gave up)"))
        elif op is Op.ACK:
            self._tx.ack(seq, now)
        elif op in (Op.DATA, Op.FIN):
            self._take(op, seq, payload)
        elif op is Op.PING:
            self._ack()
        if self._readers:
            self._tx.arm(now)
        self._kick()

    async def run_timer(self) -> None:
        """Retransmit on silence until the stream is done; linger a little after."""
        linger = self._settings.rto * self._settings.max_retries
        while not self.done:
            if self._closed and self._tx.idle:
                with trio.move_on_after(linger):
                    while not self.done:
                        await self._wait_change()
                return
            with trio.move_on_at(self._tx.deadline or math.inf):
                await self._wait_change()
            self._on_timer()

    def _on_timer(self) -> None:
        try:
            due = self._tx.expire(trio.current_time())
        except PeerUnavailable as exc:
            self._fail(exc)
            return
        if due is None:
            return
        if self._opening:
            self._send_op(Op.OPEN, 0, b"")
        elif due:
            for seq, item in due:
                self._send_op(Op.FIN if item is None else Op.DATA, seq, item or b"")
        elif self._readers:
            self._send_op(Op.PING, 0, b"")
        else:
            self._tx.disarm()

    def _take(self, op: Op, seq: int, payload: bytes) -> None:
        # An accepted message is acknowledged when the reader takes it
        # (:meth:`_pop`); anything else is acknowledged at once, which tells
        # the sender we are alive and what we expect.
        room = len(self._inbox) < self._settings.window and not self._fin_received
        if room and self._rx.accept(seq):
            if op is Op.DATA:
                self._inbox.append(payload)
                return
            self._fin_received = True
        self._ack()

    def _pop(self) -> bytes:
        was_full = len(self._inbox) >= self._settings.window
        message = self._inbox.popleft()
        if was_full or not self._inbox:
            self._ack()
        return message

    def _ack(self) -> None:
        self._send_op(Op.ACK, self._rx.expected - len(self._inbox), b"")

    def _fail(self, error: TransportError) -> None:
        if self._error is None:
            self._error = error
        self._kick()

    def _raise_if_unusable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamClosed("this stream is closed")

    def _kick(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()
