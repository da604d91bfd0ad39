from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from nacl.signing import SigningKey

from islandrun.node.home import PersistentSequence
from islandrun.protocol import envelope as e
from islandrun.protocol.errors import EnvelopeRejected, RejectReason
from islandrun.protocol.ids import device_id_from_public_key

KEY = SigningKey(b"\x01" * 32)
OTHER = SigningKey(b"\x02" * 32)
NOW = 1_800_000_000.0


def sealed(key: SigningKey = KEY, *, seq: int = 10, payload: bytes = b"advert", **kw) -> bytes:
    args = {"domain": e.DOMAIN_ADVERT, "payload_type": b"advert", "expires": NOW + 60}
    args.update(kw)
    return e.seal_envelope(key, payload=payload, seq=seq, **args)


def reason(data: bytes, **kw) -> RejectReason:
    args = {"domain": e.DOMAIN_ADVERT, "now": NOW}
    args.update(kw)
    with pytest.raises(EnvelopeRejected) as info:
        e.open_envelope(data, **args)
    return info.value.reason


def edit(data: bytes, **changes: object) -> bytes:
    body = msgpack.unpackb(data)
    body.update(changes)
    return msgpack.packb(body, use_bin_type=True)


def test_valid_envelope_opens() -> None:
    env = e.open_envelope(sealed(), domain=e.DOMAIN_ADVERT, now=NOW)
    assert env.payload == b"advert" and env.seq == 10
    assert env.device_id == device_id_from_public_key(bytes(KEY.verify_key))


def test_bad_signature() -> None:
    body = msgpack.unpackb(sealed())
    body["sig"] = bytes(64)
    assert reason(msgpack.packb(body)) is RejectReason.BAD_SIGNATURE


@pytest.mark.parametrize("field", ["p", "pt", "s", "e"])
def test_tampered_content_breaks_signature(field: str) -> None:
    body = msgpack.unpackb(sealed())
    body[field] = {"p": b"advert!", "pt": b"other", "s": 11, "e": NOW + 999}[field]
    assert reason(msgpack.packb(body)) is RejectReason.BAD_SIGNATURE


def test_signature_for_another_domain() -> None:
    assert reason(sealed(domain=e.DOMAIN_REVOCATION)) is RejectReason.WRONG_DOMAIN


def test_domain_relabelled_is_a_bad_signature() -> None:
    data = edit(sealed(domain=e.DOMAIN_REVOCATION), d=e.DOMAIN_ADVERT)
    assert reason(data) is RejectReason.BAD_SIGNATURE


def test_signer_differs_from_claimed_device() -> None:
    other_id = device_id_from_public_key(bytes(OTHER.verify_key))
    assert reason(edit(sealed(), id=other_id)) is RejectReason.SIGNER_MISMATCH


def test_signer_differs_from_transport_peer() -> None:
    other_id = device_id_from_public_key(bytes(OTHER.verify_key))
    assert reason(sealed(), expected_device=other_id) is RejectReason.SIGNER_MISMATCH


def test_expired() -> None:
    assert reason(sealed(expires=NOW - 1)) is RejectReason.EXPIRED


def test_oversized() -> None:
    assert reason(sealed(payload=b"x" * 100), max_size=100) is RejectReason.OVERSIZED


@pytest.mark.parametrize("data", [b"", b"\x00", msgpack.packb([1]), msgpack.packb({"d": 1})])
def test_malformed(data: bytes) -> None:
    assert reason(data) is RejectReason.MALFORMED


def test_replay_and_old_seq_rejected() -> None:
    tracker = e.SeqTracker()
    e.open_envelope(sealed(seq=10), domain=e.DOMAIN_ADVERT, now=NOW, tracker=tracker)
    assert reason(sealed(seq=10), tracker=tracker) is RejectReason.STALE_SEQ
    assert reason(sealed(seq=9), tracker=tracker) is RejectReason.STALE_SEQ
    e.open_envelope(sealed(seq=11), domain=e.DOMAIN_ADVERT, now=NOW, tracker=tracker)


def test_equal_seq_different_content() -> None:
    tracker = e.SeqTracker()
    e.open_envelope(sealed(seq=10), domain=e.DOMAIN_ADVERT, now=NOW, tracker=tracker)
    data = sealed(seq=10, payload=b"another story")
    assert reason(data, tracker=tracker) is RejectReason.CONFLICTING_SEQ


def test_rejected_envelope_does_not_advance_tracker() -> None:
    tracker = e.SeqTracker()
    reason(sealed(seq=50, expires=NOW - 1), tracker=tracker)
    assert tracker.last_seq(device_id_from_public_key(bytes(KEY.verify_key))) is None


def test_allocator_survives_clock_going_backwards() -> None:
    alloc = e.SequenceAllocator()
    a, _ = alloc.next(NOW)
    b, _ = alloc.next(NOW - 3600)  # clock jumped back an hour
    c, _ = alloc.next(NOW - 3600)
    assert a < b < c


def test_allocator_reserves_in_blocks() -> None:
    alloc = e.SequenceAllocator()
    persists = [alloc.next(NOW + i * 1e-6)[1] for i in range(100)]
    assert persists[0] and not any(persists[1:])


def test_sequence_strictly_increases_across_restarts(tmp_path: Path) -> None:
    seqs = []
    for _ in range(3):
        store = PersistentSequence(tmp_path)  # a fresh process each time
        seqs += [store.next(NOW - 86_400), store.next(NOW - 86_400)]  # clock far behind
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert (tmp_path / "seq").stat().st_mode & 0o777 == 0o600
