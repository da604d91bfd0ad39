"""A Bluetooth LE radio model: the :class:`~.ble_radio.Radio` of tests and the simulator.

These machines have no Bluetooth radio, so the BLE transport's framing,
relaying and store-and-forward run over this model instead. A
:class:`RadioSpace` is the air: devices join it with :meth:`RadioSpace.radio`
and the test says who is in range of whom (:meth:`RadioSpace.set_range`,
:meth:`RadioSpace.chain`, each pair with the signal strength its scans
report), and how the air behaves (:class:`Air`):

* **MTU** -- the largest fragment one write carries (20 bytes with the
  default ATT MTU of 23; 244 with LE Data Length Extension);
* **link rate** -- the application throughput of one link, in bit/s; each
  write holds the link for ``(fragment + per-write overhead) * 8 / rate``
  seconds, which is what paces writes;
* **latency** -- one-way delay added to every fragment;
* **loss** -- the probability that one fragment (or one advert sighting) is
  lost, drawn from the space's seeded ``random.Random``.

Going out of range breaks every link between the two devices (both ends
get :class:`~.ble_radio.LinkLost`); :meth:`RadioSpace.remove` takes a
device off the air entirely (its battery died). Counters
(:attr:`RadioSpace.bytes_on_air` and friends) measure what the mesh cost.

Pure trio, reading only ``trio.current_time()``: it runs under
``trio.testing.MockClock``. Buffers are bounded; a full receive buffer
holds the writer (link-layer flow control).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .ble_radio import WRITE_OVERHEAD, LinkLost, Sighting

#: Signal strength scans report for a pair in range, unless the test says (dBm).
STRONG_RSSI = -60


@dataclass(frozen=True, slots=True)
class Air:
    """How the air between two devices in range behaves."""

    mtu: int = 244  # bytes per fragment
    rate_bps: float = 1_000_000.0  # bits per second on one link
    latency: float = 0.0  # seconds, one way, per fragment
    loss: float = 0.0  # probability a fragment or a sighting is lost

    def __post_init__(self) -> None:
        if self.mtu < 8 or not self.rate_bps > 0:
            raise ValueError("mtu must be >= 8 bytes and rate_bps > 0")
        if self.latency < 0 or not math.isfinite(self.latency) or not 0 <= self.loss <= 1:
            raise ValueError("latency must be finite and >= 0, loss a probability")

    def airtime(self, size: int) -> float:
        return (size + WRITE_OVERHEAD) * 8 / self.rate_bps


class _Pipe:
    """One link's shared state: broken once either side leaves range."""

    def __init__(self, a: str, b: str) -> None:
        self.ends = frozenset((a, b))
        self.broken = False


class MemoryRadioLink:
    """One end of a link in the model (a :class:`~.ble_radio.RadioLink`)."""

    def __init__(
        self,
        space: RadioSpace,
        pipe: _Pipe,
        local: str,
        peer: str,
        send: trio.MemorySendChannel[tuple[float, bytes]],
        receive: trio.MemoryReceiveChannel[tuple[float, bytes]],
    ) -> None:
        self._space, self._pipe = space, pipe
        self._local, self._peer = local, peer
        self._send, self._receive = send, receive

    @property
    def address(self) -> str:
        return self._peer

    @property
    def mtu(self) -> int:
        return self._space.air.mtu

    async def write(self, fragment: bytes) -> None:
        if len(fragment) > self.mtu:
            raise ValueError(f"a {len(fragment)}-byte write exceeds the {self.mtu}-byte MTU")
        self._check()
        air = self._space.air
        await trio.sleep(air.airtime(len(fragment)))
        self._check()
        self._space.count_write(fragment)
        if self._space.lose():
            return
        try:
            await self._send.send((trio.current_time() + air.latency, bytes(fragment)))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise LinkLost("the link broke") from None

    async def receive(self) -> bytes:
        try:
            deliver_at, fragment = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkLost("the link broke") from None
        await trio.sleep_until(deliver_at)
        self._check()
        return fragment

    async def aclose(self) -> None:
        self._space.break_pipe(self._pipe)
        await trio.lowlevel.checkpoint()

    def close_channels(self) -> None:
        self._send.close()
        self._receive.close()

    def _check(self) -> None:
        if self._pipe.broken:
            raise LinkLost("the link broke (out of range, or the peer went away)")


