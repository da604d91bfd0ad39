"""Cloud API keys shared with the personal group by opt-in (node/groupsecrets.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from islandrun.node import identity
from islandrun.node.cli import main
from islandrun.node.config import CloudSection, load_config, remove_entry
from islandrun.node.groupconfig import BASELINE_FILE
from islandrun.node.groupsecrets import (
    KeyRefused,
    KeySource,
    drop_removed,
    key_source,
    key_sources,
    share_key,
    synced_clouds,
    synced_key,
    unshare_key,
)
from islandrun.node.groupstate_store import load_state, save_state, state_path
from islandrun.protocol import messages as m
from islandrun.protocol.sealing import Sealer
from tests.test_groupconfig import CLOUD, Device, add_cloud, exchange
from tests.test_groupstate import IDS, KEYS, replica, sync
from tests.test_groupsync import pull_as, serving

SECRET = "sk-live-4f9a1c77e2b0d3"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Device, Device]:
    return Device(tmp_path, 0, "laptop"), Device(tmp_path, 1, "phone")


def test_a_shared_key_reaches_the_other_device_but_never_its_config_or_baseline(
    pair: tuple[Device, Device],
) -> None:
    laptop, phone = pair
    laptop.edit(add_cloud(CLOUD))
    share_key(laptop.state, "paid", SECRET, laptop.now)
    exchange(laptop, phone)
    assert synced_key(phone.state, "paid") == SECRET
    assert [c.name for c in load_config(phone.home).cloud] == ["paid"]
    for device in (laptop, phone):
        for name in ("config.toml", BASELINE_FILE):
            assert SECRET.encode() not in (device.home / name).read_bytes()
        assert SECRET not in repr(device.state) + repr(device.state.ops())


def test_unsharing_drops_the_value_from_every_replicas_stored_state(
    pair: tuple[Device, Device], tmp_path: Path,
) -> None:
    laptop, phone = pair
    share_key(laptop.state, "paid", SECRET, 10)
    sync(phone.state, laptop.state)
    assert SECRET.encode() in phone.state.to_bytes()  # the plain bytes, before encryption
    assert unshare_key(phone.state, "paid", 20)
    assert not unshare_key(phone.state, "paid", 30)  # nothing left to unshare
    sync(laptop.state, phone.state)
    for device in (laptop, phone):
        assert synced_key(device.state, "paid") is None
        assert SECRET.encode() not in device.state.to_bytes()
    # ... and an old op arriving late (a device that was offline) is not kept either.
    late = replica(2)
    share_key(late, "paid", "sk-older", 5)
    sync(laptop.state, late)
    assert synced_key(laptop.state, "paid") is None
    assert b"sk-older" not in laptop.state.to_bytes()


def test_the_stored_state_is_encrypted(tmp_path: Path) -> None:
    state = replica(0)
    share_key(state, "paid", SECRET, 10)
    save_state(tmp_path, KEYS[0], state.to_bytes())
    assert SECRET.encode() not in state_path(tmp_path).read_bytes()
    assert state_path(tmp_path).stat().st_mode & 0o77 == 0
    assert synced_key(load_state(tmp_path, IDS[0], KEYS[0]), "paid") == SECRET


def test_removing_the_cloud_on_any_device_removes_its_key_everywhere(
    pair: tuple[Device, Device],
) -> None:
    laptop, phone = pair
    laptop.edit(add_cloud(CLOUD))
    share_key(laptop.state, "paid", SECRET, laptop.now)
    exchange(laptop, phone)
    remove_entry(phone.home, "cloud", "paid", "cloud island")
    phone.round()  # publishes cloud.paid = null
    assert drop_removed(phone.state, phone.now) == ["paid"]
    assert drop_removed(phone.state, phone.now) == []
    sync(laptop.state, phone.state)
    assert synced_clouds(laptop.state) == set()
    assert SECRET.encode() not in laptop.state.to_bytes()


def test_a_key_shared_after_an_old_removal_stays() -> None:
    laptop, phone = replica(0), replica(1)
    laptop.set_register("cloud.paid", None, 10)  # removed long ago
    share_key(laptop, "paid", SECRET, 20)  # re-added, then shared
    sync(phone, laptop)
    assert drop_removed(phone, 30) == []
    assert synced_key(phone, "paid") == SECRET


async def test_a_friend_gets_no_key_on_the_wire_and_a_member_gets_it_sealed() -> None:
    laptop, phone, friend = replica(0), replica(1), replica(3)
    share_key(laptop, "paid", SECRET, 1)
    async with serving(laptop) as (net, seen):
        refused = await pull_as(net, friend, laptop.me, seen, lambda _: True)
        assert "not_personal" in str(refused) and len(friend) == 0
        _, payload = Sealer(KEYS[3]).open(seen[0])
        assert SECRET.encode() not in payload
        seen.clear()
        assert await pull_as(net, phone, laptop.me, seen) == 1
    assert synced_key(phone, "paid") == SECRET
    assert seen and all(SECRET.encode() not in frame for frame in seen)  # sealed on the wire
    _, payload = Sealer(KEYS[1]).open(seen[0])
    assert isinstance(m.decode(payload), m.GroupDelta)


@pytest.mark.parametrize("bad", ["", "sk with space", "sk-\nInjected: 1", "k" * 5000, 42, None])
def test_keys_an_http_header_cannot_carry_are_refused_without_quoting_them(bad: object) -> None:
    state = replica(0)
    with pytest.raises(KeyRefused) as failed:
        share_key(state, "paid", bad, 1)
    assert len(state) == 0
    assert not (isinstance(bad, str) and bad and bad in str(failed.value))


def test_the_environment_wins_then_the_synced_key_then_missing() -> None:
    cloud = CloudSection(name="paid", url="https://x.example/v1", model="m", api_key_env="PK")
    keyless = CloudSection(name="free", url="http://127.0.0.1:1/v1", model="m")
    assert key_source(cloud, {"PK": "sk-own"}, synced=True) is KeySource.ENVIRONMENT
    assert key_source(cloud, {"PK": ""}, synced=True) is KeySource.SYNCED
    assert key_source(cloud, {}, synced=False) is KeySource.MISSING
    assert key_source(keyless, {}, synced=False) is KeySource.NONE
    assert key_sources((cloud, keyless), {"paid"}, {}) == {"paid": "synced", "free": "none"}


# -- the CLI side, with no node running ------------------------------------------------------

ADD = ["cloud", "add", "paid", "--url", "https://api.example.com/v1", "--model", "m",
       "--api-key-env", "GS_TEST_KEY", "--sync-key"]


def cli(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def test_sync_key_needs_the_key_in_this_shell_and_a_running_node(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = (home / "config.toml").read_text()
    monkeypatch.delenv("GS_TEST_KEY", raising=False)
    assert cli(home, *ADD) == 1
    assert "$GS_TEST_KEY is not set in this shell" in capsys.readouterr().err
    monkeypatch.setenv("GS_TEST_KEY", SECRET)
    assert cli(home, *ADD) == 1
    err = capsys.readouterr().err
    assert "no node is running" in err and "run this command again" in err
    assert (home / "config.toml").read_text() == before  # nothing half done
    assert cli(home, *ADD[:-1]) == 0
    assert cli(home, "cloud", "sync-key", "paid") == 1
    assert cli(home, "cloud", "unsync-key", "paid") == 1
    assert cli(home, "cloud", "sync-key", "nope") == 1
    out = capsys.readouterr()
    assert "no cloud island named 'nope'" in out.err and SECRET not in out.out + out.err


def test_list_without_a_node_reads_the_stored_state(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("GS_TEST_KEY", raising=False)
    assert cli(home, *ADD[:-1]) == 0
    capsys.readouterr()
    key = identity.load_key(home)
    me = identity.Identity(key=key, name="").device_id
    state = load_state(home, me, key)
    with caplog.at_level(logging.DEBUG):
        assert cli(home, "cloud", "list", "--json") == 0
    assert [r["key_source"] for r in json.loads(capsys.readouterr().out)] == ["missing"]
    share_key(state, "paid", SECRET, 1)
    save_state(home, key, state.to_bytes())
    assert cli(home, "cloud", "list") == 0
    out = capsys.readouterr().out
    assert "key: synced ($GS_TEST_KEY)" in out and SECRET not in out + caplog.text
