"""The per-stream ARQ (transports.ble_arq), pure."""

from __future__ import annotations

import pytest

from islandrun.transports.base import PeerUnavailable
from islandrun.transports.ble_arq import ReceiveWindow, SendWindow


def test_the_window_bounds_messages_in_flight_and_acks_free_it() -> None:
    tx = SendWindow(window=2, rto=1.0, max_retries=3)
    assert [tx.push(b"a", 0.0), tx.push(b"b", 0.0)] == [0, 1]
    assert not tx.has_room()
    with pytest.raises(RuntimeError):
        tx.push(b"c", 0.0)
    assert tx.push(None, 0.0, force=True) == 2  # FIN always fits
    tx.ack(2, 0.5)
    assert tx.has_room() and not tx.idle


def test_silence_resends_everything_outstanding_then_gives_up() -> None:
    tx = SendWindow(window=4, rto=1.0, max_retries=2)
    tx.push(b"a", 0.0)
    tx.push(b"b", 0.0)
    assert tx.expire(0.9) is None
    assert tx.expire(1.0) == [(0, b"a"), (1, b"b")]
    assert tx.expire(2.0) == [(0, b"a"), (1, b"b")]
    with pytest.raises(PeerUnavailable):
        tx.expire(3.0)


def test_hearing_from_the_peer_resets_the_retry_count_without_progress() -> None:
    tx = SendWindow(window=4, rto=1.0, max_retries=1)
    tx.push(b"a", 0.0)
    tx.expire(1.0)
    tx.ack(0, 1.5)  # alive, reader slow: no progress
    assert tx.retries == 0 and tx.deadline == pytest.approx(2.5)


def test_big_outstanding_messages_get_more_time() -> None:
    tx = SendWindow(window=4, rto=1.0, max_retries=1, per_byte=0.01)
    tx.push(bytes(100), 0.0)
    assert tx.deadline == pytest.approx(2.0)


def test_the_receiver_takes_only_the_next_in_order() -> None:
    rx = ReceiveWindow()
    assert [rx.accept(1), rx.accept(0), rx.accept(0), rx.accept(1)] == [False, True, False, True]
    assert rx.expected == 2
