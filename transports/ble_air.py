"""A radio model that real processes share: the air as a Unix-socket server.

These machines have no Bluetooth radio, and the radio model
(``ble_radio_memory``) lives inside one process. This module puts that model
-- one :class:`~.ble_radio_memory.RadioSpace`, with its range, MTU, link
rate, latency and loss -- behind a Unix domain socket, so that several
``islandnode run --ble --ble-adapter sim:PATH`` processes talk BLE to each
other through it. Each process joins with its radio address
(``ble_radio_air`` is the client); every radio operation it makes is
carried out on its :class:`~.ble_radio_memory.MemoryRadio` here, so the
model's rules apply unchanged. The topology (who hears whom, at what signal)
is fixed when the air starts::

    python -m islandrun.transports.ble_air --socket /tmp/t/air.sock \\
        --topology "a<>b,b<>c@-80" --mtu 20

A test or demo utility: the socket is created mode 0600 at a path that must
not exist yet, and everything is bounded (clients, links and dials per
client, frame size, time to join, time a client may stall a send). What
this is not: a radio, or a network service; nothing here listens on a port.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from islandrun.protocol.errors import IslandRunError

from .ble_air_wire import (
    MAX_ADDRESS,
    WRITE_WINDOW,
    AirConnection,
    AirProtocolError,
    Message,
    Op,
)
from .ble_radio import LinkLost
from .ble_radio_memory import STRONG_RSSI, Air, MemoryRadio, MemoryRadioLink, RadioSpace

_log = logging.getLogger(__name__)
#: AF_UNIX paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 100
#: Errors that end one client's session (and only it).
_SESSION_ENDS = (AirProtocolError, trio.BrokenResourceError, trio.ClosedResourceError,
                 trio.TooSlowError)


class AirError(IslandRunError):
    """The shared radio model cannot start as asked (bad topology or socket path)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AirLimits:
    """Bounds on what clients may cost the air. Times are in seconds."""

    #: Processes on the air at once; more are refused.
    max_clients: int = 32
    #: Links one client holds at once; further ones are closed at once.
    max_links: int = 64
    #: Dials one client has in flight; more fail at once.
    max_dials: int = 8
    #: A new connection must JOIN (or ask for STATS) within this.
    join_timeout: float = 5.0
    #: A client that stops reading for this long is dropped.
    send_timeout: float = 5.0


Pair = tuple[str, str, int]


