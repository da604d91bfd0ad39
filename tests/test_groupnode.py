"""The group state inside a node (node/groupnode.py): conversations, vaults, revocations, policy."""

from __future__ import annotations

import random
from pathlib import Path

import trio

from islandrun.node.config import NodeConfig, NodeSection, update_config, write_initial_config
from islandrun.node.groupconfig import ConfigSync
from islandrun.node.groupnode import GroupNode, apply_config
from islandrun.node.identity import Identity, create_key
from islandrun.node.mist_entities import EntityType
from islandrun.node.pairing_service import PairingService
from islandrun.node.pairing_store import PairingRecord, PairingStore
from islandrun.node.runtime import Node, RunOptions, run_node
from islandrun.node.shipping import ShippingConfig
from islandrun.node.tide_capacity import BufferPreset
from islandrun.node.waves import Mode
from islandrun.protocol import messages as m
from islandrun.transports.memory import MemoryNetwork
from tests.test_groupstate import IDS, KEYS, replica, sync


def node(home: Path, revoked: list[str]) -> GroupNode:
    ident = Identity(key=KEYS[0], name="laptop")
    cfg = NodeConfig(node=NodeSection(name="laptop"), path=home / "config.toml")
    store = PairingStore(home)
    for i, tier in ((1, m.TrustTier.PERSONAL), (3, m.TrustTier.FRIEND)):
        store.add(PairingRecord(device_id=IDS[i], name=f"d{i}", tier=tier, paired_at=1.0,
                                via="invite"))
    pairing = PairingService(ident, cfg, store, shipping=ShippingConfig(),
                             on_revoked=revoked.append, on_paired=lambda _: None,
                             rng=random.Random(1))
    return GroupNode(home, ident, pairing, shipping=ShippingConfig(),
                     on_revoked=revoked.append, clock=lambda: 1000.0)


def request(*texts: str) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r", conversation_id="c", deadline=2000.0,
        messages=tuple(m.ChatMessage(role=m.Role.USER, content=t) for t in texts))


def test_only_personal_devices_are_members(tmp_path: Path) -> None:
    group = node(tmp_path, [])
    assert group.members() == [IDS[1]]
    assert group.is_member(IDS[1]) and not group.is_member(IDS[3])


def test_history_comes_from_the_group_and_new_turns_are_recorded(tmp_path: Path) -> None:
    group = node(tmp_path, [])
    prepared, fresh = group.prepare(request("first"))
    assert fresh == prepared.messages
    group.record("c", fresh, "answer one")
    prepared, fresh = group.prepare(request("second"))  # a client sending only its new turn
    assert [x.content for x in prepared.messages] == ["first", "answer one", "second"]
    assert [x.content for x in fresh] == ["second"]
    whole = request("first", "answer one", "second")  # an OpenAI client sending it all
    whole = m.InferenceRequest(**{**{f: getattr(whole, f) for f in whole.__slots__},
                                  "messages": prepared.messages})
    assert group.prepare(whole) == (whole, prepared.messages[2:])
    assert group.dirty


def test_vault_pairs_travel_both_ways(tmp_path: Path) -> None:
    group, phone = node(tmp_path, []), replica(1)
    vault = group.vault("c")
    placeholder = vault.placeholder(EntityType.PERSON, "Maria")
    group.record("c", (), "ok")
    sync(phone, group.state)
    assert phone.vault_entries("c") == [("PERSON", int(placeholder[8:-1]), "Maria")]
    phone.add_vault_entry("c", "EMAIL", 77, "maria@example.com", 5)
    sync(group.state, phone)
    assert group.vault("c").value(EntityType.EMAIL, 77) == "maria@example.com"


def test_revocations_reach_the_pairing_records_and_back(tmp_path: Path) -> None:
    revoked: list[str] = []
    group, phone = node(tmp_path, revoked), replica(1)
    phone.revoke(IDS[3], 5)  # the owner revoked the friend on the phone
    sync(group.state, phone)
    group.upkeep()
    assert revoked == [IDS[3]] and not group._pairing.store.get(IDS[3]).active
    group._pairing.store.revoke(IDS[1], 10.0)  # ... and the phone here, by hand
    group.upkeep()
    assert IDS[1] in group.state.revoked()


def test_a_config_round_publishes_into_the_replica_and_marks_it_for_saving(
    tmp_path: Path,
) -> None:
    group = node(tmp_path, [])
    write_initial_config(tmp_path, "laptop")
    update_config(tmp_path, lambda data: data.update(
        cloud=[{"name": "paid", "url": "https://api.example.com/v1", "model": "m"}]))
    configs = ConfigSync(tmp_path)
    cfg = group.sync_config(configs)
    assert cfg is not None and [c.name for c in cfg.cloud] == ["paid"]
    assert group.dirty and group.state.register("cloud.paid")["url"] == "https://api.example.com/v1"
    group.dirty = False
    assert group.sync_config(configs) is None and not group.dirty


async def test_a_running_node_starts_with_and_then_routes_by_the_synced_policy(
    tmp_path: Path,
) -> None:
    home = tmp_path / "laptop"
    ident = Identity(key=create_key(home), name="laptop")
    write_initial_config(home, "laptop")
    cfg = update_config(home, lambda data: data.update(
        waves={"weights": {"energy": 1.0}}, tide={"buffer": "aggressive"}))
    net = MemoryNetwork(rng=random.Random(1))
    options = RunOptions(mdns=False, api=None, fixed_load=0.1,
                         open_lan=lambda _: net.node(ident.device_id, is_allowed=lambda _: True))
    async with trio.open_nursery() as nursery:
        running: Node = await nursery.start(run_node, home, ident, cfg, options)
        assert running.dispatcher.policy.weights["energy"] == 1.0
        assert running.tide.config.buffer == BufferPreset.AGGRESSIVE.value
        floor = running.tide.config.serve_floor_pct  # the [node] battery floor, kept
        synced = update_config(home, lambda data: data.update(
            waves={"mode": "constraint", "weights": {"cost": 0.0}},
            tide={"buffer": "conservative"}))
        apply_config(running, synced)
        policy = running.dispatcher.policy
        assert policy.mode is Mode.CONSTRAINT and dict(policy.weights)["cost"] == 0.0
        assert running.tide.config.buffer == BufferPreset.CONSERVATIVE.value
        assert running.tide.config.serve_floor_pct == floor
        assert running.config.waves == synced.waves and running.config.tide == synced.tide
        nursery.cancel_scope.cancel()
