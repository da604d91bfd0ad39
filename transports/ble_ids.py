"""Rotating short identifiers for BLE advertisements (pure).

A BLE advertisement is broadcast in the clear to everyone in range, several
times a second. If it carried a device id, any stranger with a scanner could
follow a phone around. So, like the Bluetooth "resolvable private address",
an advert carries an 8-byte *rotating id* instead::

    rotating_id = HMAC-SHA256(irk, "islandrun/ble-rid/1" | epoch)[:8]

where ``epoch = floor(now / epoch_s)`` and ``irk`` is the device's
*identity resolving key*: a 16-byte secret derived from its device key
(:func:`derive_irk`) and handed to a device only when pairing. A paired
device holding the irk computes the same id for the current epoch and so
recognises its friend (:class:`IdResolver`); a stranger sees a fresh,
unlinkable 8-byte value every epoch.

Clocks on two phones disagree, so resolution also tries the neighbouring
epochs (``skew_epochs``). The full, signed advert (battery, models, ...) is
exchanged over the link once connected; only this id is on the air.

What this is not: pairing (how the irk travels is the pairing module's
business) or any I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from collections.abc import Mapping

ROTATING_ID_LEN = 8
IRK_LEN = 16
#: Default epoch: 15 minutes, the order of the rotation period phones use
#: for resolvable private addresses.
EPOCH_S = 900.0
_IRK_LABEL = b"islandrun/ble-irk/1"
_RID_LABEL = b"islandrun/ble-rid/1"


def derive_irk(device_seed: bytes) -> bytes:
    """The identity resolving key of a device, from its 32-byte key seed."""
    if len(device_seed) != 32:
        raise ValueError("a device key seed is 32 bytes")
    return hmac.new(device_seed, _IRK_LABEL, hashlib.sha256).digest()[:IRK_LEN]


def epoch_of(now: float, epoch_s: float = EPOCH_S) -> int:
    """The rotation epoch ``now`` (Unix seconds) falls in."""
    if not epoch_s > 0 or not math.isfinite(now):
        raise ValueError("epoch length must be > 0 and now a finite time")
    return math.floor(now / epoch_s)


def rotating_id(irk: bytes, epoch: int) -> bytes:
    """The id a device with ``irk`` advertises during ``epoch``."""
    if len(irk) != IRK_LEN:
        raise ValueError(f"an irk is {IRK_LEN} bytes")
    message = _RID_LABEL + struct.pack(">q", epoch)
    return hmac.new(irk, message, hashlib.sha256).digest()[:ROTATING_ID_LEN]


class IdResolver:
    """Recognises paired devices' rotating ids; strangers' ids resolve to None."""

    def __init__(
        self, irks: Mapping[str, bytes], *, epoch_s: float = EPOCH_S, skew_epochs: int = 1
    ) -> None:
        if skew_epochs < 0:
            raise ValueError("skew_epochs must be >= 0")
        self._irks = dict(irks)
        self._epoch_s = epoch_s
        self._skew = skew_epochs
        self._table: dict[bytes, str] = {}
        self._table_epoch: int | None = None

    def resolve(self, rid: bytes, now: float) -> str | None:
        """The device id behind ``rid`` at time ``now``, if it is a paired device's."""
        epoch = epoch_of(now, self._epoch_s)
        if epoch != self._table_epoch:
            self._table = self._build(epoch)
            self._table_epoch = epoch
        return self._table.get(bytes(rid))

    def _build(self, epoch: int) -> dict[bytes, str]:
        table: dict[bytes, str] = {}
        for device_id, irk in self._irks.items():
            for e in range(epoch - self._skew, epoch + self._skew + 1):
                table[rotating_id(irk, e)] = device_id
        return table