class MemoryRadio:
    """One device's radio in a :class:`RadioSpace` (a :class:`~.ble_radio.Radio`)."""

    def __init__(self, space: RadioSpace, address: str) -> None:
        self._space = space
        self._address = address
        self.advert: bytes | None = None
        self._inbound_send, self._inbound = trio.open_memory_channel[MemoryRadioLink](16)

    @property
    def address(self) -> str:
        return self._address

    async def advertise(self, payload: bytes) -> None:
        self.advert = bytes(payload)
        await trio.lowlevel.checkpoint()

    async def scan(self) -> list[Sighting]:
        await trio.sleep(self._space.scan_window)
        return self._space.sightings(self._address)

    async def connect(self, address: str) -> MemoryRadioLink:
        await trio.sleep(self._space.connect_delay)
        return self._space.open_link(self._address, address)

    async def accept(self) -> MemoryRadioLink:
        return await self._inbound.receive()

    def offer(self, link: MemoryRadioLink) -> bool:
        try:
            self._inbound_send.send_nowait(link)
        except trio.WouldBlock:
            return False
        return True


class RadioSpace:
    """The air: which radios exist, who hears whom, and what it all cost."""

    def __init__(
        self,
        *,
        rng: random.Random,
        air: Air = Air(),
        scan_window: float = 0.5,
        connect_delay: float = 0.05,
        link_buffer: int = 256,
    ) -> None:
        self._rng = rng
        self.air = air
        self.scan_window = scan_window
        self.connect_delay = connect_delay
        self._link_buffer = link_buffer
        self._radios: dict[str, MemoryRadio] = {}
        self._range: dict[frozenset[str], int] = {}  # pairs in range: their RSSI
        self._links: dict[_Pipe, tuple[MemoryRadioLink, MemoryRadioLink]] = {}
        self.bytes_on_air = 0  # fragment bytes plus per-write overhead
        self.payload_bytes = 0  # fragment bytes only
        self.writes = 0
        self.lost = 0
        #: Set to a list to record every fragment put on the air (a sniffer).
        self.sniff: list[bytes] | None = None

    def radio(self, address: str) -> MemoryRadio:
        """Put a new radio on the air at ``address``."""
        if address in self._radios:
            raise ValueError(f"radio {address!r} is already on the air")
        radio = self._radios[address] = MemoryRadio(self, address)
        return radio

    def remove(self, address: str) -> None:
        """Take a radio off the air (battery dead): its links break."""
        self._radios.pop(address, None)
        self._break_where(lambda ends: address in ends)

    def set_range(self, a: str, b: str, in_range: bool, *, rssi: int = STRONG_RSSI) -> None:
        """Whether ``a`` and ``b`` hear each other (at ``rssi`` dBm); leaving range
        breaks their links."""
        pair = frozenset((a, b))
        if in_range:
            self._range[pair] = rssi
        else:
            self._range.pop(pair, None)
            self._break_where(lambda ends: ends == pair)

    def chain(self, addresses: list[str], *, rssi: int = STRONG_RSSI) -> None:
        """Place radios in a line: each hears only the one before and after."""
        for a, b in itertools.pairwise(addresses):
            self.set_range(a, b, True, rssi=rssi)

    def in_range(self, a: str, b: str) -> bool:
        return a != b and frozenset((a, b)) in self._range

    def link_count(self) -> int:
        return len(self._links)

    # -- used by radios and links ------------------------------------------

    def sightings(self, scanner: str) -> list[Sighting]:
        return [
            Sighting(address, radio.advert, self._range[frozenset((scanner, address))])
            for address, radio in sorted(self._radios.items())
            if radio.advert is not None and self.in_range(scanner, address) and not self.lose()
        ]

    def open_link(self, local: str, peer: str) -> MemoryRadioLink:
        if local not in self._radios or peer not in self._radios or not self.in_range(local, peer):
            raise LinkLost(f"radio {peer!r} is not in range")
        pipe = _Pipe(local, peer)
        there_send, there_receive = trio.open_memory_channel[tuple[float, bytes]](self._link_buffer)
        back_send, back_receive = trio.open_memory_channel[tuple[float, bytes]](self._link_buffer)
        ours = MemoryRadioLink(self, pipe, local, peer, there_send, back_receive)
        theirs = MemoryRadioLink(self, pipe, peer, local, back_send, there_receive)
        if not self._radios[peer].offer(theirs):
            raise LinkLost(f"radio {peer!r} is not accepting links")
        self._links[pipe] = (ours, theirs)
        return ours

    def break_pipe(self, pipe: _Pipe) -> None:
        pipe.broken = True
        for end in self._links.pop(pipe, ()):
            end.close_channels()

    def count_write(self, fragment: bytes) -> None:
        self.writes += 1
        self.payload_bytes += len(fragment)
        self.bytes_on_air += len(fragment) + WRITE_OVERHEAD
        if self.sniff is not None:
            self.sniff.append(fragment)

    def lose(self) -> bool:
        lost = bool(self.air.loss) and self._rng.random() < self.air.loss
        self.lost += lost
        return lost

    def _break_where(self, doomed: Callable[[frozenset[str]], bool]) -> None:
        for pipe in [p for p in self._links if doomed(p.ends)]:
            self.break_pipe(pipe)
