"""Which networks the node runs on: the LAN (libp2p), and Bluetooth LE beside it.

``islandnode run --ble`` (or ``[ble] enabled = true``) runs the BLE mesh
(``transports/ble.py``) next to the LAN and combines both in one
:class:`~islandrun.transports.multi.MultiTransport`, LAN first: a request to
a peer both reach goes over the LAN, falls back to BLE while the LAN does
not reach it, and goes back to the LAN when it does again
(``transports/linkchoice.py``). The node sees one transport.

The radio is the host's adapter (``[ble] adapter = "bleak"``,
``transports/ble_bleak.py``), or for tests and demos a radio model shared
by processes (``"sim:PATH"``, ``--ble-adapter sim:PATH``:
``transports/ble_radio_air.py``). A device without one gets a clear warning and
runs on the LAN only, or, with ``[ble] required = true``
(``--ble-required``), refuses to start. Tests pass their own radio opener
(the radio model, ``transports/ble_radio_memory.py``) in :class:`BleChoice`.

What this is not: the transports themselves, and not the choice of island
(WAVES); this module only opens and combines them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from nacl.signing import SigningKey

from islandrun.transports.base import IsAllowed, Transport
from islandrun.transports.ble import BleConfig, BleTransport, open_ble_transport
from islandrun.transports.ble_radio import BluetoothUnavailable, Radio
from islandrun.transports.ble_radio_air import open_air_radio, sim_path
from islandrun.transports.multi import open_multi_transport

from .config import BleSection

log = logging.getLogger("islandrun.node")

RadioOpener = Callable[[], AbstractAsyncContextManager[Radio]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BleChoice:
    """How the node runs BLE: its radio, whether it must, and the mesh settings."""

    #: Opens this device's radio (raises ``BluetoothUnavailable`` if none).
    open_radio: RadioOpener
    #: No radio: refuse to start (True) or run on the LAN only (False).
    required: bool = False
    config: BleConfig = field(default_factory=BleConfig)


@dataclass(frozen=True, slots=True)
class NodeTransports:
    """What the node runs on: ``transport`` for everything, ``lan`` for LAN discovery."""

    transport: Transport
    lan: Transport
    ble: BleTransport | None


def ble_choice(
    section: BleSection, *, enabled: bool, required: bool, adapter: str | None = None
) -> BleChoice | None:
    """The BLE choice from ``[ble]`` and the command line (flags only switch on;
    ``adapter`` replaces ``[ble] adapter`` and switches on too)."""
    if not (enabled or required or adapter or section.enabled or section.required):
        return None
    return BleChoice(open_radio=_radio_opener(section, adapter or section.adapter),
                     required=required or section.required)


def _radio_opener(section: BleSection, adapter: str) -> RadioOpener:
    air = sim_path(adapter)
    if air is not None:
        return partial(open_air_radio, air, section.address)
    from islandrun.transports.ble_bleak import BleakSettings, open_bleak_radio

    return partial(open_bleak_radio, BleakSettings(local_address=section.address or "local"))


@asynccontextmanager
async def open_node_transports(
    lan: AbstractAsyncContextManager[Transport],
    ble: BleChoice | None,
    key: SigningKey,
    is_allowed: IsAllowed,
    *,
    rng: random.Random,
) -> AsyncIterator[NodeTransports]:
    """Open the LAN and, if asked and possible, BLE beside it, for the block."""
    async with AsyncExitStack() as stack:
        on_lan = await stack.enter_async_context(lan)
        radio = None if ble is None else await _enter_radio(stack, ble)
        if ble is None or radio is None:
            yield NodeTransports(on_lan, on_lan, None)
            return
        on_ble = await stack.enter_async_context(
            open_ble_transport(key, radio, is_allowed, ble.config, rng=rng)
        )
        both = await stack.enter_async_context(open_multi_transport([on_lan, on_ble]))
        log.info("Bluetooth LE mesh up as %s (LAN preferred)", on_ble.addresses()[0])
        yield NodeTransports(both, on_lan, on_ble)


async def _enter_radio(stack: AsyncExitStack, ble: BleChoice) -> Radio | None:
    """The radio, or None (after a warning) if there is none and BLE is optional."""
    try:
        return await stack.enter_async_context(ble.open_radio())
    except BluetoothUnavailable as exc:
        if ble.required:
            raise BluetoothUnavailable(f"{exc}. Not starting: BLE is required") from None
        log.warning("Bluetooth LE off: %s. Running on the LAN only.", exc)
        return None
