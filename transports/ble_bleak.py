"""The real Bluetooth LE adapter: bleak as GATT central, bless as GATT peripheral.

This is the :class:`~.ble_radio.Radio` that :class:`~.ble.BleTransport` uses
on a machine with Bluetooth. It has NOT run on hardware in this project (the
build machines have no radio); it is importable, typed and follows the
libraries' documented APIs. See ``docs/ble.md`` for what was and was not run.

Roles:

* **peripheral (bless)** -- a GATT server with our service
  (:data:`~.ble_radio.SERVICE_UUID`): centrals write fragments to RX and
  subscribe to TX notifications. The rotating id travels in the advertised
  local name, ``"ir" + 16 hex digits`` (bless exposes no portable service
  data); changing it restarts the advertisement. bless does not say *which*
  central wrote, so all centrals connected to us share one inbound
  :class:`RadioLink` and every notification goes to all of them -- which a
  flooding mesh tolerates: packets are signed and deduplicated, and the
  fragment msg ids come from a random start per link.
* **central (bleak)** -- scanning filters on our service UUID; a link is a
  ``BleakClient`` writing RX without response and listening on TX.

Writes are paced: at most one fragment per ``write_interval`` seconds per
link (a connection event is 7.5-30 ms), since a write without response that
outruns the controller's buffers is silently dropped on some stacks.

Both libraries are asyncio; they run on an :class:`~.asyncio_bridge.AsyncioBridge`
thread, so asyncio never owns the process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import trio
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from .asyncio_bridge import AsyncioBridge, TrioInbox, open_asyncio_bridge
from .ble_ids import ROTATING_ID_LEN
from .ble_radio import (
    RX_CHAR_UUID,
    SERVICE_UUID,
    TX_CHAR_UUID,
    BluetoothUnavailable,
    LinkLost,
    Sighting,
)

try:  # bless is a declared dependency, but keep the central usable without it.
    from bless import BlessServer, GATTAttributePermissions, GATTCharacteristicProperties
except ImportError:  # pragma: no cover - depends on the installation
    BlessServer = None

_log = logging.getLogger(__name__)
NAME_PREFIX = "ir"
#: ATT_MTU 23 minus the 3-byte ATT header: what every BLE link supports.
MIN_PAYLOAD_MTU = 20
#: Fragments buffered from the asyncio thread before they are dropped.
INBOX_CAPACITY = 1024


@dataclass(frozen=True, slots=True)
class BleakSettings:
    """Knobs of the real adapter. Times in seconds."""

    scan_window: float = 3.0
    #: The scan at start that checks an adapter exists and is usable.
    probe_window: float = 0.5
    connect_timeout: float = 10.0
    #: Pacing: minimum time between two fragment writes on one link.
    write_interval: float = 0.0075
    #: Our adapter's address, for adverts (``bluetoothctl show``); bleak
    #: cannot read it portably.
    local_address: str = "local"


def advert_name(payload: bytes) -> str:
    """The advertised local name carrying a rotating id."""
    return NAME_PREFIX + payload.hex()


def payload_from_name(name: str | None) -> bytes | None:
    """The rotating id in an advertised name, or None if it is not ours."""
    if not name or not name.startswith(NAME_PREFIX):
        return None
    try:
        payload = bytes.fromhex(name[len(NAME_PREFIX) :])
    except ValueError:
        return None
    return payload if len(payload) == ROTATING_ID_LEN else None


class _Pacer:
    """At most one write per ``interval`` (trio time)."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = 0.0

    async def wait(self) -> None:
        await trio.sleep_until(max(self._next, trio.current_time()))
        self._next = trio.current_time() + self._interval


