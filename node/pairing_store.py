"""Pairing records: the devices this owner has paired, and their tiers.

``<home>/pairings.json`` (mode 0600) is the owner's local word on who may
join the mesh and how far each device is trusted. It is written only by
this device: by ``pair join`` / ``pair invite`` completing, by an
introduction from one of the owner's own (personal) devices, and by
``pair revoke``. Revoked devices stay listed with the revocation time, so a
revocation cannot be undone by a replayed introduction.

Trust and privacy of a paired device come from the owner's config for its
tier (``[trust.<tier>]``), optionally overridden for that one device when it
was paired -- never from anything the device says about itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from islandrun.protocol.ids import public_key_from_device_id
from islandrun.protocol.messages import TrustTier

from .config import TrustSection
from .errors import NodeError
from .home import write_private

PAIRINGS_FILE = "pairings.json"
MAX_PAIRINGS = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingRecord:
    device_id: str
    name: str
    tier: TrustTier
    paired_at: float
    #: How the device came to be trusted: "invite", "code" or "introduced by <id>".
    via: str
    #: Per-device overrides chosen by the owner; None: the tier's config.
    trust: float | None = None
    privacy: float | None = None
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class PairingStore:
    """The records, loaded from and saved to the node home."""

    def __init__(self, home: Path) -> None:
        self.path = home / PAIRINGS_FILE
        self._records: dict[str, PairingRecord] = self._load()

    def _load(self) -> dict[str, PairingRecord]:
        try:
            data = json.loads(self.path.read_text())
            records = {}
            for item in data["devices"][:MAX_PAIRINGS]:
                record = PairingRecord(**{**item, "tier": TrustTier(item["tier"])})
                public_key_from_device_id(record.device_id)
                records[record.device_id] = record
            return records
        except FileNotFoundError:
            return {}
        except Exception:  # any damage: refuse to guess who is trusted
            raise NodeError(
                f"{self.path} is damaged; restore it from a backup or delete it and pair again"
            ) from None

    def _save(self) -> None:
        devices = [{**asdict(r), "tier": r.tier.value} for r in self._records.values()]
        write_private(self.path, json.dumps({"devices": devices}, indent=1).encode())

    def get(self, device_id: str) -> PairingRecord | None:
        return self._records.get(device_id)

    def active(self) -> list[PairingRecord]:
        return [r for r in self._records.values() if r.active]

    def all(self) -> list[PairingRecord]:
        return list(self._records.values())

    def add(self, record: PairingRecord) -> bool:
        """Pin a device; False (and nothing changes) if it was revoked before."""
        old = self._records.get(record.device_id)
        if old is not None and not old.active:
            return False
        if old is None and len(self._records) >= MAX_PAIRINGS:
            raise NodeError(f"too many paired devices (limit {MAX_PAIRINGS}); revoke some first")
        self._records[record.device_id] = record
        self._save()
        return True

    def revoke(self, device_id: str, now: float) -> PairingRecord:
        record = self._records.get(device_id)
        if record is None:
            raise NodeError(f"{device_id[:64]} is not paired with this device (see `pair list`)")
        if record.active:
            record = replace(record, revoked_at=now)
            self._records[device_id] = record
            self._save()
        return record


def scores(record: PairingRecord, trust: TrustSection) -> tuple[float, float]:
    """``(trust, privacy)`` of a paired device from the owner's config (Eq. 2)."""
    tier = getattr(trust, record.tier.value)
    return (
        tier.trust if record.trust is None else min(record.trust, tier.trust),
        tier.privacy if record.privacy is None else record.privacy,
    )
