"""Admission: only fresh, verified adverts of paired devices enter the table."""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandrun.node.lighthouse import (
    ADVERT_PAYLOAD_TYPE,
    AdvertRejectReason,
    Liveness,
    Transition,
    seal_advert,
)
from islandrun.protocol import envelope
from islandrun.protocol.errors import LocalProtocolError, RejectReason
from islandrun.protocol.messages import Cancel, encode
from tests.lighthouse_helpers import ALICE, BOB, MALLORY, NOW, advert, did, signed, table


def _edit(data: bytes, **changes: object) -> bytes:
    body = msgpack.unpackb(data)
    body.update(changes)
    return msgpack.packb(body, use_bin_type=True)


def _sealed(key=ALICE, *, payload: bytes, payload_type: bytes = ADVERT_PAYLOAD_TYPE,
            domain: str = envelope.DOMAIN_ADVERT, seq: int = 1) -> bytes:
    return envelope.seal_envelope(key, domain=domain, payload_type=payload_type,
                                  payload=payload, seq=seq, expires=NOW + 30)


def test_a_verified_advert_joins_the_table() -> None:
    members = table()
    result = members.ingest(signed(ALICE, name="alice-laptop", battery_pct=80.0), did(ALICE), NOW)
    assert result.accepted and result.reason is None
    assert result.transition == Transition(device_id=did(ALICE), old=None, new=Liveness.ALIVE,
                                           at=NOW)
    (view,) = members.snapshot()
    assert (view.device_id, view.name, view.liveness, view.last_seen, view.since) == (
        did(ALICE), "alice-laptop", Liveness.ALIVE, NOW, NOW)
    assert view.advert.battery_pct == 80.0


def test_a_newer_advert_replaces_the_old_one() -> None:
    members = table()
    members.ingest(signed(ALICE, seq=1, capacity=0.5), did(ALICE), NOW)
    result = members.ingest(signed(ALICE, seq=2, capacity=0.9), did(ALICE), NOW + 1)
    assert result.accepted and result.transition is None  # already alive
    (view,) = members.snapshot()
    assert view.advert.capacity == 0.9 and view.last_seen == NOW + 1


GOOD = signed(ALICE)
# name -> (bytes, sender, expected reason)
REJECTED: dict[str, tuple[Callable[[], bytes], str, object]] = {
    "forged signature": (lambda: _edit(GOOD, sig=bytes(64)), did(ALICE),
                         RejectReason.BAD_SIGNATURE),
    "tampered payload": (lambda: _edit(GOOD, p=encode(advert(ALICE, capacity=1.0))), did(ALICE),
                         RejectReason.BAD_SIGNATURE),
    "tampered expiry": (lambda: _edit(GOOD, e=NOW + 10_000), did(ALICE),
                        RejectReason.BAD_SIGNATURE),
    "key swapped under alice's id": (lambda: _edit(signed(MALLORY), id=did(ALICE)), did(ALICE),
                                     RejectReason.SIGNER_MISMATCH),
    "expired": (lambda: signed(ALICE, expires=NOW - 0.001), did(ALICE), RejectReason.EXPIRED),
    "unpaired key": (lambda: signed(MALLORY), did(MALLORY), AdvertRejectReason.UNPAIRED),
    "unpaired key relayed as alice": (lambda: signed(MALLORY), did(ALICE),
                                      RejectReason.SIGNER_MISMATCH),
    "paired key, wrong sender": (lambda: signed(BOB), did(ALICE), RejectReason.SIGNER_MISMATCH),
    "advert of another device": (
        lambda: _sealed(BOB, payload=encode(advert(BOB, device_id=did(ALICE)))), did(BOB),
        AdvertRejectReason.ADVERT_SIGNER_MISMATCH),
    "another domain": (lambda: _sealed(payload=encode(advert(ALICE)),
                                       domain=envelope.DOMAIN_REVOCATION), did(ALICE),
                       RejectReason.WRONG_DOMAIN),
    "another payload type": (lambda: _sealed(payload=encode(advert(ALICE)), payload_type=b"x"),
                             did(ALICE), AdvertRejectReason.NOT_AN_ADVERT),
    "not an advert": (lambda: _sealed(payload=encode(Cancel(request_id="r"))), did(ALICE),
                      AdvertRejectReason.NOT_AN_ADVERT),
    "garbage payload": (lambda: _sealed(payload=b"\xc1"), did(ALICE),
                        AdvertRejectReason.NOT_AN_ADVERT),
    "not msgpack": (lambda: b"\xc1junk", did(ALICE), RejectReason.MALFORMED),
    "oversized": (lambda: b"\x00" * (envelope.MAX_ENVELOPE_SIZE + 1), did(ALICE),
                  RejectReason.OVERSIZED),
}


