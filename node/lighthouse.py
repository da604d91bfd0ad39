"""LIGHTHOUSE membership: which paired islands exist, what they offer, whether they are up.

LIGHTHOUSE (the paper's "Link and Health Tracking for Heterogeneous Operations
Using Synchronized Endpoints") keeps the mesh's island list and its liveness.
This module is its pure core: a table of the latest *verified* advert per
paired device, a liveness state per device, and the cached island list.

What it is not: a transport (adverts arrive as bytes from whatever carried
them), a clock (every method takes ``now``, Unix seconds, because advert
expiry is wall-clock time), or a source of trust: an advert is a claim, and
trust comes from pairing records. No I/O, no trio.

Admission (:meth:`Membership.ingest`), cheapest check first:

1. the sender is not revoked and the caller's allowlist (pairing; until
   pairing exists, the node config) allows it -- before any signature work;
2. the envelope verifies (:func:`~islandrun.protocol.envelope.open_envelope`:
   size, signature, advert domain, signer = sender, not expired);
3. the payload is an advert, of this envelope's signer;
4. its seq is newer than the last one accepted from that device (replay).
   The seq is recorded only after every check passed.

Liveness, after hashicorp/memberlist with Lifeguard's shrinking suspicion::

    ALIVE   -> SUSPECT  silence >= suspect_after (noticed by tick), or a failed request
    SUSPECT -> ALIVE    a newer advert or a successful request (the refutation)
    SUSPECT -> DEAD     the suspicion timeout passed; every further failure
                        report confirms the suspicion and shortens it
    DEAD    -> ALIVE    a newer advert or a successful request (a peer rejoins)
    DEAD    -> gone     reap_after later;  any -> gone: revoke(), or unpaired

Suspicion starts when it is *noticed* (by :meth:`Membership.tick` or a failure
report), not when the silence began: a laptop waking from sleep gives every
peer a full suspicion period to refute instead of declaring them all dead at
once. The runtime calls ``tick`` at :meth:`Membership.next_deadline`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgpack
from nacl.signing import SigningKey

from islandrun.protocol import envelope
from islandrun.protocol.errors import (
    DecodeError,
    EnvelopeRejected,
    LocalProtocolError,
    RejectReason,
    RemoteProtocolError,
)
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.messages import Advert, decode_as, encode, unpack

from .lighthouse_config import LighthouseConfig

#: The payload type of a signed advert (inside the advert domain).
ADVERT_PAYLOAD_TYPE = envelope.PAYLOAD_ADVERT
#: Says whether a device id is paired; supplied by the caller.
Allowlist = Callable[[str], bool]

CACHE_VERSION = 1
_CACHE_KIND = "islandrun/island-cache"
#: Bound on the cached island list. Adverts are ~1 KB; 1 MiB holds hundreds,
#: far more islands than one person pairs. The writer keeps the most recently
#: seen islands that fit.
MAX_CACHE_BYTES = 1024 * 1024
_CACHE_ENTRY_OVERHEAD = 16  # msgpack framing of one [envelope, last_seen] pair


class Liveness(enum.Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


#: What a member's deadline passing does to it (``None``: forget it).
_ON_DEADLINE: dict[Liveness, Liveness | None] = {
    Liveness.ALIVE: Liveness.SUSPECT,
    Liveness.SUSPECT: Liveness.DEAD,
    Liveness.DEAD: None,
}


class AdvertRejectReason(enum.Enum):
    """Why an advert was refused after (or instead of) envelope checks."""

    UNPAIRED = "sender is not a paired device"
    REVOKED = "device was revoked"
    NOT_AN_ADVERT = "signed payload is not an advert"
    ADVERT_SIGNER_MISMATCH = "advert describes another device than its signer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """A device's liveness changed at ``at``; ``None`` = not in the table."""

    device_id: str
    old: Liveness | None
    new: Liveness | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What :meth:`Membership.ingest` did with one advert."""

    device_id: str
    #: ``None`` when the advert was accepted.
    reason: RejectReason | AdvertRejectReason | None = None
    #: Set when accepting it changed the device's liveness (joined, refuted).
    transition: Transition | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True, kw_only=True)
class IslandView:
    """One island as the table sees it now (for ``islandnode peers`` and WAVES)."""

    device_id: str
    name: str
    liveness: Liveness
    #: Unix seconds of the last accepted advert or successful request.
    last_seen: float
    #: Unix seconds at which it entered its current liveness.
    since: float
    advert: Advert


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheLoad:
    """A table rebuilt from the cache, and what could not be used (or ``None``)."""

    membership: Membership
    problem: str | None


def suspicion_timeout(confirmations: int, expected: int, min_s: float, max_s: float) -> float:
    """Seconds a suspicion lasts after ``confirmations`` of ``expected`` arrived.

    Lifeguard (Dadgar et al., 2018) as memberlist's ``remainingSuspicionTime``
    computes it: start at ``max_s`` and fall logarithmically, so the first
    confirmations buy the most, reaching ``min_s`` at ``expected``::

        max(min_s, max_s - (max_s - min_s) * log(n + 1) / log(k + 1))

    memberlist subtracts the time elapsed; the table stores the deadline
    ``since + timeout`` instead. ``expected < 1`` means no confirmation is
    awaited: the minimum applies at once.
    """
    if expected < 1:
        return min_s
    fraction = math.log(confirmations + 1) / math.log(expected + 1)
    return max(min_s, max_s - fraction * (max_s - min_s))


def seal_advert(key: SigningKey, advert: Advert, *, seq: int, expires: float) -> bytes:
    """Sign our own advert as :meth:`Membership.ingest` expects it."""
    if advert.device_id != device_id_from_public_key(bytes(key.verify_key)):
        raise LocalProtocolError("an advert must carry the device id of the key that signs it")
    return envelope.seal_envelope(
        key,
        domain=envelope.DOMAIN_ADVERT,
        payload_type=ADVERT_PAYLOAD_TYPE,
        payload=encode(advert),
        seq=seq,
        expires=expires,
    )


class _Rejected(RemoteProtocolError):
    """Internal: carries an :class:`AdvertRejectReason` out of ``_open_advert``."""

    def __init__(self, reason: AdvertRejectReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def _open_advert(
    data: bytes, *, now: float, expected_device: str | None
) -> tuple[envelope.Envelope, Advert]:
    """Verify a signed advert completely except for replay (the caller's tracker)."""
    env = envelope.open_envelope(
        data, domain=envelope.DOMAIN_ADVERT, now=now, expected_device=expected_device
    )
    if env.payload_type != ADVERT_PAYLOAD_TYPE:
        raise _Rejected(AdvertRejectReason.NOT_AN_ADVERT)
    try:
        advert = decode_as(env.payload, Advert)
    except DecodeError:
        raise _Rejected(AdvertRejectReason.NOT_AN_ADVERT) from None
    if advert.device_id != env.device_id:
        raise _Rejected(AdvertRejectReason.ADVERT_SIGNER_MISMATCH)
    return env, advert


@dataclass(slots=True, kw_only=True)
class _Member:
    advert: Advert
    #: The signed bytes it arrived in, kept for the cache (re-verified on load).
    signed: bytes
    last_seen: float
    liveness: Liveness
    since: float
    # Invariant: confirmations == 0 unless liveness is SUSPECT.
    confirmations: int = 0


class Membership:
    """The latest verified advert and the liveness of every paired island.

    Every method that takes ``now`` may move a deadline: the runtime re-reads
    :meth:`next_deadline` after each call and calls :meth:`tick` then.

    Bounded by the allowlist: only allowed devices ever enter. Revocation
    through :meth:`revoke` lasts as long as this object; the pairing store
    makes it durable by removing the device from the allowlist.
    """

    def __init__(self, config: LighthouseConfig, allowed: Allowlist) -> None:
        self._config = config
        self._allowed = allowed
        self._members: dict[str, _Member] = {}
        self._revoked: set[str] = set()
        self._seqs = envelope.SeqTracker()

    # ---------------------------------------------------------------- adverts

    def ingest(self, data: bytes, sender_device_id: str, now: float) -> IngestResult:
        """Admit a signed advert from ``sender_device_id`` (the device the
        transport authenticated as its origin); never raises for bad bytes."""
        result = IngestResult(device_id=sender_device_id)
        if sender_device_id in self._revoked:
            return replace(result, reason=AdvertRejectReason.REVOKED)
        if not self._allowed(sender_device_id):
            return replace(result, reason=AdvertRejectReason.UNPAIRED)
        try:
            env, advert = _open_advert(data, now=now, expected_device=sender_device_id)
            self._seqs.check(env)
        except EnvelopeRejected as exc:
            return replace(result, reason=exc.reason)
        except _Rejected as exc:
            return replace(result, reason=exc.reason)
        self._seqs.accept(env)
        return replace(result, transition=self._heard(sender_device_id, advert, bytes(data), now))

    def _heard(
        self, device_id: str, advert: Advert, signed: bytes, now: float
    ) -> Transition | None:
        member = self._members.get(device_id)
        if member is None:
            self._members[device_id] = _Member(
                advert=advert, signed=signed, last_seen=now, liveness=Liveness.ALIVE, since=now
            )
            return Transition(device_id=device_id, old=None, new=Liveness.ALIVE, at=now)
        member.advert, member.signed = advert, signed
        return self._alive(device_id, member, now)

    # --------------------------------------------------------------- liveness

    def report_failure(self, device_id: str, now: float) -> Transition | None:
        """A request to ``device_id`` failed (dial, deadline, reset): suspect it,
        or, if already suspected, count one more confirmation."""
        member = self._members.get(device_id)
        if member is None or member.liveness is Liveness.DEAD:
            return None
        if member.liveness is Liveness.SUSPECT:
            member.confirmations += 1
            return None
        return self._move(device_id, member, Liveness.SUSPECT, now)

    def report_success(self, device_id: str, now: float) -> Transition | None:
        """A request to ``device_id`` succeeded: it is alive, whatever we thought."""
        member = self._members.get(device_id)
        return None if member is None else self._alive(device_id, member, now)

    def revoke(self, device_id: str) -> bool:
        """Drop ``device_id`` now and refuse its adverts from now on.

        Returns whether it was in the table.
        """
        self._revoked.add(device_id)
        return self._members.pop(device_id, None) is not None

    def tick(self, now: float) -> tuple[Transition, ...]:
        """Apply every transition due at ``now``: silence, suspicion, reaping,
        and devices the allowlist no longer allows."""
        changes = []
        for device_id, member in list(self._members.items()):
            if not self._allowed(device_id):
                changes.append(self._remove(device_id, member, now))
            elif now >= self._deadline(member):
                changes.append(self._expire(device_id, member, now))
        return tuple(changes)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do if nothing arrives."""
        return min((self._deadline(m) for m in self._members.values()), default=None)

    def _deadline(self, member: _Member) -> float:
        config = self._config
        if member.liveness is Liveness.ALIVE:
            return member.last_seen + config.suspect_after
        if member.liveness is Liveness.SUSPECT:
            timeout = suspicion_timeout(
                member.confirmations,
                config.confirmations,
                config.suspicion_min,
                config.suspicion_max,
            )
            return member.since + timeout
        return member.since + config.reap_after

    def _expire(self, device_id: str, member: _Member, now: float) -> Transition:
        following = _ON_DEADLINE[member.liveness]
        if following is None:
            return self._remove(device_id, member, now)
        return self._move(device_id, member, following, now)

    def _alive(self, device_id: str, member: _Member, now: float) -> Transition | None:
        member.last_seen = now
        if member.liveness is Liveness.ALIVE:
            return None
        return self._move(device_id, member, Liveness.ALIVE, now)

    def _move(self, device_id: str, member: _Member, new: Liveness, now: float) -> Transition:
        old = member.liveness
        member.liveness, member.since, member.confirmations = new, now, 0
        return Transition(device_id=device_id, old=old, new=new, at=now)

    def _remove(self, device_id: str, member: _Member, now: float) -> Transition:
        del self._members[device_id]
        return Transition(device_id=device_id, old=member.liveness, new=None, at=now)

    # ------------------------------------------------------------------ views

    def snapshot(self) -> tuple[IslandView, ...]:
        """Every island in the table, ordered by device id."""
        return tuple(
            IslandView(
                device_id=device_id,
                name=m.advert.name,
                liveness=m.liveness,
                last_seen=m.last_seen,
                since=m.since,
                advert=m.advert,
            )
            for device_id, m in sorted(self._members.items())
        )

    # ------------------------------------------------------------------ cache

    def to_cache_bytes(self) -> bytes:
        """The island list to persist in the node home (msgpack, versioned,
        at most :data:`MAX_CACHE_BYTES`; the most recently seen islands win).

        Adverts are stored as the signed bytes they arrived in, so loading
        re-verifies them: an edited cache cannot invent an island.
        """
        entries: list[list[Any]] = []
        budget = MAX_CACHE_BYTES - 64  # room for the header
        for m in sorted(self._members.values(), key=lambda m: -m.last_seen):
            budget -= len(m.signed) + _CACHE_ENTRY_OVERHEAD
            if budget < 0:
                break
            entries.append([m.signed, m.last_seen])
        body = {"v": CACHE_VERSION, "kind": _CACHE_KIND, "islands": entries}
        return msgpack.packb(body, use_bin_type=True)

    @classmethod
    def from_cache_bytes(
        cls, data: bytes, *, config: LighthouseConfig, allowed: Allowlist, now: float
    ) -> CacheLoad:
        """Rebuild a table from :meth:`to_cache_bytes` output; never raises.

        Cached islands come back SUSPECT from ``now``: they were known, not
        seen lately, and get a full suspicion period to show they are up.
        Their adverts may have expired (the list says what an island offered,
        not that it is up); everything else is verified as in :meth:`ingest`.
        Islands no longer allowed are skipped. An unusable cache yields an
        empty table and ``problem`` says why.
        """
        table = cls(config, allowed)
        entries = _cache_entries(data)
        if isinstance(entries, str):
            return CacheLoad(membership=table, problem=entries)
        dropped = sum(not table._restore(entry, now) for entry in entries)
        problem = f"{dropped} cached island(s) failed verification and were dropped"
        return CacheLoad(membership=table, problem=problem if dropped else None)

    def _restore(self, entry: object, now: float) -> bool:
        """Add one cached island; False if the entry is bad (not merely unpaired)."""
        if not (isinstance(entry, list) and len(entry) == 2):
            return False
        signed, last_seen = entry
        if type(signed) is not bytes or type(last_seen) is not float:
            return False
        if not math.isfinite(last_seen):
            return False
        try:
            env, advert = _open_advert(signed, now=-math.inf, expected_device=None)
            self._seqs.check(env)
        except (EnvelopeRejected, _Rejected):
            return False
        if self._allowed(env.device_id):
            self._seqs.accept(env)
            self._members[env.device_id] = _Member(
                advert=advert,
                signed=signed,
                last_seen=last_seen,
                liveness=Liveness.SUSPECT,
                since=now,
            )
        return True


def _cache_entries(data: bytes) -> list[object] | str:
    """The cache's island entries, or why the cache is unusable."""
    try:
        body = unpack(data, max_size=MAX_CACHE_BYTES)
    except DecodeError as exc:
        return f"island cache unreadable ({exc}); starting with an empty island list"
    if type(body) is not dict or body.get("kind") != _CACHE_KIND:
        return "island cache is not an IslandRun island list; starting with an empty one"
    if body.get("v") != CACHE_VERSION:
        return "island cache has an unsupported version; starting with an empty island list"
    entries = body.get("islands")
    if type(entries) is not list:
        return "island cache has no island list; starting with an empty one"
    return entries
