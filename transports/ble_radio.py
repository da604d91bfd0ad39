"""The link layer a BLE transport needs: the ``Radio`` interface.

:class:`~.ble.BleTransport` runs over anything that offers these few
operations, so the same mesh code runs over a real Bluetooth adapter
(``ble_bleak``: bleak as GATT central, bless as GATT peripheral) and over
the radio model of the tests and the simulator (``ble_radio_memory``).

* **advertise / scan** -- put a few bytes (our rotating id) on the air and
  hear who else is advertising our service nearby;
* **connect / accept** -- open a link to an advertiser (central role) and
  take links others opened to us (peripheral role);
* a :class:`RadioLink` moves *fragments*: each :meth:`RadioLink.write` is
  one GATT write or notification of at most :attr:`RadioLink.mtu` bytes,
  delivered in order while the link lives. Writes are paced: ``write``
  returns when the radio can take the next one.

A link that breaks (out of range, the peer went away) raises
:class:`LinkLost` from ``write`` and ``receive``. What this is not:
fragmentation, relaying or streams -- those are the transport's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .base import TransportError

#: Our GATT service and its two characteristics (random UUIDs, ours alone):
#: a central writes fragments to RX and receives fragments as TX notifications.
SERVICE_UUID = "5d8e0f6a-2f0b-4c1e-9a57-3b1f6c4e7a01"
RX_CHAR_UUID = "5d8e0f6a-2f0b-4c1e-9a57-3b1f6c4e7a02"
TX_CHAR_UUID = "5d8e0f6a-2f0b-4c1e-9a57-3b1f6c4e7a03"
#: Bytes one write costs on the air besides its fragment: LL header (2),
#: L2CAP header (4), ATT opcode and handle (3), MIC-less CRC (3), access
#: address (4), preamble (1). A fact of BLE, used by the radio model and by
#: the node's link-time estimate alike.
WRITE_OVERHEAD = 17


class LinkLost(TransportError):
    """The radio link broke (out of range, or the other side went away)."""


class BluetoothUnavailable(TransportError):
    """This device has no usable Bluetooth adapter (none, powered off, no permission)."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advertisement heard while scanning."""

    address: str  # the advertiser's radio address (rotates on phones)
    payload: bytes  # its service data: our rotating id
    rssi: int  # received signal strength, dBm


class RadioLink(Protocol):
    """One connection to a nearby device, moving fragments both ways."""

    @property
    def address(self) -> str:
        """The radio address of the other side."""
        ...

    @property
    def mtu(self) -> int:
        """Largest fragment one write may carry, in bytes (ATT_MTU - 3)."""
        ...

    async def write(self, fragment: bytes) -> None:
        """Send one fragment; returns when the next may be written."""
        ...

    async def receive(self) -> bytes:
        """The next fragment from the other side."""
        ...

    async def aclose(self) -> None:
        """Disconnect; idempotent."""
        ...


class Radio(Protocol):
    """A Bluetooth LE adapter, as the mesh uses it."""

    @property
    def address(self) -> str:
        """Our radio address."""
        ...

    async def advertise(self, payload: bytes) -> None:
        """Advertise our service with ``payload`` (replaces the last one)."""
        ...

    async def scan(self) -> list[Sighting]:
        """Listen for one scan window; the adverts of our service heard."""
        ...

    async def connect(self, address: str) -> RadioLink:
        """Open a link to ``address`` (central role); :class:`LinkLost` if it fails."""
        ...

    async def accept(self) -> RadioLink:
        """The next link another device opened to us (peripheral role)."""
        ...
