"""Spare request streams: one stream per peer opened ahead of the request that will use it.

Opening a libp2p stream costs a Yamux stream plus a multistream-select
negotiation -- two round trips and ~3 ms of py-libp2p's event-loop CPU on
each side -- and a request waits for all of it before its first byte
leaves. So after each request stream it opens to a peer, the transport opens
the *next* one in the background and parks it here; the next request to that
peer takes it and starts sending at once (bench/inference.py: time to first
token).

Rules:

* at most one spare per peer, and only for peers this device has opened a
  request stream to (no idle streams to devices it never asks);
* a spare is used only while younger than ``max_age``; the island waits for
  a spare's first message for longer than that (``spare_idle_timeout`` in
  :class:`~.libp2p.Libp2pConfig`) before dropping it, so a spare taken in
  time is never one the island has already given up on;
* a spare whose connection is gone is aborted, not used (the transport
  checks it when it takes it).

This module is bookkeeping only (time is passed in, no I/O): the transport
opens, checks and aborts the streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class _Spare(Generic[S]):
    stream: S
    opened_at: float


class SparePool(Generic[S]):
    """At most one pre-opened stream per peer, with its age."""

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._spares: dict[str, _Spare[S]] = {}
        #: Peers whose next spare is being opened now.
        self._opening: set[str] = set()

    def take(self, peer: str, now: float) -> tuple[S, bool] | None:
        """Remove the peer's spare: ``(stream, fresh)``, or None if it has none.
        A stale one (``fresh`` false) is the caller's to abort."""
        spare = self._spares.pop(peer, None)
        if spare is None:
            return None
        return spare.stream, now - spare.opened_at < self._max_age

    def want(self, peer: str) -> bool:
        """Whether to open a spare for ``peer`` now; if True, the caller must
        call :meth:`put` or :meth:`failed` for it later."""
        if peer in self._spares or peer in self._opening:
            return False
        self._opening.add(peer)
        return True

    def put(self, peer: str, stream: S, now: float) -> None:
        self._opening.discard(peer)
        self._spares[peer] = _Spare(stream, now)

    def failed(self, peer: str) -> None:
        """Opening the peer's spare failed: none until the next request."""
        self._opening.discard(peer)

    def expired(self, now: float) -> list[tuple[str, S]]:
        """Remove and return the spares that reached ``max_age``."""
        old = [p for p, s in self._spares.items() if now - s.opened_at >= self._max_age]
        return [(peer, self._spares.pop(peer).stream) for peer in old]

    def drain(self) -> list[S]:
        """Remove and return every spare (shutdown)."""
        streams = [s.stream for s in self._spares.values()]
        self._spares.clear()
        return streams