def parse_topology(text: str) -> list[Pair]:
    """``"a<>b,b<>c@-80"``: a and b in range (strong signal), b and c at -80 dBm."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        ends, _, rssi = item.partition("@")
        a, sep, b = (end.strip() for end in ends.partition("<>"))
        if not sep or not _radio_name(a) or not _radio_name(b) or a == b:
            raise AirError(f"topology item {item!r}: write two different radio names as A<>B")
        try:
            strength = int(rssi) if rssi else STRONG_RSSI
        except ValueError:
            strength = 1
        if not -127 <= strength <= 0:
            raise AirError(f"topology item {item!r}: the signal is dBm from -127 to 0, e.g. @-80")
        pairs.append((a, b, strength))
    return pairs


def _radio_name(name: str) -> bool:
    return 0 < len(name) <= MAX_ADDRESS and name.isprintable() and not {"@", "<", ">"} & set(name)


def build_space(pairs: Sequence[Pair], air: Air, *, seed: int, scan_window: float = 0.5,
                connect_delay: float = 0.05) -> RadioSpace:
    """The air: a radio model with ``pairs`` in range."""
    space = RadioSpace(rng=random.Random(seed), air=air, scan_window=scan_window,
                       connect_delay=connect_delay)
    for a, b, rssi in pairs:
        space.set_range(a, b, True, rssi=rssi)
    return space


def statistics(space: RadioSpace) -> dict[str, int]:
    """What the air has carried so far."""
    return {"bytes_on_air": space.bytes_on_air, "payload_bytes": space.payload_bytes,
            "writes": space.writes, "lost": space.lost, "links": space.link_count()}


async def read_statistics(path: Path, *, timeout: float = 5.0) -> dict[str, int]:
    """Ask the air served at ``path`` what it has carried (``statistics``)."""
    with trio.fail_after(timeout):
        conn = AirConnection(await trio.open_unix_socket(os.fspath(path)))
        try:
            await conn.send(Op.STATS)
            answer = await conn.receive()
        finally:
            await conn.aclose()
    if answer is None or answer.op is not Op.STATISTICS:
        raise AirProtocolError("the air did not answer STATS")
    counters: dict[str, int] = answer.fields[0]
    return counters


class _Session:
    """One process on the air: its radio, and the links it holds by link id."""

    def __init__(self, conn: AirConnection, radio: MemoryRadio, limits: AirLimits,
                 nursery: trio.Nursery) -> None:
        self.conn, self.radio, self.limits, self.nursery = conn, radio, limits, nursery
        self.links: dict[int, MemoryRadioLink] = {}
        self.writers: dict[int, trio.MemorySendChannel[bytes]] = {}
        self.ids = itertools.count(1)
        self.scanning = False
        self.dials = 0

    async def serve(self) -> None:
        self.nursery.start_soon(self._accept_loop)
        while (message := await self.conn.receive()) is not None:
            await self._on(message)

    async def _on(self, message: Message) -> None:
        op, fields = message.op, message.fields
        if op is Op.ADVERTISE:
            await self.radio.advertise(fields[0])
        elif op is Op.SCAN and not self.scanning:
            self.scanning = True
            self.nursery.start_soon(self._scan, fields[0])
        elif op is Op.CONNECT:
            self.nursery.start_soon(self._dial, *fields)
        elif op is Op.WRITE:
            await self._write(*fields)
        elif op is Op.CLOSE and fields[0] in self.links:
            await self.links[fields[0]].aclose()
        elif op is not Op.CLOSE:
            raise AirProtocolError(f"a client may not send {op.name} now")

    async def _scan(self, request: int) -> None:
        sightings = await self.radio.scan()
        self.scanning = False
        await self.conn.send(Op.SIGHTINGS, request,
                             [[s.address, s.payload, s.rssi] for s in sightings])

    async def _dial(self, request: int, address: str) -> None:
        if self.dials >= self.limits.max_dials:
            await self.conn.send(Op.CONNECT_FAILED, request, "too many dials in flight")
            return
        self.dials += 1
        try:
            link = await self.radio.connect(address)
        except LinkLost as exc:
            await self.conn.send(Op.CONNECT_FAILED, request, str(exc))
            return
        finally:
            self.dials -= 1
        link_id = await self._admit(link)
        if link_id is None:
            await self.conn.send(Op.CONNECT_FAILED, request, "too many links")
            return
        await self.conn.send(Op.CONNECTED, request, link_id, link.address, link.mtu)
        self._start(link_id, link)

    async def _accept_loop(self) -> None:
        while True:
            link = await self.radio.accept()
            link_id = await self._admit(link)
            if link_id is not None:
                await self.conn.send(Op.ACCEPTED, link_id, link.address, link.mtu)
                self._start(link_id, link)

    async def _admit(self, link: MemoryRadioLink) -> int | None:
        if len(self.links) >= self.limits.max_links:
            await link.aclose()
            return None
        link_id = next(self.ids)
        self.links[link_id] = link
        return link_id

    def _start(self, link_id: int, link: MemoryRadioLink) -> None:
        # Started only after CONNECTED/ACCEPTED went out: the client knows
        # the link id before its first FRAGMENT.
        send, receive = trio.open_memory_channel[bytes](WRITE_WINDOW)
        self.writers[link_id] = send
        self.nursery.start_soon(self._pump, link_id, link)
        self.nursery.start_soon(self._writer, link_id, link, receive)

    async def _write(self, link_id: int, fragment: bytes) -> None:
        writer = self.writers.get(link_id)
        if writer is None:  # lost already; the client may not have heard yet
            await self.conn.send(Op.LOST, link_id)
            return
        try:
            writer.send_nowait(fragment)
        except trio.WouldBlock:
            raise AirProtocolError(f"over {WRITE_WINDOW} writes unanswered on a link") from None

    async def _pump(self, link_id: int, link: MemoryRadioLink) -> None:
        """Fragments the other side wrote, to this client, until the link breaks."""
        try:
            while True:
                await self.conn.send(Op.FRAGMENT, link_id, await link.receive())
        except LinkLost:
            await self._lost(link_id)

    async def _writer(self, link_id: int, link: MemoryRadioLink,
                      fragments: trio.MemoryReceiveChannel[bytes]) -> None:
        try:
            async for fragment in fragments:
                if len(fragment) > link.mtu:
                    raise AirProtocolError(f"a {len(fragment)}-byte write over a {link.mtu} MTU")
                await link.write(fragment)
                await self.conn.send(Op.WROTE, link_id)
        except LinkLost:
            await self._lost(link_id)

    async def _lost(self, link_id: int) -> None:
        self.links.pop(link_id, None)
        writer = self.writers.pop(link_id, None)
        if writer is not None:
            writer.close()
            await self.conn.send(Op.LOST, link_id)


class AirServer:
    """Serves one :class:`~.ble_radio_memory.RadioSpace` to the processes on it."""

    def __init__(self, space: RadioSpace, limits: AirLimits = AirLimits()) -> None:
        self.space = space
        self.limits = limits
        self._clients = 0

    async def serve(self, path: Path, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen at ``path`` (which must not exist) until cancelled; remove it then."""
        listener = await _listen(path)
        try:
            async with listener:
                task_status.started()
                await trio.serve_listeners(self._handle, [listener])
        finally:
            path.unlink(missing_ok=True)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = AirConnection(stream, send_timeout=self.limits.send_timeout)
        try:
            with trio.fail_after(self.limits.join_timeout):
                first = await conn.receive()
            await self._session(conn, first)
        except* _SESSION_ENDS as group:
            _log.info("a client left the air: %s", group.exceptions[0])
        finally:
            with trio.CancelScope(shield=True):
                await conn.aclose()

    async def _session(self, conn: AirConnection, first: Message | None) -> None:
        if first is None:
            return
        if first.op is Op.STATS:
            await conn.send(Op.STATISTICS, statistics(self.space))
            return
        if first.op is not Op.JOIN:
            raise AirProtocolError(f"expected JOIN, got {first.op.name}")
        if self._clients >= self.limits.max_clients:
            await conn.send(Op.REFUSED, f"the air is full ({self.limits.max_clients} radios)")
            return
        try:
            radio = self.space.radio(first.fields[0])
        except ValueError as exc:
            await conn.send(Op.REFUSED, str(exc))
            return
        self._clients += 1
        try:
            await conn.send(Op.JOINED)
            async with trio.open_nursery() as nursery:
                await _Session(conn, radio, self.limits, nursery).serve()
                nursery.cancel_scope.cancel()
        finally:
            self._clients -= 1
            self.space.remove(radio.address)


