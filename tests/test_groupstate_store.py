"""The group state at rest (node/groupstate_store.py): encrypted, 0600, refuses damage."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from islandrun.node.groupstate_store import GroupStoreError, load_state, save_state, state_path
from islandrun.protocol import messages as m
from tests.test_groupstate import IDS, KEYS, replica


def saved(home: Path) -> bytes:
    state = replica(0)
    state.add_turn("c1", m.Role.USER, "my cardiologist is Dr. Okonkwo", 5)
    state.add_vault_entry("c1", "PERSON", 4821, "Okonkwo", 6)
    save_state(home, KEYS[0], state.to_bytes())
    return state_path(home).read_bytes()


def test_round_trip_is_encrypted_and_private(tmp_path: Path) -> None:
    data = saved(tmp_path)
    assert b"Okonkwo" not in data and b"cardiologist" not in data and b"c1" not in data
    assert stat.S_IMODE(state_path(tmp_path).stat().st_mode) == 0o600
    back = load_state(tmp_path, IDS[0], KEYS[0])
    assert back.history("c1")[0].content == "my cardiologist is Dr. Okonkwo"
    assert back.vault_entries("c1") == [("PERSON", 4821, "Okonkwo")]


def test_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    assert len(load_state(tmp_path, IDS[0], KEYS[0])) == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "other_key"])
def test_damage_or_another_key_is_refused_clearly(tmp_path: Path, damage: str) -> None:
    data = saved(tmp_path)
    key = KEYS[0]
    if damage == "flip":
        state_path(tmp_path).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "truncate":
        state_path(tmp_path).write_bytes(data[:20])
    else:
        key = SigningKey(bytes(32))
    with pytest.raises(GroupStoreError, match="cannot be opened with this device's key"):
        load_state(tmp_path, IDS[0], key)
