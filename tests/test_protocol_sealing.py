from __future__ import annotations

import msgpack
import pytest
from nacl.signing import SigningKey

from islandrun.protocol.errors import SealError
from islandrun.protocol.sealing import Sealer

ALICE, BOB, EVE = (Sealer(SigningKey(bytes([i]) * 32)) for i in (1, 2, 3))
SECRET = b"patient Jane Roe, DOB 1970-01-01"


def test_round_trip_authenticates_sender() -> None:
    sealed = ALICE.seal(BOB.public_key, SECRET)
    assert SECRET not in sealed
    assert BOB.open(sealed) == (ALICE.public_key, SECRET)


def test_only_the_recipient_can_open() -> None:
    with pytest.raises(SealError):
        EVE.open(ALICE.seal(BOB.public_key, SECRET))


def test_relay_cannot_alter() -> None:
    outer = msgpack.unpackb(ALICE.seal(BOB.public_key, SECRET))
    box = bytearray(outer["box"])
    box[-1] ^= 1
    outer["box"] = bytes(box)
    with pytest.raises(SealError, match="altered"):
        BOB.open(msgpack.packb(outer))


def test_relay_cannot_claim_another_sender() -> None:
    outer = msgpack.unpackb(ALICE.seal(BOB.public_key, SECRET))
    outer["from"] = EVE.public_key
    with pytest.raises(SealError):
        BOB.open(msgpack.packb(outer))


def test_reflection_back_to_sender_is_refused() -> None:
    sealed = ALICE.seal(BOB.public_key, SECRET)
    outer = msgpack.unpackb(sealed)
    outer["from"] = BOB.public_key  # pretend Bob sent it to Alice
    with pytest.raises(SealError, match="another device"):
        ALICE.open(msgpack.packb(outer))


def test_expected_sender_enforced() -> None:
    with pytest.raises(SealError, match="different device"):
        BOB.open(ALICE.seal(BOB.public_key, SECRET), expected_sender=EVE.public_key)


@pytest.mark.parametrize("data", [b"", b"\x80", msgpack.packb({"v": 1, "from": 3, "box": b""})])
def test_malformed(data: bytes) -> None:
    with pytest.raises(SealError):
        BOB.open(data)


def test_invalid_recipient_key() -> None:
    with pytest.raises(SealError):
        ALICE.seal(b"\xff" * 32, SECRET)
