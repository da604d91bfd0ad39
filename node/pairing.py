"""Pairing: how a device joins its owner's island group, without a server.

Two ways in, both offline-capable (LAN only, no internet):

**Invite code / QR** (:class:`Invite`). The inviter's node makes a one-time
invite: its device id (which *is* its public key, see ``protocol.ids``), the
addresses it listens on, a 128-bit one-time secret, the tier, and an expiry.
It is shown as a QR code and as the same text (``IR1-...``). The joiner dials
the inviter at ``/p2p/<device id>`` -- libp2p's Noise handshake refuses any
other key there -- and sends, sealed to the invite's key, a :class:`PairJoin`
whose ``proof`` is an HMAC of the secret over both keys. The inviter checks
the proof and answers with a :class:`PairWelcome` carrying its own proof.
Each side then pins the other's key. A substituted key (MITM) fails at the
Noise handshake, at the seal, or at the proofs -- and the joiner says so.

**Short human code** (:func:`human_code`), for devices without a camera:
``NAME-word-word-word``. ``NAME`` is the last four characters of the
inviter's device id (public; it finds the inviter on the LAN), and the three
words (256-word list, 24 bits) are a password run through SPAKE2 (a PAKE):
an eavesdropper learns nothing, and an active attacker gets exactly one
online guess per attempt -- a chance of 1 in 16,777,216 -- and the code is
burned after :data:`MAX_FAILURES` wrong attempts. The SPAKE2 key then plays
the role of the invite secret in the same proofs.

Invites are single-use and expire; wrong, expired, reused and malformed
codes get a clear error and change nothing. Trust is never taken from the
other side: the tier comes from the inviter's invite, scores from each
owner's own config.

This module is pure: randomness and time are passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import zlib
from dataclasses import dataclass, field

import msgpack

from islandrun.protocol.errors import DecodeError, IslandRunError
from islandrun.protocol.ids import public_key_from_device_id
from islandrun.protocol.messages import TrustTier, unpack

CODE_PREFIX = "IR1-"
SECRET_LEN = 16
INVITE_ID_LEN = 16
#: Wrong proofs an invite survives before it is burned.
MAX_FAILURES = 3
#: Longest allowed invite lifetime (s); the default is 10 minutes.
MAX_EXPIRY = 24 * 3600.0
MAX_CODE_LEN = 2048
WORDS: list[str] = (
    "acid acorn actor adobe agent alarm album alert alien alloy amber angel anvil apple apron "
    "arena arrow aspen atlas attic badge bagel baker bamboo banjo barn basil beach beard bench "
    "berry bison blade blaze bloom board bonus boots bread brick bride brook brush bucket buddy "
    "cabin cable cactus camel candy canoe cargo carol cedar chalk charm chess chief cider cinema "
    "civic cliff clock cloud clove cobra cocoa comet coral couch crane crown crumb cubic curry "
    "dairy daisy dance delta denim depot diary dingo disco diver dolphin donut dozen dragon drum "
    "eagle easel ebony echo eclair elbow elder elm ember emu engine epic fable falcon fancy fern "
    "ferry fiber fiddle field finch fjord flame flute focus forge fossil frost fudge galaxy gecko "
    "genie giant ginger glider globe gnome goose grape gravel guava guitar hammer harbor hazel "
    "heron hippo honey hornet husky igloo index indigo inlet iris ivory jacket jaguar jelly jewel "
    "jolly judge juice jungle kayak kettle kiwi koala ladder lagoon lemon lilac linen lizard "
    "llama lobster locket lotus lunar lynx magnet mango maple marble meadow melon mint mocha "
    "moose mosaic motor muffin nectar needle noble nutmeg oasis ocean olive onion opal orbit "
    "orchid otter oyster paddle panda papaya parrot pasta peach pebble pepper piano pickle pilot "
    "pixel plaza plum polar poppy prism puffin pumpkin quail quartz quill rabbit radar raisin "
    "raven reef rhino ribbon river robin rocket rose ruby saddle salmon sandal satin scarf "
    "shell sierra silver sketch sloth smoky snail solar spice spruce squid stamp "
    "storm sugar summit swan tango tapir thistle tiger toast topaz tulip tundra turtle umbrella "
    "unicorn urchin valley velvet violin vortex wafer walnut walrus willow wizard yak yodel zebra "
    "zephyr zinc"
).split()[:256]  # 256 distinct words, one byte each (a test pins this)
_WORD_INDEX = {w: i for i, w in enumerate(WORDS)}
#: Chance that one online guess at a human code is right.
GUESS_CHANCE = 1 / 256**3


class PairingError(IslandRunError):
    """Pairing failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """What the QR code carries. The secret is the only confidential part."""

    device_id: str
    name: str
    addresses: tuple[str, ...]
    invite_id: bytes
    secret: bytes
    tier: TrustTier
    expires: float

    def __repr__(self) -> str:  # never show the secret
        return f"Invite(device_id={self.device_id!r}, tier={self.tier.value})"

    def code(self) -> str:
        """The invite as copyable text: ``IR1-`` + base32 + CRC."""
        body = msgpack.packb(
            {"id": self.device_id, "n": self.name, "a": list(self.addresses), "i": self.invite_id,
             "s": self.secret, "t": self.tier.value, "e": self.expires},
            use_bin_type=True,
        )
        body += zlib.crc32(body).to_bytes(4, "big")
        return CODE_PREFIX + base64.b32encode(body).decode().rstrip("=")


