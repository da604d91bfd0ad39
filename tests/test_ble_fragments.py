"""Fragmentation and bounded reassembly (protocol.fragments), pure."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandrun.protocol.errors import LocalProtocolError
from islandrun.protocol.fragments import (
    HEADER,
    FragmentError,
    Reassembler,
    ReassemblyLimits,
    fragment,
    fragment_count,
)

MESSAGE = bytes(range(256)) * 3


@pytest.mark.parametrize("mtu", [7, 20, 23, 244, 1000])
def test_fragments_fit_the_mtu_and_reassemble(mtu: int) -> None:
    pieces = fragment(MESSAGE, msg_id=9, mtu=mtu)
    assert all(len(p) <= mtu for p in pieces)
    assert len(pieces) == fragment_count(len(MESSAGE), mtu)
    r = Reassembler()
    assert [r.receive(p, 0.0) for p in pieces[:-1]] == [None] * (len(pieces) - 1)
    assert r.receive(pieces[-1], 0.0) == MESSAGE
    assert r.statistics().in_flight == 0


def test_an_empty_message_is_one_fragment() -> None:
    (only,) = fragment(b"", msg_id=0, mtu=20)
    assert Reassembler().receive(only, 0.0) == b""


def test_reordering_and_duplicates_are_tolerated() -> None:
    pieces = fragment(MESSAGE, msg_id=1, mtu=20)
    shuffled = pieces + pieces[:5]
    random.Random(4).shuffle(shuffled)
    r = Reassembler()
    done = [m for m in (r.receive(p, 0.0) for p in shuffled) if m is not None]
    assert done == [MESSAGE]
    assert r.statistics().duplicates == 5


def test_a_lost_fragment_times_out_and_frees_its_memory() -> None:
    pieces = fragment(MESSAGE, msg_id=2, mtu=20)
    r = Reassembler(ReassemblyLimits(timeout=30.0))
    for p in pieces[1:]:
        assert r.receive(p, 1.0) is None
    assert r.buffered_bytes > 0
    assert r.expire(30.9) == 0
    assert r.expire(31.0) == 1
    assert r.statistics().buffered_bytes == 0 and r.statistics().expired == 1


def test_in_flight_cap_evicts_the_oldest_partial_message() -> None:
    r = Reassembler(ReassemblyLimits(max_in_flight=2))
    firsts = [fragment(MESSAGE, msg_id=i, mtu=20) for i in range(3)]
    for pieces in firsts:
        r.receive(pieces[0], 0.0)
    assert r.statistics().in_flight == 2 and r.statistics().evicted == 1
    for p in firsts[0][1:]:  # message 0 was evicted: its rest never completes it
        assert r.receive(p, 0.0) is None
    assert r.statistics().evicted == 2  # and restarting it evicted message 1


def test_a_message_over_the_size_limit_is_refused() -> None:
    r = Reassembler(ReassemblyLimits(max_message_size=100))
    pieces = fragment(MESSAGE, msg_id=3, mtu=60)
    with pytest.raises(FragmentError, match="limit"):
        for p in pieces:
            r.receive(p, 0.0)
    assert r.buffered_bytes == 0


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x01",  # shorter than the header
        HEADER.pack(1, 3, 3) + b"x",  # index not below count
        HEADER.pack(1, 0, 0) + b"x",  # zero count
        HEADER.pack(1, 0, 2),  # empty piece of a multi-piece message
    ],
)
def test_malformed_fragments_raise_our_error(bad: bytes) -> None:
    with pytest.raises(FragmentError):
        Reassembler().receive(bad, 0.0)


def test_a_changed_count_drops_the_partial_message() -> None:
    r = Reassembler()
    r.receive(HEADER.pack(5, 0, 3) + b"a", 0.0)
    with pytest.raises(FragmentError, match="count"):
        r.receive(HEADER.pack(5, 1, 4) + b"b", 0.0)
    assert r.statistics().in_flight == 0


def test_late_duplicates_of_a_completed_message_do_not_restart_it() -> None:
    pieces = fragment(MESSAGE, msg_id=6, mtu=100)
    r = Reassembler()
    for p in pieces:
        r.receive(p, 0.0)
    assert r.receive(pieces[0], 0.0) is None
    assert r.statistics().in_flight == 0


def test_fragmenting_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError):
        fragment(b"x", msg_id=0, mtu=HEADER.size)
    with pytest.raises(LocalProtocolError):
        fragment(b"x", msg_id=1 << 16, mtu=20)
    with pytest.raises(LocalProtocolError):
        fragment(bytes(0x10000 * 2), msg_id=0, mtu=8)


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        ReassemblyLimits(timeout=0)
    with pytest.raises(ValueError):
        ReassemblyLimits(max_in_flight=0)


LIMITS = ReassemblyLimits(max_message_size=512, max_in_flight=4, timeout=5.0, remembered=8)
_header = st.tuples(st.integers(0, 7), st.integers(0, 40), st.integers(0, 40))
_fragment = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda h, b: HEADER.pack(*h) + b, _header, st.binary(max_size=60)),
)


@given(st.lists(st.tuples(_fragment, st.floats(0, 3)), max_size=200))
def test_any_fragment_stream_raises_only_our_error_and_stays_bounded(
    stream: list[tuple[bytes, float]],
) -> None:
    r = Reassembler(LIMITS)
    now = 0.0
    for data, step in stream:
        now += step
        try:
            message = r.receive(data, now)
        except FragmentError:
            message = None
        if message is not None:
            assert len(message) <= LIMITS.max_message_size
        r.expire(now)
        stats = r.statistics()
        assert stats.in_flight <= LIMITS.max_in_flight
        assert stats.buffered_bytes <= LIMITS.max_in_flight * LIMITS.max_message_size


@given(st.binary(max_size=2000), st.integers(7, 300), st.randoms(use_true_random=False))
def test_any_message_survives_any_order_of_its_fragments(
    message: bytes, mtu: int, rng: random.Random
) -> None:
    pieces = fragment(message, msg_id=77, mtu=mtu)
    rng.shuffle(pieces)
    r = Reassembler(ReassemblyLimits(max_message_size=2000))
    assert [m for m in (r.receive(p, 0.0) for p in pieces) if m is not None] == [message]