@pytest.mark.parametrize("case", REJECTED)
def test_bad_adverts_never_enter_the_table(case: str) -> None:
    make, sender, reason = REJECTED[case]
    members = table()
    result = members.ingest(make(), sender, NOW)
    assert not result.accepted and result.reason is reason and result.transition is None
    assert members.snapshot() == ()


def test_a_replayed_advert_is_refused_and_keeps_the_newer_one() -> None:
    members = table()
    old, new = signed(ALICE, seq=1, capacity=0.1), signed(ALICE, seq=2, capacity=0.9)
    assert members.ingest(old, did(ALICE), NOW).accepted
    assert members.ingest(new, did(ALICE), NOW).accepted
    assert members.ingest(new, did(ALICE), NOW + 1).reason is RejectReason.STALE_SEQ
    assert members.ingest(old, did(ALICE), NOW + 1).reason is RejectReason.STALE_SEQ
    (view,) = members.snapshot()
    assert view.advert.capacity == 0.9 and view.last_seen == NOW


def test_same_seq_with_other_content_is_refused() -> None:
    members = table()
    members.ingest(signed(ALICE, seq=5, capacity=0.1), did(ALICE), NOW)
    result = members.ingest(signed(ALICE, seq=5, capacity=0.2), did(ALICE), NOW)
    assert result.reason is RejectReason.CONFLICTING_SEQ
    assert members.snapshot()[0].advert.capacity == 0.1


def test_a_rejected_advert_does_not_advance_the_seq() -> None:
    members = table()
    assert not members.ingest(_sealed(payload=b"\xc1", seq=9), did(ALICE), NOW).accepted
    assert members.ingest(signed(ALICE, seq=3), did(ALICE), NOW).accepted


def test_revoked_devices_are_dropped_and_refused() -> None:
    members = table()
    members.ingest(signed(ALICE, seq=1), did(ALICE), NOW)
    assert members.revoke(did(ALICE)) is True
    assert members.snapshot() == ()
    assert members.ingest(signed(ALICE, seq=2), did(ALICE), NOW).reason is (
        AdvertRejectReason.REVOKED)
    assert members.revoke(did(BOB)) is False
    assert members.ingest(signed(BOB), did(BOB), NOW).reason is AdvertRejectReason.REVOKED


def test_seal_advert_refuses_an_advert_of_another_device() -> None:
    with pytest.raises(LocalProtocolError):
        seal_advert(ALICE, advert(BOB), seq=1, expires=NOW + 30)


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_rejected_never_raised(data: bytes) -> None:
    members = table()
    assert not members.ingest(data, did(ALICE), NOW).accepted
    assert members.snapshot() == ()


@given(st.binary(max_size=2048), st.binary(max_size=16))
def test_arbitrary_payloads_signed_by_a_paired_key_are_rejected(payload: bytes,
                                                                kind: bytes) -> None:
    members = table()
    assert not members.ingest(_sealed(payload=payload, payload_type=kind), did(ALICE), NOW).accepted


_FIELD = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=8), st.binary(max_size=80),
)


_KEYS = st.sampled_from(["d", "pt", "p", "s", "e", "k", "id", "sig"])


@given(st.dictionaries(_KEYS, _FIELD, min_size=1))
def test_arbitrary_envelope_fields_are_rejected(fields: dict) -> None:
    assert not table().ingest(_edit(GOOD, **fields), did(ALICE), NOW).accepted
