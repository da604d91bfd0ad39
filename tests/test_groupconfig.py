"""Owner policy and cloud islands synced across personal devices (node/groupconfig.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from islandrun.node.config import (
    load_config,
    remove_entry,
    update_config,
    write_initial_config,
)
from islandrun.node.groupconfig import BASELINE_FILE, ConfigSync, digest, plan, view
from islandrun.node.groupstate import GroupState
from tests.test_groupstate import replica, sync

CLOUD = {"name": "paid", "url": "https://api.example.com/v1", "model": "m", "trust": 0.45,
         "api_key_env": "PAID_KEY", "daily_budget": 2.0}


class Device:
    """One personal device: its home (config.toml) and its replica."""

    def __init__(self, root: Path, i: int, name: str) -> None:
        self.home = root / name
        write_initial_config(self.home, name, listen=[f"/ip4/127.0.0.1/tcp/{4000 + i}"])
        self.state: GroupState = replica(i)
        self.configs = ConfigSync(self.home)
        self.now = 1000 * (i + 1)

    def edit(self, change: Any) -> None:
        update_config(self.home, change)

    def round(self) -> tuple[int, Any]:
        self.now += 10
        return self.configs.round(self.state, self.now)

    def synced(self) -> dict[str, Any]:
        return view(load_config(self.home))


def add_cloud(entry: dict[str, Any]) -> Any:
    return lambda data: data.setdefault("cloud", []).append(dict(entry))


def set_trust(tier: str, **parts: float) -> Any:
    return lambda data: data.setdefault("trust", {}).setdefault(tier, {}).update(parts)


def exchange(*devices: Device) -> None:
    """Every device pulls from every other, then runs a config round (twice over)."""
    for _ in range(2):
        for a in devices:
            for b in devices:
                if a is not b:
                    sync(a.state, b.state)
            a.round()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Device, Device]:
    return Device(tmp_path, 0, "laptop"), Device(tmp_path, 1, "phone")


def test_a_cloud_and_trust_scores_made_on_one_device_reach_the_other(
    pair: tuple[Device, Device],
) -> None:
    laptop, phone = pair
    laptop.edit(add_cloud(CLOUD))
    laptop.edit(set_trust("friend", base=0.65, privacy=0.5))
    made, cfg = laptop.round()
    assert made == 2 and cfg is not None  # the cloud and the friend tier, nothing else
    sync(phone.state, laptop.state)
    made, cfg = phone.round()
    assert made == 0 and cfg is not None
    assert phone.synced() == laptop.synced()
    adopted = load_config(phone.home)
    assert adopted.cloud[0].api_key_env == "PAID_KEY" and adopted.cloud[0].daily_budget == 2.0
    assert adopted.trust.friend.privacy == 0.5
    # Per-device settings stay each device's own.
    assert adopted.node.name == "phone" and adopted.mesh.listen == ("/ip4/127.0.0.1/tcp/4001",)
    assert phone.round() == (0, None)  # settled: nothing more to do


def test_per_device_settings_are_never_published(pair: tuple[Device, Device]) -> None:
    laptop, _ = pair

    def per_device(data: dict[str, Any]) -> None:
        data["node"]["friend_battery_floor"] = 0.5
        data["mesh"]["mdns"] = False
        data["models"] = [{"name": "local", "path": "/models/x.gguf"}]
        data["ble"] = {"enabled": True}

    laptop.round()
    laptop.edit(per_device)
    assert laptop.round() == (0, None)
    assert laptop.state.registers() == {}
    assert set(view(load_config(laptop.home))) == {
        "policy.trust.personal", "policy.trust.friend", "policy.trust.edge", "policy.waves",
        "policy.tide"}


def test_waves_weights_and_the_tide_buffer_made_on_one_device_reach_the_others(
    pair: tuple[Device, Device], tmp_path: Path,
) -> None:
    laptop, phone = pair

    def battery_minded(data: dict[str, Any]) -> None:
        data["waves"] = {"mode": "constraint", "weights": {"energy": 1.5, "cost": 0.0}}
        data["tide"] = {"buffer": "conservative"}

    laptop.edit(battery_minded)
    made, _ = laptop.round()
    assert made == 2  # policy.waves and policy.tide
    tablet = Device(tmp_path, 2, "tablet")
    exchange(laptop, phone, tablet)
    for device in (phone, tablet):
        cfg = load_config(device.home)
        assert cfg.waves == load_config(laptop.home).waves and cfg.waves.mode == "constraint"
        assert (cfg.waves.weights.energy, cfg.waves.weights.cost) == (1.5, 0.0)
        assert cfg.waves.weights.trust == 0.3  # unset keys keep their defaults
        assert cfg.tide.buffer == "conservative"
    phone.edit(lambda data: data["waves"]["weights"].update(energy=0.2))  # and back again
    exchange(laptop, phone, tablet)
    assert load_config(laptop.home).waves.weights.energy == 0.2


def test_a_removed_cloud_is_removed_everywhere(pair: tuple[Device, Device]) -> None:
    laptop, phone = pair
    laptop.edit(add_cloud(CLOUD))
    exchange(laptop, phone)
    assert [c.name for c in load_config(phone.home).cloud] == ["paid"]
    remove_entry(phone.home, "cloud", "paid", "cloud island")
    exchange(laptop, phone)
    assert laptop.state.register("cloud.paid") is None
    assert load_config(laptop.home).cloud == load_config(phone.home).cloud == ()


def test_edits_made_while_the_node_was_stopped_are_published_after_a_restart(
    pair: tuple[Device, Device],
) -> None:
    laptop, phone = pair
    laptop.round()
    laptop.edit(set_trust("edge", base=0.3))  # e.g. by hand, while no node ran
    laptop.configs = ConfigSync(laptop.home)  # a restart: the baseline comes from disk
    exchange(laptop, phone)
    assert load_config(phone.home).trust.edge.base == 0.3


def test_concurrent_edits_of_one_key_converge_on_the_later(pair: tuple[Device, Device]) -> None:
    laptop, phone = pair
    exchange(laptop, phone)
    laptop.edit(set_trust("friend", base=0.5))
    laptop.round()
    phone.edit(set_trust("friend", base=0.6))
    phone.now = laptop.now + 1000  # the phone's edit is the later one
    phone.round()
    exchange(laptop, phone)
    assert load_config(laptop.home).trust.friend.base == 0.6
    assert laptop.synced() == phone.synced()


def test_a_new_device_takes_the_groups_settings_rather_than_its_own_defaults(
    pair: tuple[Device, Device], tmp_path: Path,
) -> None:
    laptop, phone = pair
    laptop.edit(set_trust("personal", privacy=0.9))
    exchange(laptop, phone)
    tablet = Device(tmp_path, 2, "tablet")
    exchange(laptop, phone, tablet)
    assert load_config(tablet.home).trust.personal.privacy == 0.9
    assert laptop.state.register("policy.trust.personal")["privacy"] == 0.9


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cloud.bad", {**CLOUD, "name": "bad", "url": "ftp://example.com"}),
        ("cloud.bad", {**CLOUD, "name": "bad", "trust": 1.5}),
        ("cloud.bad", {**CLOUD, "name": "bad", "surprise": 1}),
        ("cloud.bad", {**CLOUD, "name": "other"}),
        ("cloud.bad", "not a table"),
        ("policy.trust.friend", {"base": "high"}),
        ("policy.trust.friend", [0.5]),
        ("policy.waves", {"weights": {"carbon": 1.0}}),
        ("policy.waves", {"weights": {"energy": 50.0}}),
        ("policy.waves", {"mode": "fastest"}),
        ("policy.tide", {"buffer": "huge"}),
        ("policy.tide", "aggressive"),
    ],
)
def test_an_invalid_synced_value_is_refused_with_its_key_logged_once(
    pair: tuple[Device, Device], key: str, value: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    laptop, phone = pair
    laptop.edit(add_cloud(CLOUD))
    laptop.round()
    laptop.state.set_register(key, value, laptop.now + 1)
    sync(phone.state, laptop.state)
    before = (phone.home / "config.toml").read_text()
    with caplog.at_level(logging.WARNING, logger="islandrun.group"):
        phone.round()
        phone.round()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and key in refused[0]
    after = load_config(phone.home)  # still a valid config, with the valid setting adopted
    assert [c.name for c in after.cloud] == ["paid"]
    assert (phone.home / "config.toml").read_text() != before


def test_registers_this_version_does_not_know_are_ignored(pair: tuple[Device, Device]) -> None:
    laptop, phone = pair
    laptop.state.set_register("policy.weights", {"latency": 0.5}, 5)
    sync(phone.state, laptop.state)
    assert phone.round() == (0, None)
    assert load_config(phone.home).cloud == ()


def test_the_baseline_holds_fingerprints_only(pair: tuple[Device, Device]) -> None:
    laptop, _ = pair
    laptop.edit(add_cloud(CLOUD))
    laptop.round()
    stored = laptop.home / BASELINE_FILE
    assert stored.stat().st_mode & 0o77 == 0
    assert b"example.com" not in stored.read_bytes() and b"PAID_KEY" not in stored.read_bytes()


def test_plan_publishes_only_edits_and_adopts_only_differences() -> None:
    local = {"cloud.a": {"v": 2}, "cloud.b": {"v": 1}}
    baseline = {"cloud.a": digest({"v": 1}), "cloud.b": digest({"v": 1}), "cloud.c": digest(1)}
    synced = {"cloud.a": {"v": 1}, "cloud.b": {"v": 3}, "cloud.c": 1}
    todo = plan(local, baseline, synced)
    # a: edited here; b: edited elsewhere; c: removed here (published as a tombstone).
    assert todo.publish == {"cloud.a": {"v": 2}, "cloud.c": None}
    assert todo.adopt == {"cloud.b": {"v": 3}}
    assert plan(local, baseline, synced, {"cloud.b": digest({"v": 3})}).adopt == {}
    assert plan(local, baseline, synced, {"cloud.b": digest({"v": 4})}).adopt == todo.adopt
