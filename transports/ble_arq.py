"""Reliable, ordered delivery over the lossy mesh for one stream (pure).

Mesh packets can be lost: a relay's queue overflows, a fragment is lost on
the air and its message times out, a phone walks out of range. A request
stream must still deliver every message once and in order, so each
direction of a stream runs a small *go-back-N* ARQ, TCP's simplest
ancestor:

* the sender numbers messages 0, 1, 2, ... and keeps at most ``window`` of
  them unacknowledged (:meth:`SendWindow.has_room`: the back-pressure a
  caller waits on);
* the receiver accepts only the next number it expects and answers every
  data packet with a cumulative ACK ("I have everything below n"), so
  duplicates and out-of-order arrivals are dropped and re-acknowledged;
* a timer: if nothing is heard for ``rto`` seconds (plus ``per_byte``
  seconds for each byte outstanding: a big message takes a while to cross
  slow links, and its ACK cannot come sooner), the sender resends every
  unacknowledged message (or, with nothing outstanding but a reader waiting,
  a probe the peer must answer). ``max_retries`` silent timeouts in a row
  mean the peer is gone: :class:`~.base.PeerUnavailable`. Anything heard
  from the peer -- even an ACK that makes no progress because its reader is
  slow -- resets that count: liveness is not progress.

Time is passed in; the transport owns the timer task.
"""

from __future__ import annotations

from collections import deque

from .base import PeerUnavailable

#: A message, or None for the end of the stream (FIN takes a number too).
Item = bytes | None


class SendWindow:
    """One direction's sender state."""

    def __init__(self, *, window: int, rto: float, max_retries: int, per_byte: float = 0.0) -> None:
        if window < 1 or not rto > 0 or max_retries < 1 or per_byte < 0:
            raise ValueError("window, rto and max_retries must be positive")
        self.window, self.rto, self.max_retries = window, rto, max_retries
        self.per_byte = per_byte
        self._bytes = 0  # Invariant: the total size of the unacknowledged items.
        self.next_seq = 0
        # Invariant: len(self._unacked) <= window + 1 (a forced FIN); seqs
        # consecutive, oldest first.
        self._unacked: deque[tuple[int, Item]] = deque()
        self.deadline: float | None = None
        self.retries = 0

    def has_room(self) -> bool:
        return len(self._unacked) < self.window

    @property
    def idle(self) -> bool:
        """Everything sent has been acknowledged."""
        return not self._unacked

    def push(self, item: Item, now: float, *, force: bool = False) -> int:
        """Number ``item`` for sending; the caller checked :meth:`has_room`.

        ``force`` lets the end of the stream (FIN) in past a full window, so
        closing never waits for the peer.
        """
        if not (force or self.has_room()):
            raise RuntimeError("push() on a full send window")
        seq = self.next_seq
        self._unacked.append((seq, item))
        self._bytes += len(item or b"")
        self.next_seq += 1
        self.arm(now)
        return seq

    def ack(self, next_expected: int, now: float) -> None:
        """The peer has everything below ``next_expected``."""
        while self._unacked and self._unacked[0][0] < next_expected:
            self._bytes -= len(self._unacked.popleft()[1] or b"")
        self.heard(now)

    def heard(self, now: float) -> None:
        """Something came from the peer: it is alive."""
        self.retries = 0
        self.deadline = now + self.timeout() if self._unacked else None

    def arm(self, now: float) -> None:
        """Start the timer unless it runs (data outstanding or a reader waiting)."""
        if self.deadline is None:
            self.deadline = now + self.timeout()

    def disarm(self) -> None:
        if self.idle:
            self.deadline = None

    def expire(self, now: float) -> list[tuple[int, Item]] | None:
        """None if the timer has not fired; else what to resend (maybe nothing:
        then probe). Raises :class:`PeerUnavailable` after too many in a row."""
        if self.deadline is None or now < self.deadline:
            return None
        self.retries += 1
        if self.retries > self.max_retries:
            raise PeerUnavailable(
                f"the peer answered nothing in {self.max_retries} retransmissions"
            )
        self.deadline = now + self.timeout()
        return list(self._unacked)

    def timeout(self) -> float:
        """Seconds of silence tolerated with what is outstanding now."""
        return self.rto + self.per_byte * self._bytes


class ReceiveWindow:
    """One direction's receiver state: the next number expected."""

    def __init__(self) -> None:
        self.expected = 0

    def accept(self, seq: int) -> bool:
        """True if ``seq`` is the next in order (and now consumed)."""
        if seq != self.expected:
            return False
        self.expected += 1
        return True
