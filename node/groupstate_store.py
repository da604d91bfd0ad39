"""The group state at rest: one file, encrypted with a key derived from the device key.

``<home>/groupstate.bin`` (mode 0600, written atomically) holds this
device's replica of the personal group's state (``groupstate``):
conversations, their placeholder vaults, policy, spend and revocations. It
is encrypted and authenticated with NaCl ``SecretBox`` (XSalsa20-Poly1305)
under a key derived from the device's Ed25519 seed with keyed BLAKE2b
(domain-separated by its ``person`` string), so a copy of the file without
the device key reveals nothing, and an altered file is refused rather than
half-read.

File format: ``b"ISLANDRUN-GS\\x01"`` | SecretBox nonce + ciphertext.

What it is not: no merging or syncing (``groupstate``, ``groupsync``), and
no clock. Saving takes bytes, so callers serialise on the event loop and
write in a worker thread.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from islandrun.protocol.errors import DecodeError

from .errors import NodeError
from .groupstate import GroupState
from .home import write_private

STATE_FILE = "groupstate.bin"
_MAGIC = b"ISLANDRUN-GS\x01"


class GroupStoreError(NodeError):
    """The stored group state cannot be read."""


def state_key(device_key: SigningKey) -> bytes:
    """The at-rest key: keyed BLAKE2b of the device seed, for this purpose only."""
    return hashlib.blake2b(b"group state at rest", key=bytes(device_key), digest_size=32,
                           person=b"islandrun-gs-key").digest()


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def encrypt_state(device_key: SigningKey, plain: bytes) -> bytes:
    return _MAGIC + bytes(SecretBox(state_key(device_key)).encrypt(plain))


def save_state(home: Path, device_key: SigningKey, plain: bytes) -> None:
    """Encrypt ``plain`` (``GroupState.to_bytes()``) and write it, mode 0600."""
    write_private(state_path(home), encrypt_state(device_key, plain))


def load_state(home: Path, me: str, device_key: SigningKey) -> GroupState:
    """This device's replica (empty if none was saved yet)."""
    path = state_path(home)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return GroupState(me, device_key)
    except OSError as exc:
        raise GroupStoreError(f"cannot read {path}: {exc.strerror}") from None
    damaged = (f"{path} cannot be opened with this device's key (damaged, or from another "
               "device); move it away and the state syncs back from your other devices")
    if not data.startswith(_MAGIC):
        raise GroupStoreError(damaged)
    try:
        plain = SecretBox(state_key(device_key)).decrypt(data[len(_MAGIC):])
        return GroupState.from_bytes(plain, me, device_key)
    except (CryptoError, ValueError, DecodeError):
        raise GroupStoreError(damaged) from None
