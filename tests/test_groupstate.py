"""The personal group's replicated state (node/groupstate.py): CRDT properties."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from islandrun.node.groupstate import (
    MAX_TURNS,
    TOMBSTONE_AGE_MS,
    GroupState,
    GroupStateError,
    OpRejected,
    sign_op,
)
from islandrun.protocol import messages as m
from islandrun.protocol.ids import device_id_from_public_key

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
IDS = [device_id_from_public_key(bytes(k.verify_key)) for k in KEYS]
MEMBERS = set(IDS[:3])  # IDS[3] is a friend's device


def replica(i: int) -> GroupState:
    return GroupState(IDS[i], KEYS[i])


def member(device: str) -> bool:
    return device in MEMBERS


def view(state: GroupState) -> dict[str, Any]:
    """Everything a user or the node can observe of a replica."""
    convs = state.conversations()
    return {
        "conversations": [(c.id, c.turns) for c in convs],
        "history": {c.id: state.history(c.id) for c in convs},
        "vault": {c: state.vault_entries(c) for c in ("c0", "c1", "c2")},
        "forgotten": {c for c in ("c0", "c1", "c2") if state.is_forgotten(c)},
        "registers": state.registers(),
        "spend": state.spend("cloud|2026-11"),
        "revoked": state.revoked(),
    }


def sync(puller: GroupState, server: GroupState, page: int = 3) -> None:
    """One pull, paged as the wire protocol pages it."""
    vector, after = puller.vector(), None
    server.note_ack(puller.me, vector)
    snapshot = server.vector()
    while True:
        ops, more = server.delta(vector, after, max_ops=page)
        for op in ops:
            puller.apply(op, member)
        if not more:
            break
        after = (ops[-1].author, ops[-1].counter)
    puller.merge_vector(snapshot)


EDIT = st.tuples(
    st.integers(0, 2),  # which replica
    st.sampled_from(["turn", "vault", "forget", "set", "spend", "revoke"]),
    st.integers(0, 2),  # which conversation / key
    st.integers(0, 50),  # a clock reading (ms), not monotone across replicas
)


def perform(state: GroupState, kind: str, which: int, now: int) -> None:
    conv = f"c{which}"
    try:
        if kind == "turn":
            state.add_turn(conv, m.Role.USER, f"text {now}", now)
        elif kind == "vault":
            state.add_vault_entry(conv, "PERSON", 100 + which, f"value {now}", now)
        elif kind == "forget":
            state.forget(conv, now)
        elif kind == "set":
            state.set_register(f"policy.k{which}", now, now)
        elif kind == "spend":
            own = state.spend("cloud|2026-11").get(state.me, 0.0)
            state.record_spend("cloud|2026-11", own + which + 0.5, now)
        else:
            state.revoke(IDS[3], now)
    except GroupStateError:
        pass  # a forgotten conversation refuses new turns: also a behaviour under test


@settings(max_examples=120, deadline=None)
@given(edits=st.lists(EDIT, max_size=25), seed=st.integers(0, 2**32))
def test_any_delivery_order_converges_and_redelivery_changes_nothing(
    edits: list[tuple[int, str, int, int]], seed: int
) -> None:
    replicas = [replica(i) for i in range(3)]
    for who, kind, which, now in edits:
        perform(replicas[who], kind, which, now)
    every_op = [op for r in replicas for op in r.ops()]
    rng = random.Random(seed)
    fresh = []
    for i in range(3):
        target = replica(i)
        shuffled = every_op * 2  # every op twice: idempotence
        rng.shuffle(shuffled)
        for op in shuffled:
            target.apply(op, member)
        fresh.append(view(target))
    assert fresh[0] == fresh[1] == fresh[2]


@settings(max_examples=80, deadline=None)
@given(edits=st.lists(EDIT, max_size=25), pulls=st.lists(st.tuples(
    st.integers(0, 2), st.integers(0, 2)), max_size=12))
def test_offline_edits_and_partial_syncs_then_heal_converge(
    edits: list[tuple[int, str, int, int]], pulls: list[tuple[int, int]]
) -> None:
    replicas = [replica(i) for i in range(3)]
    for step, (who, kind, which, now) in enumerate(edits):
        perform(replicas[who], kind, which, now)
        if step < len(pulls) and pulls[step][0] != pulls[step][1]:
            sync(replicas[pulls[step][0]], replicas[pulls[step][1]])
    for _ in range(2):  # heal: everyone pulls from everyone
        for a in replicas:
            for b in replicas:
                if a is not b:
                    sync(a, b)
    views = [view(r) for r in replicas]
    assert views[0] == views[1] == views[2]
    assert replicas[0].vector() == replicas[1].vector() == replicas[2].vector()


def test_concurrent_turns_are_both_kept_in_one_order() -> None:
    laptop, phone = replica(0), replica(1)
    laptop.add_turn("c", m.Role.USER, "from the laptop", 1000)
    phone.add_turn("c", m.Role.USER, "from the phone", 1000)  # same clock reading, offline
    sync(laptop, phone)
    sync(phone, laptop)
    texts = [t.content for t in laptop.history("c")]
    assert sorted(texts) == ["from the laptop", "from the phone"]
    assert laptop.history("c") == phone.history("c")


def test_a_turn_made_after_seeing_another_sorts_after_it_despite_a_slow_clock() -> None:
    laptop, phone = replica(0), replica(1)
    laptop.add_turn("c", m.Role.USER, "first", 10_000)
    sync(phone, laptop)
    phone.add_turn("c", m.Role.ASSISTANT, "second", 5)  # the phone's clock is far behind
    sync(laptop, phone)
    assert [t.content for t in laptop.history("c")] == ["first", "second"]


def test_forget_wins_over_concurrent_turns_and_later_deliveries() -> None:
    laptop, phone = replica(0), replica(1)
    laptop.add_turn("c", m.Role.USER, "hello", 1)
    laptop.add_vault_entry("c", "PERSON", 4821, "Maria", 1)
    sync(phone, laptop)
    late = phone.add_turn("c", m.Role.USER, "concurrent", 500)  # made before it saw the forget
    laptop.forget("c", 100)
    sync(phone, laptop)
    sync(laptop, phone)
    for r in (laptop, phone):
        assert r.history("c") == [] and r.vault_entries("c") == [] and r.is_forgotten("c")
        assert all(op.conversation != "c" or op.kind is m.OpKind.FORGET for op in r.ops())
        assert r.apply(late, member) is False or r.history("c") == []
    with pytest.raises(GroupStateError, match="forgotten"):
        phone.add_turn("c", m.Role.USER, "again", 600)


def test_last_writer_wins_registers_and_max_spend_per_device() -> None:
    a, b = replica(0), replica(1)
    a.set_register("trust.friend.privacy", 0.6, 100)
    b.set_register("trust.friend.privacy", 0.5, 200)
    a.record_spend("cloud|2026-11", 1.0, 1)
    a.record_spend("cloud|2026-11", 2.5, 2)
    b.record_spend("cloud|2026-11", 4.0, 3)
    sync(a, b)
    sync(b, a)
    for r in (a, b):
        assert r.register("trust.friend.privacy") == 0.5
        assert r.spend("cloud|2026-11") == {IDS[0]: 2.5, IDS[1]: 4.0}
    # Superseded figures and the losing register are compacted away.
    assert sum(op.kind is m.OpKind.SPEND for op in a.ops()) == 2
    assert sum(op.kind is m.OpKind.SET for op in a.ops()) == 1


def test_history_is_compacted_to_the_newest_turns() -> None:
    a, b = replica(0), replica(1)
    for i in range(MAX_TURNS + 10):
        (a if i % 2 else b).add_turn("long", m.Role.USER, f"turn {i}", i)
    sync(a, b)
    sync(b, a)
    for r in (a, b):
        history = r.history("long")
        assert len(history) == MAX_TURNS
        assert history[-1].content == f"turn {MAX_TURNS + 9}"
        assert len(r) == MAX_TURNS
    assert view(a) == view(b)


def test_tombstones_are_dropped_once_old_and_acknowledged_by_every_member() -> None:
    a, b, c = replica(0), replica(1), replica(2)
    a.add_turn("x", m.Role.USER, "hi", 1)
    a.forget("x", 2)
    sync(b, a)
    sync(b, a)  # b's second pull says it has the tombstone
    later = 2 + TOMBSTONE_AGE_MS
    assert a.compact(MEMBERS, later) == 0  # c has not seen it yet
    sync(c, a)
    assert a.compact(MEMBERS, later) == 0  # c has it, but has not said so yet
    sync(c, a)
    assert a.compact(MEMBERS, later - 1) == 0  # everyone has it, but it is too young
    assert a.is_forgotten("x")
    assert a.compact(MEMBERS, later) == 1
    assert len(a) == 0 and not a.is_forgotten("x")
    sync(a, b)  # b still holds the tombstone, but a already covers its dot
    assert len(a) == 0


def test_ops_from_outside_the_group_or_badly_signed_are_refused() -> None:
    friend, a = replica(3), replica(0)
    op = friend.add_turn("c", m.Role.USER, "from a friend", 1)
    with pytest.raises(OpRejected, match="outside the personal group"):
        a.apply(op, member)
    b = replica(1)
    good = b.add_turn("c", m.Role.USER, "hello", 1)
    tampered = m.GroupOp(**{**{f: getattr(good, f) for f in good.__slots__}, "text": "hullo"})
    with pytest.raises(OpRejected, match="signature"):
        a.apply(tampered, member)
    forged = sign_op(KEYS[2], good)  # signed by another member's key
    with pytest.raises(OpRejected, match="signature"):
        a.apply(forged, member)
    assert a.history("c") == []


def test_delta_pages_are_bounded_and_complete() -> None:
    a, b = replica(0), replica(1)
    for i in range(20):
        a.add_turn(f"c{i % 3}", m.Role.USER, "x" * 1000, i)
    first, more = a.delta(b.vector(), max_ops=7)
    assert len(first) == 7 and more
    sync(b, a, page=7)
    assert view(a) == view(b)
    assert a.delta(b.vector()) == ([], False)


def test_replica_round_trips_through_bytes() -> None:
    a = replica(0)
    a.add_turn("c", m.Role.USER, "hello", 5)
    a.add_vault_entry("c", "EMAIL", 7, "bob@example.com", 6)
    a.note_ack(IDS[1], {IDS[0]: 1})
    again = GroupState.from_bytes(a.to_bytes(), IDS[0], KEYS[0])
    assert view(again) == view(a) and again.vector() == a.vector() and again.acks == a.acks
    assert again.add_turn("c", m.Role.ASSISTANT, "hi", 1).counter == 3
    assert again.history("c")[-1].content == "hi"  # the clock came back too


def test_repr_shows_no_contents() -> None:
    a = replica(0)
    a.add_turn("c", m.Role.USER, "my secret diagnosis", 1)
    assert "secret" not in repr(a)
