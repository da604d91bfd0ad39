"""End-to-end sealed payloads between two devices.

A request travels from the device in the user's hand to the island WAVES
chose, possibly through relays (a BLE hop, a libp2p relay). Sealing makes
those relays blind and powerless: the payload is encrypted to the recipient's
X25519 key and authenticated as coming from the sender (NaCl ``Box``:
X25519 + XSalsa20-Poly1305), so a relay can neither read nor alter it.

Both X25519 keys are the Ed25519 device keys converted (the standard
birational map), so a device has one key pair for signing, libp2p identity
and sealing. The sealed plaintext names the recipient, so a message sealed
from A to B cannot be reflected back to A as if B had sent it (``Box`` keys
are symmetric between the two parties).

Wire form: msgpack ``{"v": 1, "from": sender Ed25519 key, "box": nonce+ciphertext}``.
"""

from __future__ import annotations

from functools import lru_cache

import msgpack
from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from .errors import DecodeError, SealError
from .messages import unpack

SEAL_VERSION = 1
#: Bound on a sealed payload: a request plus framing overhead.
MAX_SEALED_SIZE = 8 * 1024 * 1024


def x25519_public(ed25519_public: bytes) -> PublicKey:
    """The X25519 form of an Ed25519 public key; ``SealError`` if invalid."""
    try:
        return VerifyKey(ed25519_public).to_curve25519_public_key()
    except (CryptoError, ValueError, TypeError):
        raise SealError("not a valid Ed25519 public key") from None


@lru_cache(maxsize=1024)
def _box(own_seed: bytes, peer_public: bytes) -> Box:
    # Box precomputes the shared key (one X25519 operation); caching it per
    # peer makes sealing cost only the symmetric cipher on the hot path.
    own = SigningKey(own_seed).to_curve25519_private_key()
    return Box(PrivateKey(bytes(own)), x25519_public(peer_public))


class Sealer:
    """Seals to and opens from peers with one device key."""

    def __init__(self, key: SigningKey) -> None:
        self._seed = bytes(key)
        self.public_key = bytes(key.verify_key)

    def seal(self, recipient_public: bytes, payload: bytes) -> bytes:
        """Encrypt ``payload`` to ``recipient_public`` (an Ed25519 key)."""
        inner = msgpack.packb({"to": recipient_public, "p": payload}, use_bin_type=True)
        box = _box(self._seed, bytes(recipient_public)).encrypt(inner)
        return msgpack.packb(
            {"v": SEAL_VERSION, "from": self.public_key, "box": bytes(box)}, use_bin_type=True
        )

    def open(
        self,
        sealed: bytes,
        *,
        expected_sender: bytes | None = None,
        max_size: int = MAX_SEALED_SIZE,
    ) -> tuple[bytes, bytes]:
        """Decrypt and authenticate; returns ``(sender_public_key, payload)``."""
        outer = _map(sealed, max_size)
        sender, box = outer.get("from"), outer.get("box")
        if outer.get("v") != SEAL_VERSION or type(sender) is not bytes or type(box) is not bytes:
            raise SealError("not a sealed payload")
        if expected_sender is not None and sender != expected_sender:
            raise SealError("sealed by a different device than the sending peer")
        try:
            inner = _box(self._seed, sender).decrypt(box)
        except (CryptoError, ValueError):
            raise SealError("cannot open: altered, or not sealed to this device") from None
        body = _map(inner, max_size)
        if body.get("to") != self.public_key or type(body.get("p")) is not bytes:
            raise SealError("sealed for another device")
        return sender, body["p"]


def _map(data: bytes, max_size: int) -> dict:
    try:
        value = unpack(data, max_size=max_size)
    except DecodeError as exc:
        raise SealError(f"malformed sealed payload: {exc}") from None
    if type(value) is not dict:
        raise SealError("malformed sealed payload")
    return value
