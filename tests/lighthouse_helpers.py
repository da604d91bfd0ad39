"""Builders shared by the LIGHTHOUSE tests: keys, adverts, signed adverts, tables."""

from __future__ import annotations

from typing import Any

from nacl.signing import SigningKey

from islandrun.node.lighthouse import Membership, seal_advert
from islandrun.node.lighthouse_config import TEST, LighthouseConfig
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.messages import Advert, ModelInfo

NOW = 1_800_000_000.0
ALICE = SigningKey(b"\x11" * 32)
BOB = SigningKey(b"\x12" * 32)
MALLORY = SigningKey(b"\x13" * 32)


def did(key: SigningKey) -> str:
    return device_id_from_public_key(bytes(key.verify_key))


def advert(key: SigningKey, **fields: Any) -> Advert:
    fields.setdefault("device_id", did(key))
    fields.setdefault("name", "laptop")
    fields.setdefault("capacity", 0.5)
    fields.setdefault("models", (ModelInfo(name="m", context=2048),))
    return Advert(**fields)


def signed(key: SigningKey, *, seq: int = 1, expires: float = NOW + 30, **fields: Any) -> bytes:
    """``key``'s advert, sealed as a node publishes it."""
    return seal_advert(key, advert(key, **fields), seq=seq, expires=expires)


def table(*paired: SigningKey, config: LighthouseConfig = TEST) -> Membership:
    """A table whose allowlist holds ``paired`` (ALICE and BOB by default)."""
    keys = paired or (ALICE, BOB)
    return Membership(config, frozenset(did(k) for k in keys).__contains__)
