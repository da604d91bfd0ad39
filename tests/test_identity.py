from __future__ import annotations

import os
from pathlib import Path

import pytest

from islandrun.node import identity
from islandrun.node.errors import KeyFileError
from islandrun.node.home import ENV_HOME, resolve_home
from islandrun.protocol.ids import public_key_from_device_id


def test_key_file_is_private(home: Path) -> None:
    path = identity.key_path(home)
    assert path.stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o077 == 0


def test_key_round_trips(home: Path) -> None:
    key = identity.load_key(home)
    assert identity.load_key(home) == key
    ident = identity.Identity(key=key, name="n")
    assert public_key_from_device_id(ident.device_id) == ident.public_key


def test_refuses_to_overwrite(home: Path) -> None:
    with pytest.raises(KeyFileError, match="already exists"):
        identity.create_key(home)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_readable_by_others_is_refused(home: Path, mode: int) -> None:
    identity.key_path(home).chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        identity.load_key(home)


def test_missing_key_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="islandnode init"):
        identity.load_key(tmp_path)


@pytest.mark.parametrize("keep", [0, 5, 20, 50])
def test_truncated_key_is_refused(home: Path, keep: int) -> None:
    path = identity.key_path(home)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(KeyFileError, match="truncated"):
        identity.load_key(home)


@pytest.mark.parametrize("offset", [0, 20, -1])
def test_corrupt_key_is_refused(home: Path, offset: int) -> None:
    path = identity.key_path(home)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(KeyFileError, match="corrupt"):
        identity.load_key(home)


def test_symlinked_key_is_refused(home: Path, tmp_path: Path) -> None:
    path = identity.key_path(home)
    target = tmp_path / "elsewhere.key"
    path.rename(target)
    path.symlink_to(target)
    with pytest.raises(KeyFileError):
        identity.load_key(home)


def test_device_id_is_the_libp2p_peer_id(home: Path) -> None:
    from libp2p.crypto.ed25519 import Ed25519PublicKey
    from libp2p.peer.id import ID

    ident = identity.Identity(key=identity.load_key(home), name="n")
    peer_id = ID.from_pubkey(Ed25519PublicKey.from_bytes(ident.public_key))
    assert peer_id.to_base58() == ident.device_id
    assert ident.device_id.startswith("12D3KooW")


def test_repr_never_shows_the_key(home: Path) -> None:
    key = identity.load_key(home)
    ident = identity.Identity(key=key, name="n")
    assert bytes(key).hex() not in repr(ident)
    assert bytes(key).hex() not in ident.public_json()


def test_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "env"))
    assert resolve_home(None) == tmp_path / "env"
    assert resolve_home(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv(ENV_HOME)
    assert "islandrun" in str(resolve_home(None))
    assert os.fspath(resolve_home(None)) != os.fspath(tmp_path)
