"""The device identity: one Ed25519 key, bound to this device.

The same key is the device's libp2p identity (device id = libp2p peer id),
signs its envelopes, and -- converted to X25519 -- seals and opens payloads.
It never leaves the device: pairing pins the *public* key on other devices.

Key file format (``<home>/device.key``, mode 0600)::

    b"ISLANDRUN-KEY\\x01" | 32-byte Ed25519 seed | 8-byte BLAKE2b checksum

The checksum turns a truncated or bit-flipped file into a clear refusal
instead of a silently different identity. A key file that the group or
others can read is refused too, as OpenSSH does: the key may already be
copied, and the owner should know.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.sealing import Sealer

from .errors import KeyFileError
from .home import KEY_FILE, ensure_home, write_private

_MAGIC = b"ISLANDRUN-KEY\x01"
_SEED_LEN = 32
_SUM_LEN = 8
_FILE_LEN = len(_MAGIC) + _SEED_LEN + _SUM_LEN


def _checksum(seed: bytes) -> bytes:
    return hashlib.blake2b(seed, digest_size=_SUM_LEN, person=b"islandrun-key").digest()


@dataclass(frozen=True, slots=True)
class Identity:
    """A loaded device key and what derives from it."""

    key: SigningKey
    name: str

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def device_id(self) -> str:
        return device_id_from_public_key(self.public_key)

    def sealer(self) -> Sealer:
        return Sealer(self.key)

    def public_json(self) -> str:
        """What ``islandnode id --json`` prints: public facts only."""
        return json.dumps(
            {"device_id": self.device_id, "name": self.name, "public_key": self.public_key.hex()}
        )

    def __repr__(self) -> str:  # never show the key
        return f"Identity(device_id={self.device_id!r}, name={self.name!r})"


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def create_key(home: Path) -> SigningKey:
    """Generate a new device key in ``home``; refuses to overwrite one."""
    ensure_home(home)
    path = key_path(home)
    if path.exists():
        raise KeyFileError(
            f"{path} already exists; this device already has an identity "
            "(delete the file only if you mean to become a new device)"
        )
    key = SigningKey.generate()
    seed = bytes(key)
    write_private(path, _MAGIC + seed + _checksum(seed))
    return key


def load_key(home: Path) -> SigningKey:
    """Load and check the device key; every problem is a :class:`KeyFileError`."""
    path = key_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(
            f"no device key at {path}; run `islandnode init` to create one"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"{path} is not a regular file")
        if os.name == "posix" and mode & 0o077:
            raise KeyFileError(
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                f"run `chmod 600 {path}`, and consider the key exposed"
            )
        data = f.read(_FILE_LEN + 1)
    return _parse_key(path, data)


def _parse_key(path: Path, data: bytes) -> SigningKey:
    if len(data) != _FILE_LEN or not data.startswith(_MAGIC):
        what = "truncated" if len(data) < _FILE_LEN and _MAGIC.startswith(data[:14]) else "corrupt"
        raise KeyFileError(
            f"{path} is {what}; restore it from a backup, or move it away and run "
            "`islandnode init` to become a new device (you will need to pair again)"
        )
    seed = data[len(_MAGIC) : len(_MAGIC) + _SEED_LEN]
    if _checksum(seed) != data[-_SUM_LEN:]:
        raise KeyFileError(
            f"{path} is corrupt (checksum mismatch); restore it from a backup, or move it "
            "away and run `islandnode init` to become a new device"
        )
    return SigningKey(seed)