class BleakLink:
    """A central-side link: one ``BleakClient``."""

    def __init__(
        self,
        bridge: AsyncioBridge,
        client: BleakClient,
        inbox: TrioInbox[bytes | None],
        pace: float,
    ) -> None:
        self._bridge, self._client, self._inbox = bridge, client, inbox
        self._pacer = _Pacer(pace)

    @property
    def address(self) -> str:
        return str(self._client.address)

    @property
    def mtu(self) -> int:
        return max(MIN_PAYLOAD_MTU, int(self._client.mtu_size) - 3)

    async def write(self, fragment: bytes) -> None:
        await self._pacer.wait()
        try:
            await self._bridge.call(
                lambda: self._client.write_gatt_char(RX_CHAR_UUID, fragment, response=False)
            )
        except (BleakError, OSError, EOFError) as exc:
            raise LinkLost(f"BLE write failed: {type(exc).__name__}") from None

    async def receive(self) -> bytes:
        return await _next_fragment(self._inbox)

    async def aclose(self) -> None:
        with suppress(BleakError, OSError, EOFError):
            await self._bridge.call(self._client.disconnect)


class BlessLink:
    """The peripheral-side link: every central connected to our GATT server."""

    def __init__(
        self, radio: BleakRadio, inbox: TrioInbox[bytes | None], pace: float, address: str
    ) -> None:
        self._radio, self._inbox = radio, inbox
        self._pacer = _Pacer(pace)
        self._address = address

    @property
    def address(self) -> str:
        return self._address

    @property
    def mtu(self) -> int:
        return MIN_PAYLOAD_MTU  # bless does not report the negotiated MTU

    async def write(self, fragment: bytes) -> None:
        await self._pacer.wait()
        await self._radio.notify(fragment)

    async def receive(self) -> bytes:
        return await _next_fragment(self._inbox)

    async def aclose(self) -> None:
        self._inbox.close()
        await trio.lowlevel.checkpoint()


async def _next_fragment(inbox: TrioInbox[bytes | None]) -> bytes:
    try:
        fragment = await inbox.get()
    except (trio.EndOfChannel, trio.ClosedResourceError):
        raise LinkLost("the BLE link closed") from None
    if fragment is None:
        raise LinkLost("the BLE peer disconnected")
    return fragment


class BleakRadio:
    """A :class:`~.ble_radio.Radio` over the host's Bluetooth adapter."""

    def __init__(self, bridge: AsyncioBridge, settings: BleakSettings) -> None:
        self._bridge = bridge
        self._settings = settings
        self._server: Any = None
        self._advert: bytes | None = None
        self._inbound = trio.open_memory_channel[BlessLink](1)
        self._peripheral_inbox: TrioInbox[bytes | None] | None = None

    @property
    def address(self) -> str:
        return self._settings.local_address

    async def advertise(self, payload: bytes) -> None:
        if payload == self._advert:
            return
        if BlessServer is None:
            raise LinkLost("bless is not installed: this device cannot be a BLE peripheral")
        self._advert = payload
        await self._stop_server()
        self._server = await self._bridge.call(lambda: _start_server(advert_name(payload), self))

    async def scan(self) -> list[Sighting]:
        found = await self._bridge.call(
            lambda: BleakScanner.discover(
                timeout=self._settings.scan_window, return_adv=True, service_uuids=[SERVICE_UUID]
            )
        )
        sightings = []
        for address, (_, adv) in found.items():
            payload = payload_from_name(adv.local_name)
            if payload is not None:
                sightings.append(Sighting(str(address), payload, int(adv.rssi)))
        return sightings

    async def connect(self, address: str) -> BleakLink:
        inbox: TrioInbox[bytes | None] = TrioInbox(INBOX_CAPACITY)

        async def open_client() -> BleakClient:
            client = BleakClient(
                address,
                disconnected_callback=lambda _: inbox.post(None),
                timeout=self._settings.connect_timeout,
            )
            await client.connect()
            await client.start_notify(TX_CHAR_UUID, lambda _, data: inbox.post(bytes(data)))
            return client

        try:
            client = await self._bridge.call(open_client)
        except (BleakError, OSError, EOFError, TimeoutError) as exc:
            raise LinkLost(f"cannot connect over BLE: {type(exc).__name__}") from None
        return BleakLink(self._bridge, client, inbox, self._settings.write_interval)

    async def accept(self) -> BlessLink:
        return await self._inbound[1].receive()

    # -- used by the GATT server callbacks (asyncio thread) and links -----------

    def on_write(self, value: bytes) -> None:
        """A central wrote a fragment to RX (called on the asyncio thread)."""
        inbox = self._peripheral_inbox
        if inbox is not None:
            inbox.post(bytes(value))

    def open_peripheral_link(self) -> None:
        """Create the shared inbound link (trio thread, before the server starts)."""
        if self._peripheral_inbox is None:
            self._peripheral_inbox = TrioInbox(INBOX_CAPACITY)
            link = BlessLink(
                self, self._peripheral_inbox, self._settings.write_interval, "centrals"
            )
            self._inbound[0].send_nowait(link)

    async def notify(self, fragment: bytes) -> None:
        server = self._server
        if server is None:
            raise LinkLost("the GATT server is not running")

        async def update() -> None:
            server.get_characteristic(TX_CHAR_UUID).value = bytearray(fragment)
            server.update_value(SERVICE_UUID, TX_CHAR_UUID)

        await self._bridge.call(update)

    async def close(self) -> None:
        await self._stop_server()
        if self._peripheral_inbox is not None:
            self._peripheral_inbox.close()

    async def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                await self._bridge.call(server.stop)
            except (BleakError, OSError, EOFError):
                _log.debug("stopping the GATT server failed")


