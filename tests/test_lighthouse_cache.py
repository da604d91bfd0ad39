"""The cached island list: round trip, re-verification on load, corrupt caches."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from islandrun.node import lighthouse
from islandrun.node.lighthouse import CacheLoad, Liveness, Membership
from islandrun.node.lighthouse_config import TEST
from islandrun.protocol.errors import RejectReason
from tests.lighthouse_helpers import ALICE, BOB, NOW, did, signed, table

LATER = NOW + 86_400.0  # a day later: every cached advert has expired


def _load(data: bytes, *paired: SigningKey) -> CacheLoad:
    allowed = frozenset(did(k) for k in paired or (ALICE, BOB)).__contains__
    return Membership.from_cache_bytes(data, config=TEST, allowed=allowed, now=LATER)


def _two_islands() -> Membership:
    members = table()
    members.ingest(signed(ALICE, seq=5, name="alice"), did(ALICE), NOW)
    members.ingest(signed(BOB, seq=7, name="bob"), did(BOB), NOW + 1)
    members.report_failure(did(BOB), NOW + 2)
    members.tick(NOW + 10)  # bob dead, alice suspect
    return members


def _entries(data: bytes) -> list:
    return msgpack.unpackb(data)["islands"]


def _with_entries(entries: list) -> bytes:
    return msgpack.packb({"v": 1, "kind": "islandrun/island-cache", "islands": entries})


def test_round_trip_keeps_adverts_and_last_seen_and_suspects_everyone() -> None:
    before = _two_islands().snapshot()
    loaded = _load(_two_islands().to_cache_bytes())
    assert loaded.problem is None
    after = loaded.membership.snapshot()
    assert [(v.device_id, v.advert, v.last_seen) for v in after] == [
        (v.device_id, v.advert, v.last_seen) for v in before]
    assert {(v.liveness, v.since) for v in after} == {(Liveness.SUSPECT, LATER)}
    assert loaded.membership.next_deadline() == LATER + TEST.suspicion_max


def test_replay_protection_survives_a_restart() -> None:
    members = _load(_two_islands().to_cache_bytes()).membership
    now = NOW + 5
    stale = members.ingest(signed(ALICE, seq=5, name="alice"), did(ALICE), now)
    assert stale.reason is RejectReason.STALE_SEQ
    fresh = members.ingest(signed(ALICE, seq=6, name="alice"), did(ALICE), now)
    assert fresh.accepted and fresh.transition is not None
    assert fresh.transition.new is Liveness.ALIVE


def test_unpaired_islands_are_skipped_quietly() -> None:
    loaded = _load(_two_islands().to_cache_bytes(), ALICE)
    assert loaded.problem is None
    assert [v.device_id for v in loaded.membership.snapshot()] == [did(ALICE)]


def test_a_tampered_island_is_dropped_and_reported() -> None:
    entries = _entries(_two_islands().to_cache_bytes())
    signed_bytes = bytearray(entries[0][0])
    signed_bytes[40] ^= 1
    entries[0][0] = bytes(signed_bytes)
    loaded = _load(_with_entries(entries))
    assert loaded.problem == "1 cached island(s) failed verification and were dropped"
    assert len(loaded.membership.snapshot()) == 1


@pytest.mark.parametrize(
    "entry", [[1, 2, 3], "x", [b"x", 1.0], [signed(ALICE), "yesterday"], [signed(ALICE), 1],
              [signed(ALICE), float("nan")]],
)
def test_malformed_entries_are_dropped(entry: object) -> None:
    loaded = _load(_with_entries([entry, [signed(BOB), NOW]]))
    assert loaded.problem is not None and loaded.problem.startswith("1 cached island")
    assert [v.device_id for v in loaded.membership.snapshot()] == [did(BOB)]


def test_a_duplicate_island_is_dropped() -> None:
    loaded = _load(_with_entries([[signed(ALICE, seq=2), NOW], [signed(ALICE, seq=1), NOW]]))
    assert loaded.problem is not None
    (view,) = loaded.membership.snapshot()
    assert view.device_id == did(ALICE)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "unreadable"),
        (b"\xc1\xc1", "unreadable"),
        (msgpack.packb([1, 2]), "not an IslandRun island list"),
        (msgpack.packb({"v": 1, "kind": "other", "islands": []}), "not an IslandRun"),
        (msgpack.packb({"v": 2, "kind": "islandrun/island-cache", "islands": []}), "version"),
        (msgpack.packb({"v": 1, "kind": "islandrun/island-cache"}), "no island list"),
        (b"\x00" * (lighthouse.MAX_CACHE_BYTES + 1), "unreadable"),
    ],
)
def test_an_unusable_cache_gives_an_empty_table_and_a_reason(data: bytes, why: str) -> None:
    loaded = _load(data)
    assert loaded.problem is not None and why in loaded.problem
    assert loaded.membership.snapshot() == ()


@given(st.binary(max_size=2048))
def test_arbitrary_cache_bytes_never_raise(data: bytes) -> None:
    loaded = _load(data)
    assert loaded.problem is not None or loaded.membership.snapshot() == ()


def test_the_cache_is_bounded_and_keeps_the_most_recently_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = [SigningKey(bytes([i]) * 32) for i in range(40, 60)]
    members = table(*keys)
    for i, key in enumerate(keys):
        members.ingest(signed(key), did(key), NOW + i)
    size = len(members.to_cache_bytes())
    monkeypatch.setattr(lighthouse, "MAX_CACHE_BYTES", size // 2)
    data = members.to_cache_bytes()
    assert len(data) <= size // 2
    loaded = _load(data, *keys).membership.snapshot()
    kept = sorted(v.last_seen for v in loaded)
    assert 5 <= len(kept) < len(keys)
    assert kept == [NOW + i for i in range(len(keys) - len(kept), len(keys))]
