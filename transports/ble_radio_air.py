"""A :class:`~.ble_radio.Radio` on the shared radio model (``ble_air``), for real processes.

``islandnode run --ble --ble-adapter sim:PATH`` (or ``[ble] adapter =
"sim:PATH"``) puts this device's radio on the air served at the Unix socket
``PATH``, at the radio address ``[ble] address`` (a name in the air's
topology). Every operation is one message to the air (``ble_air_wire``),
where the radio model (``ble_radio_memory``) carries it out: range, MTU,
pacing, latency and loss are the model's, not this module's.

One reader task takes everything the air sends: answers to scans and dials
(by request id), links other radios opened to us, fragments and the end of
links (by link id). A link's fragments wait in a bounded buffer; a full
one holds the reader, and so the air's sends to us: link-layer flow
control, as in the model (the air drops a client that stalls it for its
``send_timeout``). If the air goes
away the radio raises :class:`~.ble_radio.BluetoothUnavailable` into the
block that opened it, as an adapter that vanished would.

What this is not: a radio model (that is ``ble_radio_memory``), or a
Bluetooth adapter (``ble_bleak``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from islandrun.protocol.errors import LocalProtocolError

from .ble_air_wire import WRITE_WINDOW, AirConnection, AirProtocolError, Message, Op
from .ble_radio import BluetoothUnavailable, LinkLost, Sighting

#: ``[ble] adapter`` values naming a shared radio model: ``sim:`` and its socket path.
SIM_PREFIX = "sim:"
#: Fragments one link buffers for the transport to read.
LINK_BUFFER = 256
#: Links others opened to us, waiting for ``accept``.
ACCEPT_BUFFER = 16


def sim_path(adapter: str) -> str | None:
    """The socket path of a ``sim:PATH`` adapter, or None for another adapter."""
    return adapter[len(SIM_PREFIX):] or None if adapter.startswith(SIM_PREFIX) else None


class AirRadioLink:
    """One link on the shared air (a :class:`~.ble_radio.RadioLink`)."""

    def __init__(self, radio: AirRadio, link_id: int, peer: str, mtu: int) -> None:
        self._radio, self._id, self._peer, self._mtu = radio, link_id, peer, mtu
        self._incoming_send, self._incoming = trio.open_memory_channel[bytes](LINK_BUFFER)
        # One token per free write buffer on the air's side of the link.
        self._buffers_send, self._buffers = trio.open_memory_channel[None](WRITE_WINDOW)
        for _ in range(WRITE_WINDOW):
            self._buffers_send.send_nowait(None)
        self.lost = False

    @property
    def address(self) -> str:
        return self._peer

    @property
    def mtu(self) -> int:
        return self._mtu

    async def write(self, fragment: bytes) -> None:
        if len(fragment) > self._mtu:
            raise LocalProtocolError(f"a {len(fragment)}-byte write exceeds the {self._mtu}-byte "
                                     "MTU")
        try:
            await self._buffers.receive()  # returns when the air can take the write
        except trio.EndOfChannel:
            raise LinkLost("the link broke (out of range, or the peer went away)") from None
        if self.lost:
            raise LinkLost("the link broke (out of range, or the peer went away)")
        await self._radio.send(Op.WRITE, self._id, bytes(fragment))

    async def receive(self) -> bytes:
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkLost("the link broke (out of range, or the peer went away)") from None

    async def aclose(self) -> None:
        if not self.lost:
            self.on_lost()
            self._radio.forget(self._id)
            await self._radio.send_if_up(Op.CLOSE, self._id)
        await trio.lowlevel.checkpoint()

    # -- called by the radio's reader ----------------------------------------------

    async def on_fragment(self, fragment: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._incoming_send.send(fragment)  # a full buffer holds the air back

    def on_wrote(self) -> None:
        try:
            self._buffers_send.send_nowait(None)
        except trio.WouldBlock:
            raise AirProtocolError("the air acknowledged a write that was not made") from None

    def on_lost(self) -> None:
        self.lost = True
        self._incoming_send.close()
        self._buffers_send.close()


class AirRadio:
    """This device's radio on the shared air (a :class:`~.ble_radio.Radio`)."""

    def __init__(self, conn: AirConnection, address: str, path: str,
                 request_timeout: float) -> None:
        self._conn, self._address, self._path = conn, address, path
        self._timeout = request_timeout
        self._requests = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Any]] = {}
        self._links: dict[int, AirRadioLink] = {}
        self._inbound_send, self._inbound = trio.open_memory_channel[AirRadioLink](ACCEPT_BUFFER)
        self._up = True

    @property
    def address(self) -> str:
        return self._address

    async def advertise(self, payload: bytes) -> None:
        await self.send(Op.ADVERTISE, bytes(payload))

    async def scan(self) -> list[Sighting]:
        sightings: list[list[Any]] = await self._request(Op.SCAN)
        return [Sighting(address, payload, rssi) for address, payload, rssi in sightings]

    async def connect(self, address: str) -> AirRadioLink:
        answer: AirRadioLink | str = await self._request(Op.CONNECT, address)
        if isinstance(answer, str):
            raise LinkLost(f"connecting to {address!r} failed: {answer}")
        return answer

    async def accept(self) -> AirRadioLink:
        return await self._inbound.receive()

    # -- plumbing ------------------------------------------------------------------

    async def send(self, op: Op, *fields: Any) -> None:
        try:
            await self._conn.send(op, *fields)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            raise self._gone() from None

    async def send_if_up(self, op: Op, *fields: Any) -> None:
        if self._up:
            await self.send(op, *fields)

    def forget(self, link_id: int) -> None:
        self._links.pop(link_id, None)

    async def _request(self, op: Op, *fields: Any) -> Any:
        request = next(self._requests)
        answer_send, answer = trio.open_memory_channel[Any](1)
        self._waiting[request] = answer_send
        try:
            await self.send(op, request, *fields)
            with trio.move_on_after(self._timeout):
                return await answer.receive()
            raise BluetoothUnavailable(f"the radio model at {self._path} did not answer "
                                       f"{op.name} within {self._timeout:.0f} s")
        finally:
            del self._waiting[request]

    def _gone(self) -> BluetoothUnavailable:
        self._up = False
        return BluetoothUnavailable(f"the radio model at {self._path} went away")

    async def read_loop(self) -> None:
        """Everything the air sends, until it hangs up (then :class:`BluetoothUnavailable`)."""
        try:
            while (message := await self._conn.receive()) is not None:
                await self._on(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        for link in self._links.values():
            link.on_lost()
        raise self._gone()

    async def _on(self, message: Message) -> None:
        op, fields = message.op, message.fields
        if op is Op.SIGHTINGS:
            self._answer(fields[0], fields[1])
        elif op is Op.CONNECTED:
            await self._connected(*fields)
        elif op is Op.CONNECT_FAILED:
            self._answer(fields[0], fields[1])
        elif op is Op.ACCEPTED:
            await self._accepted(*fields)
        elif op in (Op.FRAGMENT, Op.WROTE, Op.LOST):
            await self._on_link(op, fields)
        else:
            raise AirProtocolError(f"the air may not send {op.name} now")

    def _answer(self, request: int, answer: Any) -> bool:
        waiter = self._waiting.get(request)
        if waiter is None:
            return False  # the request gave up already
        waiter.send_nowait(answer)
        return True

    async def _connected(self, request: int, link_id: int, peer: str, mtu: int) -> None:
        link = self._links[link_id] = AirRadioLink(self, link_id, peer, mtu)
        if not self._answer(request, link):
            await link.aclose()

    async def _accepted(self, link_id: int, peer: str, mtu: int) -> None:
        link = self._links[link_id] = AirRadioLink(self, link_id, peer, mtu)
        try:
            self._inbound_send.send_nowait(link)
        except trio.WouldBlock:
            await link.aclose()

    async def _on_link(self, op: Op, fields: tuple[Any, ...]) -> None:
        link = self._links.get(fields[0])
        if link is None:
            return  # a link we closed; the air had not heard yet
        if op is Op.FRAGMENT:
            await link.on_fragment(fields[1])
        elif op is Op.WROTE:
            link.on_wrote()
        else:
            self.forget(fields[0])
            link.on_lost()


@asynccontextmanager
async def open_air_radio(path: str, address: str, *,
                         timeout: float = 30.0) -> AsyncIterator[AirRadio]:
    """Put a radio at ``address`` on the air served at ``path``, for the block.

    Raises :class:`~.ble_radio.BluetoothUnavailable` if no air answers there,
    or it refuses the address (taken, or the air is full).
    """
    if not address:
        raise BluetoothUnavailable("the radio model needs this device's radio address: set "
                                   "[ble] address to its name in the air's topology")
    conn = await _join(path, address, timeout)
    try:
        radio = AirRadio(conn, address, path, timeout)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(radio.read_loop)
            yield radio
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await conn.aclose()


async def _join(path: str, address: str, timeout: float) -> AirConnection:
    try:
        stream = await trio.open_unix_socket(path)
    except OSError:
        raise BluetoothUnavailable(
            f"no radio model listens at {path} (start one: python -m "
            f"islandrun.transports.ble_air --socket {path} --topology 'A<>B')") from None
    conn = AirConnection(stream)
    try:
        with trio.fail_after(timeout):
            await conn.send(Op.JOIN, address)
            answer = await conn.receive()
    except (trio.BrokenResourceError, trio.TooSlowError, AirProtocolError) as exc:
        answer = Message(Op.REFUSED, (f"no answer ({type(exc).__name__})",))
    if answer is None or answer.op is not Op.JOINED:
        await conn.aclose()
        reason = ("it hung up" if answer is None else answer.fields[0]
                  if answer.op is Op.REFUSED else f"it sent {answer.op.name}")
        raise BluetoothUnavailable(f"the radio model at {path} refused {address!r}: {reason}")
    return conn