async def _start_server(name: str, radio: BleakRadio) -> Any:
    """Build and start our GATT server (runs on the asyncio thread)."""
    server = BlessServer(name=name)
    server.write_request_func = lambda _characteristic, value: radio.on_write(value)
    await server.add_new_service(SERVICE_UUID)
    await server.add_new_characteristic(
        SERVICE_UUID,
        RX_CHAR_UUID,
        GATTCharacteristicProperties.write | GATTCharacteristicProperties.write_without_response,
        None,
        GATTAttributePermissions.writeable,
    )
    await server.add_new_characteristic(
        SERVICE_UUID,
        TX_CHAR_UUID,
        GATTCharacteristicProperties.notify | GATTCharacteristicProperties.read,
        None,
        GATTAttributePermissions.readable,
    )
    await server.start()
    return server


async def _probe(bridge: AsyncioBridge, settings: BleakSettings) -> None:
    """One short scan: :class:`BluetoothUnavailable` if there is no usable adapter.

    bleak reports a missing adapter in several ways: no D-Bus system bus on
    Linux (``FileNotFoundError``), BlueZ without an adapter or with it
    powered off (``BleakBluetoothNotAvailableError``), no permission (other
    ``BleakError`` or ``OSError``).
    """
    try:
        await bridge.call(lambda: BleakScanner.discover(timeout=settings.probe_window))
    except (BleakError, OSError, EOFError) as exc:
        raise BluetoothUnavailable(
            f"no Bluetooth adapter was found ({type(exc).__name__}: {str(exc)[:120] or 'none'}); "
            "check that the device has one, that it is powered on (`bluetoothctl power on`) "
            "and, on Linux, that BlueZ and the D-Bus system bus are running"
        ) from None


@asynccontextmanager
async def open_bleak_radio(settings: BleakSettings = BleakSettings()) -> AsyncIterator[BleakRadio]:
    """The host's Bluetooth adapter as a :class:`~.ble_radio.Radio`.

    Raises :class:`~.ble_radio.BluetoothUnavailable` at once if the host has
    no usable adapter.

    Usage::

        async with open_bleak_radio() as radio, open_ble_transport(key, radio, allowed,
                                                                 rng=random.Random()) as ble:
            ...
    """
    async with open_asyncio_bridge() as bridge:
        await _probe(bridge, settings)
        radio = BleakRadio(bridge, settings)
        radio.open_peripheral_link()
        try:
            yield radio
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await radio.close()