async def _listen(path: Path) -> trio.SocketListener:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise AirError(f"socket path {path} is too long (Unix sockets allow {MAX_SOCKET_PATH} "
                       "bytes); choose a shorter one")
    if path.exists():
        raise AirError(f"{path} exists; remove it or choose another socket path")
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(path))
        os.chmod(path, 0o600)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise AirError(f"cannot listen at {path}: {exc.strerror}") from None
    return trio.SocketListener(sock)


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    air, limits = Air(), AirLimits()
    p = argparse.ArgumentParser(
        prog="python -m islandrun.transports.ble_air",
        description="Run a shared Bluetooth LE radio model on a Unix socket, for tests and "
                    "demos: `islandnode run --ble --ble-adapter sim:PATH` processes (each with "
                    "its [ble] address) talk BLE through it.")
    p.add_argument("--socket", required=True, type=Path, help="Unix socket path (must not exist)")
    p.add_argument("--topology", default="", metavar="A<>B,B<>C@-80",
                   help="pairs of radio addresses in range, with an optional signal in dBm")
    p.add_argument("--mtu", type=int, default=air.mtu, help="payload bytes per write")
    p.add_argument("--rate", type=float, default=air.rate_bps, help="link rate, bit/s")
    p.add_argument("--latency", type=float, default=air.latency, help="one-way seconds")
    p.add_argument("--loss", type=float, default=air.loss, help="fragment loss probability")
    p.add_argument("--seed", type=int, default=0, help="seed of the loss draws")
    p.add_argument("--scan-window", type=float, default=0.5, help="seconds per scan")
    p.add_argument("--max-clients", type=int, default=limits.max_clients)
    return p


async def _run(args: argparse.Namespace) -> None:
    try:
        air = Air(mtu=args.mtu, rate_bps=args.rate, latency=args.latency, loss=args.loss)
    except ValueError as exc:
        raise AirError(str(exc)) from None
    space = build_space(parse_topology(args.topology), air, seed=args.seed,
                        scan_window=args.scan_window)
    server = AirServer(space, AirLimits(max_clients=max(1, args.max_clients)))
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, args.socket)
            print(f"air up at {args.socket}", file=sys.stderr, flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    print(json.dumps(statistics(space)), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        trio.run(_run, args)
    except AirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
