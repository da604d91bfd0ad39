"""Device ids: the libp2p peer id of a device's Ed25519 public key.

A device has one key, and that key is also its libp2p identity, so the
device id *is* the libp2p peer id (``12D3KooW...``). Computing it here,
without importing libp2p (which costs ~0.7 s and ~70 MB), keeps the protocol
package light; a test pins that the result equals libp2p's own ``ID``.

The peer id of an Ed25519 key is the base58btc "identity" multihash of the
protobuf-encoded public key: the key is short enough (36 bytes encoded) to be
inlined instead of hashed, which is also why it can be turned back into the
key (:func:`public_key_from_device_id`).
"""

from __future__ import annotations

from .errors import DecodeError

ED25519_KEY_LEN = 32
# protobuf PublicKey{Type: Ed25519 (1), Data: 32 bytes}
_PROTO_PREFIX = bytes([0x08, 0x01, 0x12, ED25519_KEY_LEN])
# identity multihash: code 0x00, digest length 36
_MULTIHASH_PREFIX = bytes([0x00, len(_PROTO_PREFIX) + ED25519_KEY_LEN])
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
# Base58 of 38 bytes is at most 52 characters; anything longer is not ours.
_MAX_ID_LEN = 64


def _b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        digit = _INDEX.get(ch)
        if digit is None:
            raise DecodeError("not a base58 device id", field="device_id")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def device_id_from_public_key(public_key: bytes) -> str:
    """The device id (libp2p peer id) for a raw 32-byte Ed25519 public key."""
    if len(public_key) != ED25519_KEY_LEN:
        raise DecodeError("an Ed25519 public key is 32 bytes", field="public_key")
    return _b58encode(_MULTIHASH_PREFIX + _PROTO_PREFIX + public_key)


def public_key_from_device_id(device_id: str) -> bytes:
    """The Ed25519 public key inlined in a device id; rejects anything else."""
    if not device_id or len(device_id) > _MAX_ID_LEN:
        raise DecodeError("not a device id", field="device_id")
    raw = _b58decode(device_id)
    head = _MULTIHASH_PREFIX + _PROTO_PREFIX
    if len(raw) != len(head) + ED25519_KEY_LEN or not raw.startswith(head):
        raise DecodeError("not an Ed25519 device id", field="device_id")
    return raw[len(head) :]


def short_id(device_id: str) -> str:
    """A short form for humans (like Syncthing's): the last 8 characters."""
    return device_id[-8:]
