"""Liveness: alive -> suspect -> dead -> reaped, at exact times (TEST preset:
heartbeat 1 s, suspect after 3 s of silence, suspicion 8 s shrinking to 2 s
over 3 confirmations, dead members kept 10 s)."""

from __future__ import annotations

import dataclasses

import pytest

from islandrun.node.lighthouse import Liveness, Membership, Transition
from islandrun.node.lighthouse_config import TEST
from tests.lighthouse_helpers import ALICE, BOB, NOW, did, signed, table

A = did(ALICE)
ALIVE, SUSPECT, DEAD = Liveness.ALIVE, Liveness.SUSPECT, Liveness.DEAD


def _move(old: Liveness | None, new: Liveness | None, at: float, device: str = A) -> Transition:
    return Transition(device_id=device, old=old, new=new, at=at)


def _joined(at: float = NOW) -> Membership:
    members = table()
    members.ingest(signed(ALICE, seq=1), A, at)
    return members


def _liveness(members: Membership) -> Liveness:
    (view,) = members.snapshot()
    return view.liveness


def test_silence_suspects_then_kills_then_reaps_at_exact_times() -> None:
    members = _joined()
    assert members.next_deadline() == NOW + 3
    assert members.tick(NOW + 2.999) == ()
    assert members.tick(NOW + 3) == (_move(ALIVE, SUSPECT, NOW + 3),)
    assert members.next_deadline() == NOW + 3 + 8
    assert members.tick(NOW + 10.999) == ()
    assert members.tick(NOW + 11) == (_move(SUSPECT, DEAD, NOW + 11),)
    assert members.next_deadline() == NOW + 11 + 10
    (view,) = members.snapshot()
    assert (view.liveness, view.last_seen, view.since) == (DEAD, NOW, NOW + 11)
    assert members.tick(NOW + 20.999) == ()
    assert members.tick(NOW + 21) == (_move(DEAD, None, NOW + 21),)
    assert members.snapshot() == () and members.next_deadline() is None


def test_heartbeats_keep_a_member_alive() -> None:
    members = _joined()
    for beat in range(1, 10):
        members.ingest(signed(ALICE, seq=1 + beat), A, NOW + beat)
        assert members.tick(NOW + beat + 2.5) == ()
    assert members.next_deadline() == NOW + 9 + 3


def test_suspicion_starts_when_noticed_not_when_silence_began() -> None:
    members = _joined()
    # The node slept for 1000 s: every peer gets a full suspicion period.
    assert members.tick(NOW + 1000) == (_move(ALIVE, SUSPECT, NOW + 1000),)
    assert members.next_deadline() == NOW + 1008


def test_a_newer_advert_refutes_suspicion() -> None:
    members = _joined()
    members.tick(NOW + 3)
    result = members.ingest(signed(ALICE, seq=2), A, NOW + 4)
    assert result.transition == _move(SUSPECT, ALIVE, NOW + 4)
    assert members.next_deadline() == NOW + 4 + 3


def test_a_restarted_peer_rejoins_from_dead() -> None:
    members = _joined()
    members.tick(NOW + 3)
    members.tick(NOW + 11)
    result = members.ingest(signed(ALICE, seq=2), A, NOW + 12)
    assert result.transition == _move(DEAD, ALIVE, NOW + 12)
    assert _liveness(members) is ALIVE


def test_a_failed_request_suspects_at_once() -> None:
    members = _joined()
    assert members.report_failure(A, NOW + 0.5) == _move(ALIVE, SUSPECT, NOW + 0.5)
    assert members.next_deadline() == NOW + 0.5 + 8


@pytest.mark.parametrize(
    ("confirmations", "timeout"), [(0, 8.0), (1, 5.0), (2, 3.2451), (3, 2.0), (5, 2.0)]
)
def test_confirmations_shorten_the_suspicion(confirmations: int, timeout: float) -> None:
    members = _joined()
    members.report_failure(A, NOW + 1)
    for i in range(confirmations):
        assert members.report_failure(A, NOW + 1.1 + i * 0.01) is None  # no new transition
    deadline = members.next_deadline()
    assert deadline == pytest.approx(NOW + 1 + timeout, abs=1e-4)
    assert members.tick(deadline - 0.001) == ()
    assert members.tick(deadline) == (_move(SUSPECT, DEAD, deadline),)


def test_failures_do_not_touch_dead_or_unknown_devices() -> None:
    members = _joined()
    members.report_failure(A, NOW)
    members.tick(NOW + 8)
    assert members.report_failure(A, NOW + 9) is None
    assert members.next_deadline() == NOW + 8 + 10  # reaping is not postponed
    assert members.report_failure(did(BOB), NOW) is None
    assert members.report_success(did(BOB), NOW) is None


@pytest.mark.parametrize("ticks", [(), (NOW + 8,)], ids=["suspect", "dead"])
def test_a_successful_request_means_alive(ticks: tuple[float, ...]) -> None:
    members = _joined()
    members.report_failure(A, NOW)
    for t in ticks:
        members.tick(t)
    old = _liveness(members)
    assert members.report_success(A, NOW + 9) == _move(old, ALIVE, NOW + 9)
    (view,) = members.snapshot()
    assert view.last_seen == NOW + 9 and members.next_deadline() == NOW + 12


def test_success_of_an_alive_member_postpones_suspicion() -> None:
    members = _joined()
    assert members.report_success(A, NOW + 2) is None
    assert members.next_deadline() == NOW + 5


def test_a_new_suspicion_starts_without_old_confirmations() -> None:
    members = _joined()
    members.report_failure(A, NOW)
    members.report_failure(A, NOW)
    members.report_success(A, NOW + 1)
    members.report_failure(A, NOW + 2)
    assert members.next_deadline() == NOW + 2 + 8


def test_a_device_the_allowlist_drops_leaves_at_the_next_tick() -> None:
    paired = {A, did(BOB)}
    members = Membership(TEST, paired.__contains__)
    members.ingest(signed(ALICE), A, NOW)
    members.ingest(signed(BOB), did(BOB), NOW)
    paired.discard(A)
    assert members.tick(NOW + 1) == (_move(ALIVE, None, NOW + 1),)
    assert [v.device_id for v in members.snapshot()] == [did(BOB)]


def test_members_move_independently_and_snapshot_is_ordered() -> None:
    members = _joined()
    members.ingest(signed(BOB), did(BOB), NOW + 2)
    assert members.tick(NOW + 3) == (_move(ALIVE, SUSPECT, NOW + 3),)
    assert members.next_deadline() == NOW + 5
    assert members.tick(NOW + 5) == (_move(ALIVE, SUSPECT, NOW + 5, did(BOB)),)
    assert [v.device_id for v in members.snapshot()] == sorted([A, did(BOB)])


def test_snapshot_records_are_frozen() -> None:
    (view,) = _joined().snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.liveness = DEAD  # type: ignore[misc]
