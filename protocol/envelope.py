"""Signed envelopes: who said this, for what purpose, and is it still news.

The idea is libp2p RFC 0002 ("signed envelopes"): the signature covers a
*domain* string and a *payload type* as well as the payload, so a signature
made for one purpose (say, a pairing proof) can never be replayed as another
(say, an advert). We add three things RFC 0002 leaves to the application:

* ``seq`` -- a per-device sequence number that strictly increases, persisted
  in the node home so it survives restarts, and allocated from the wall clock
  *or* the last value, whichever is larger, so it never goes backwards when
  the clock does (:class:`SequenceAllocator`).
* ``expires`` -- an absolute expiry (Unix seconds), so a captured advert
  cannot be replayed to a node that has never seen a newer one, forever.
* ``device_id`` -- the claimed signer; verification insists that it is the
  device id of the signing key.

Signed bytes::

    "islandrun-envelope/1" 0x00 | len(domain) domain | len(type) type
    | len(payload) payload | seq (u64) | expires (f64) | public key (32)

Each length is a u32 big-endian. Everything is signed; nothing outside the
envelope (a BLE TTL, a frame header) is, which is what lets a relay decrement
a TTL without breaking the signature.

Verification (:func:`open_envelope`) is pure: time comes in as ``now`` and
replay state lives in a :class:`SeqTracker` the caller owns. Every rejection
is an :class:`EnvelopeRejected` with a distinct :class:`RejectReason`.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass

import msgpack
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import DecodeError, EnvelopeRejected, LocalProtocolError, RejectReason
from .ids import device_id_from_public_key
from .messages import unpack

_PREFIX = b"islandrun-envelope/1\x00"
#: Default bound on an encoded envelope (an advert is ~1 KB).
MAX_ENVELOPE_SIZE = 64 * 1024
#: Seq numbers are allocated in microseconds of wall-clock time, so a node
#: that restarts after its clock went backwards still moves forward.
_SEQ_PER_SECOND = 1_000_000

# Domains: one per purpose. APPEND-ONLY.
DOMAIN_ADVERT = "islandrun/advert"
DOMAIN_REVOCATION = "islandrun/revocation"
DOMAIN_INTRODUCTION = "islandrun/introduction"
# Payload types (the RFC 0002 "payload type"). APPEND-ONLY.
PAYLOAD_ADVERT = b"advert"


def signed_bytes(
    domain: str, payload_type: bytes, payload: bytes, seq: int, expires: float, public_key: bytes
) -> bytes:
    """The exact bytes a signature covers (see the module docstring)."""
    d = domain.encode()
    return b"".join(
        (
            _PREFIX,
            struct.pack(">I", len(d)),
            d,
            struct.pack(">I", len(payload_type)),
            payload_type,
            struct.pack(">I", len(payload)),
            payload,
            struct.pack(">Qd", seq, expires),
            public_key,
        )
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A verified envelope: the payload and who signed it."""

    domain: str
    payload_type: bytes
    payload: bytes
    seq: int
    expires: float
    public_key: bytes
    device_id: str
    signature: bytes

    @property
    def digest(self) -> bytes:
        """Identifies the content, to tell a replay from an equivocation."""
        return hashlib.blake2b(self.payload_type + self.payload, digest_size=16).digest()


def seal_envelope(
    key: SigningKey,
    *,
    domain: str,
    payload_type: bytes,
    payload: bytes,
    seq: int,
    expires: float,
) -> bytes:
    """Sign ``payload`` for ``domain`` and encode the envelope (msgpack)."""
    if not 0 <= seq < 2**64:
        raise LocalProtocolError("seq must fit in 64 unsigned bits")
    if not math.isfinite(expires):
        raise LocalProtocolError("expiry must be a finite time")
    public_key = bytes(key.verify_key)
    sig = key.sign(signed_bytes(domain, payload_type, payload, seq, expires, public_key)).signature
    return msgpack.packb(
        {
            "d": domain,
            "pt": payload_type,
            "p": payload,
            "s": seq,
            "e": float(expires),
            "k": public_key,
            "id": device_id_from_public_key(public_key),
            "sig": sig,
        },
        use_bin_type=True,
    )


def _field(body: dict, key: str, kind: type) -> object:
    value = body.get(key)
    if type(value) is not kind:
        raise EnvelopeRejected(RejectReason.MALFORMED, f"field {key!r} missing or ill-typed")
    return value