def parse_code(code: str) -> Invite:
    """Decode an invite code; :class:`PairingError` for anything malformed."""
    text = "".join(code.split()).upper()
    if not text.startswith(CODE_PREFIX) or len(text) > MAX_CODE_LEN:
        raise PairingError("not an IslandRun invite code (it should start with IR1-)")
    b32 = text[len(CODE_PREFIX) :]
    try:
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except ValueError:
        raise PairingError("the invite code is damaged (not base32); copy it again") from None
    body, crc = raw[:-4], raw[-4:]
    if len(raw) < 5 or zlib.crc32(body).to_bytes(4, "big") != crc:
        raise PairingError("the invite code is damaged (checksum); copy it again") from None
    try:
        data = unpack(body, max_size=MAX_CODE_LEN)
        invite = Invite(
            device_id=_typed(data, "id", str),
            name=_typed(data, "n", str)[:64],
            addresses=tuple(_typed(a, None, str) for a in _typed(data, "a", list)[:16]),
            invite_id=_typed(data, "i", bytes),
            secret=_typed(data, "s", bytes),
            tier=TrustTier(_typed(data, "t", str)),
            expires=float(_typed(data, "e", float)),
        )
        public_key_from_device_id(invite.device_id)
    except (DecodeError, ValueError, TypeError, KeyError):
        raise PairingError("the invite code is malformed; ask for a new one") from None
    if len(invite.secret) != SECRET_LEN or len(invite.invite_id) != INVITE_ID_LEN:
        raise PairingError("the invite code is malformed; ask for a new one")
    return invite


def _typed(data: object, key: str | None, kind: type) -> object:
    value = data if key is None else data.get(key) if isinstance(data, dict) else None
    if type(value) is not kind:
        raise TypeError(key)
    return value


# ------------------------------------------------------------------ proofs