def parse_envelope(data: bytes, *, max_size: int = MAX_ENVELOPE_SIZE) -> Envelope:
    """Decode an envelope's fields and check its signature; nothing else.

    Domain, expiry and replay checks are :func:`open_envelope`'s job.
    """
    if len(data) > max_size:
        raise EnvelopeRejected(RejectReason.OVERSIZED, f"{len(data)} > {max_size} bytes")
    try:
        body = unpack(data, max_size=max_size)
    except DecodeError:
        raise EnvelopeRejected(RejectReason.MALFORMED, "not msgpack") from None
    if type(body) is not dict:
        raise EnvelopeRejected(RejectReason.MALFORMED, "not a map")
    env = Envelope(
        domain=_field(body, "d", str),  # type: ignore[arg-type]
        payload_type=_field(body, "pt", bytes),  # type: ignore[arg-type]
        payload=_field(body, "p", bytes),  # type: ignore[arg-type]
        seq=_field(body, "s", int),  # type: ignore[arg-type]
        expires=_field(body, "e", float),  # type: ignore[arg-type]
        public_key=_field(body, "k", bytes),  # type: ignore[arg-type]
        device_id=_field(body, "id", str),  # type: ignore[arg-type]
        signature=_field(body, "sig", bytes),  # type: ignore[arg-type]
    )
    if len(env.public_key) != 32 or len(env.signature) != 64 or not 0 <= env.seq < 2**64:
        raise EnvelopeRejected(RejectReason.MALFORMED, "bad key, signature or seq size")
    if not math.isfinite(env.expires):
        raise EnvelopeRejected(RejectReason.MALFORMED, "expiry is not a finite time")
    _check_signature(env)
    return env


def _check_signature(env: Envelope) -> None:
    message = signed_bytes(
        env.domain, env.payload_type, env.payload, env.seq, env.expires, env.public_key
    )
    try:
        VerifyKey(env.public_key).verify(message, env.signature)
    except (BadSignatureError, ValueError):
        raise EnvelopeRejected(RejectReason.BAD_SIGNATURE) from None


class SeqTracker:
    """The last accepted (seq, content digest) per device: replay protection.

    Pure state; the caller decides how long to keep it (LIGHTHOUSE keeps it
    with the membership table). Bounded by the number of devices the caller
    accepts envelopes from, which is the paired set.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, bytes]] = {}

    def check(self, env: Envelope) -> None:
        """Raise unless ``env`` is newer than everything accepted from its signer."""
        last = self._last.get(env.device_id)
        if last is None:
            return
        seq, digest = last
        if env.seq == seq and env.digest != digest:
            raise EnvelopeRejected(RejectReason.CONFLICTING_SEQ, f"seq {env.seq}")
        if env.seq <= seq:
            raise EnvelopeRejected(RejectReason.STALE_SEQ, f"{env.seq} <= {seq}")

    def accept(self, env: Envelope) -> None:
        self._last[env.device_id] = (env.seq, env.digest)

    def forget(self, device_id: str) -> None:
        self._last.pop(device_id, None)

    def last_seq(self, device_id: str) -> int | None:
        entry = self._last.get(device_id)
        return None if entry is None else entry[0]


def open_envelope(
    data: bytes,
    *,
    domain: str,
    now: float,
    tracker: SeqTracker | None = None,
    expected_device: str | None = None,
    max_size: int = MAX_ENVELOPE_SIZE,
) -> Envelope:
    """Verify an envelope completely and, if it passes, record its seq.

    Checks, each with its own :class:`RejectReason`: size, shape, signature,
    domain, that the claimed device is the signer (and, if given, the device
    the transport says sent it), expiry, and -- with a ``tracker`` -- that the
    seq is newer than the last one accepted from that device.
    """
    env = parse_envelope(data, max_size=max_size)
    if env.domain != domain:
        raise EnvelopeRejected(RejectReason.WRONG_DOMAIN, f"made for {env.domain[:64]!r}")
    if device_id_from_public_key(env.public_key) != env.device_id:
        raise EnvelopeRejected(RejectReason.SIGNER_MISMATCH, "key does not match device id")
    if expected_device is not None and env.device_id != expected_device:
        raise EnvelopeRejected(RejectReason.SIGNER_MISMATCH, "not signed by the sending peer")
    if now > env.expires:
        raise EnvelopeRejected(RejectReason.EXPIRED)
    if tracker is not None:
        tracker.check(env)
        tracker.accept(env)
    return env


class SequenceAllocator:
    """Hands out strictly increasing seq numbers that survive restarts.

    A seq is ``max(last + 1, now in microseconds)``: it follows the wall clock
    when that moves forward and keeps counting when it jumps back. To avoid
    a disk write per advert, numbers are *reserved* in blocks: the caller
    persists :attr:`reserved` whenever :meth:`next` says so, before using the
    seq it returned. After a crash the node restarts from the persisted
    reservation, which is above every seq it ever handed out.

    Pure: the caller passes ``now`` and does the I/O.
    """

    #: A minute's worth of microseconds: one disk write a minute at advert
    #: rates, and a restart skips at most a minute of numbers (harmless).
    BLOCK = 60_000_000

    def __init__(self, persisted: int = 0) -> None:
        self._last = persisted
        self.reserved = persisted

    def next(self, now: float) -> tuple[int, bool]:
        """The next seq, and whether :attr:`reserved` must be persisted first."""
        seq = max(self._last + 1, int(now * _SEQ_PER_SECOND))
        self._last = seq
        if seq <= self.reserved:
            return seq, False
        self.reserved = seq + self.BLOCK
        return seq, True