def _mac(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(secret, b"islandrun-pair/1 " + label, hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big") + part)
    return mac.digest()


def join_proof(secret: bytes, invite_id: bytes, joiner_key: bytes, inviter_key: bytes) -> bytes:
    """The joiner's proof that it knows the secret, bound to both keys."""
    return _mac(secret, b"join", invite_id, joiner_key, inviter_key)


def welcome_proof(secret: bytes, invite_id: bytes, joiner_key: bytes, inviter_key: bytes) -> bytes:
    """The inviter's proof, so the joiner knows it reached the right device."""
    return _mac(secret, b"welcome", invite_id, joiner_key, inviter_key)


# -------------------------------------------------------------- human codes


def human_code(device_id: str, password: tuple[int, int, int]) -> str:
    """``NAME-word-word-word`` for a device id and three word indexes."""
    return "-".join([device_id[-4:], *(WORDS[i] for i in password)])


def parse_human_code(code: str) -> tuple[str, bytes]:
    """``(device id suffix, SPAKE2 password)``; :class:`PairingError` if malformed."""
    parts = code.strip().split("-")
    words_ok = all(p.lower() in _WORD_INDEX for p in parts[1:])
    if len(parts) != 4 or len(parts[0]) != 4 or not words_ok:
        raise PairingError("a short code looks like NAME-word-word-word; check it and try again")
    return parts[0], "-".join(p.lower() for p in parts[1:]).encode()


# ---------------------------------------------------------------- invites


@dataclass(slots=True)
class _Pending:
    invite: Invite
    password: bytes | None = None  # set for human-code invites
    failures: int = 0


@dataclass(slots=True)
class InviteBook:
    """The inviter's open invites: single-use, expiring, burned on repeated failure."""

    _open: dict[bytes, _Pending] = field(default_factory=dict)
    #: Recently used or burned invite ids, to tell "reused" from "unknown".
    _closed: dict[bytes, str] = field(default_factory=dict)

    def create(
        self,
        *,
        device_id: str,
        name: str,
        addresses: tuple[str, ...],
        tier: TrustTier,
        lifetime: float,
        now: float,
        rng: random.Random,
    ) -> Invite:
        if not 0 < lifetime <= MAX_EXPIRY:
            raise PairingError(f"an invite must expire within {MAX_EXPIRY / 3600:.0f} h")
        self._expire(now)
        invite = Invite(
            device_id=device_id, name=name, addresses=addresses[:16],
            invite_id=rng.randbytes(INVITE_ID_LEN), secret=rng.randbytes(SECRET_LEN),
            tier=tier, expires=now + lifetime,
        )
        self._open[invite.invite_id] = _Pending(invite)
        return invite

    def create_human(self, invite: Invite, rng: random.Random) -> str:
        """Attach a short human code to ``invite`` (one PAKE password)."""
        password = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        code = human_code(invite.device_id, password)
        self._open[invite.invite_id].password = parse_human_code(code)[1]
        return code

    def human_invite(self, now: float) -> tuple[Invite, bytes]:
        """The open human-code invite and its password (at most one is open)."""
        self._expire(now)
        for pending in self._open.values():
            if pending.password is not None:
                return pending.invite, pending.password
        raise PairingError("no short-code invite is open on this device; make a new one")

    def redeem(
        self, invite_id: bytes, secret: bytes | None, proof: bytes, joiner_key: bytes,
        inviter_key: bytes, now: float,
    ) -> Invite:
        """Check a joiner's proof; on success the invite is used up.

        ``secret`` is the SPAKE2 key for human codes (``None``: the invite's own).
        """
        self._expire(now)
        pending = self._open.get(invite_id)
        if pending is None:
            why = self._closed.get(invite_id, "unknown to this device")
            raise PairingError(f"this invite is {why}; ask for a new one")
        key = pending.invite.secret if secret is None else secret
        if not hmac.compare_digest(proof, join_proof(key, invite_id, joiner_key, inviter_key)):
            pending.failures += 1
            if pending.failures >= MAX_FAILURES:
                self._close(invite_id, "burned after repeated wrong codes")
            raise PairingError("wrong code; nothing was changed")
        self._close(invite_id, "already used")
        return pending.invite

    def _close(self, invite_id: bytes, why: str) -> None:
        del self._open[invite_id]
        self._closed[invite_id] = why
        while len(self._closed) > 1024:
            del self._closed[next(iter(self._closed))]

    def _expire(self, now: float) -> None:
        for invite_id in [i for i, p in self._open.items() if p.invite.expires < now]:
            self._close(invite_id, "expired")
