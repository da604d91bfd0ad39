"""The pairing conversations, over a sealed :class:`~.shipping.Session`.

Joiner side: :func:`join_with_invite` (QR / text code) and
:func:`join_with_code` (short human code, SPAKE2). Inviter side:
:class:`Inviter`, whose ``on_join`` / ``on_pake`` handle the first message
of an inbound stream, and whose ``on_introduction`` / ``on_revocation``
accept news from the owner's other personal devices.

Each step checks who is on the other end: the session is sealed to the key
the joiner expects (the invite's device id), the inviter insists that the
key in :class:`PairJoin` is the key that sealed it, and both sides check
the other's HMAC proof. Any mismatch aborts with a :class:`PairingError`
saying so, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from spake2 import SPAKE2_Symmetric
from spake2.spake2 import SPAKEError

from islandrun.protocol import messages as m

from .identity import Identity
from .pairing import Invite, InviteBook, PairingError, join_proof, welcome_proof
from .pairing_store import PairingRecord, PairingStore
from .shipping import Session

_SPAKE_ID = b"islandrun-pair/1"
M = TypeVar("M")


def _spake_secret(key: bytes, joiner_key: bytes, inviter_key: bytes) -> bytes:
    """The pairing secret from a SPAKE2 key, bound to both device keys."""
    message = b"islandrun-pake-secret" + joiner_key + inviter_key
    return hmac.new(key, message, hashlib.sha256).digest()


async def _expect(session: Session, kind: type[M]) -> M:
    reply = await session.receive()
    if isinstance(reply, m.PairReject | m.ErrorMessage):
        text = reply.reason if isinstance(reply, m.PairReject) else reply.message
        raise PairingError(f"the other device refused: {text}")
    if not isinstance(reply, kind):
        raise PairingError(f"unexpected {type(reply).__name__} during pairing; aborted")
    return reply


async def _finish_join(
    session: Session, me: Identity, invite_id: bytes, secret: bytes, inviter_id: str
) -> m.PairWelcome:
    inviter_key = session.peer_key
    await session.send(
        m.PairJoin(
            invite_id=invite_id, device_id=me.device_id, name=me.name, public_key=me.public_key,
            proof=join_proof(secret, invite_id, me.public_key, inviter_key),
        )
    )
    welcome = await _expect(session, m.PairWelcome)
    if welcome.device_id != inviter_id or welcome.public_key != inviter_key:
        raise PairingError(
            "the device that answered presented a different key than the invite names "
            "(possible man-in-the-middle); pairing aborted, nothing was stored"
        )
    expected = welcome_proof(secret, invite_id, me.public_key, inviter_key)
    if not hmac.compare_digest(welcome.proof, expected):
        raise PairingError(
            "the device that answered does not know the invite secret (possible impersonation); "
            "pairing aborted, nothing was stored"
        )
    return welcome


async def join_with_invite(session: Session, invite: Invite, me: Identity) -> m.PairWelcome:
    """Joiner: redeem an invite code on a session sealed to the inviter."""
    if session.peer != invite.device_id:
        raise PairingError("connected to a different device than the invite names; aborted")
    return await _finish_join(session, me, invite.invite_id, invite.secret, invite.device_id)


async def join_with_code(
    session: Session, nameplate: str, password: bytes, me: Identity
) -> m.PairWelcome:
    """Joiner: run SPAKE2 with a short human code, then the same proofs."""
    if not session.peer.endswith(nameplate):
        raise PairingError(f"that device's id does not end in {nameplate!r}; check the code")
    spake = SPAKE2_Symmetric(password, idSymmetric=_SPAKE_ID)
    await session.send(
        m.PakeStart(nameplate=nameplate, device_id=me.device_id, name=me.name, spake=spake.start())
    )
    reply = await _expect(session, m.PakeReply)
    try:
        key = spake.finish(reply.spake)
    except (SPAKEError, ValueError):
        raise PairingError("the code exchange failed; check the code and try again") from None
    secret = _spake_secret(key, me.public_key, session.peer_key)
    return await _finish_join(session, me, reply.invite_id, secret, session.peer)


@dataclass
class Inviter:
    """The inviting side: open invites, the records, and what to do on success."""

    me: Identity
    book: InviteBook
    store: PairingStore
    clock: Callable[[], float]
    rng: random.Random
    #: Called with each newly pinned record (introductions, allowlist updates).
    on_paired: Callable[[PairingRecord], Awaitable[None]]

    async def on_join(
        self, session: Session, join: m.PairJoin, secret: bytes | None = None
    ) -> None:
        if join.public_key != session.peer_key or join.device_id != session.peer:
            raise PairingError("the joining device's key does not match the connection")
        invite = self.book.redeem(
            join.invite_id, secret, join.proof, join.public_key, self.me.public_key, self.clock()
        )
        key = invite.secret if secret is None else secret
        record = PairingRecord(
            device_id=join.device_id, name=join.name[:64], tier=invite.tier,
            paired_at=self.clock(), via="invite" if secret is None else "code",
        )
        if not self.store.add(record):
            raise PairingError("this device was revoked here; the owner must remove it first")
        await session.send(
            m.PairWelcome(
                device_id=self.me.device_id, name=self.me.name, public_key=self.me.public_key,
                tier=invite.tier,
                proof=welcome_proof(key, join.invite_id, join.public_key, self.me.public_key),
            )
        )
        await self.on_paired(record)

    async def on_pake(self, session: Session, start: m.PakeStart) -> None:
        if start.nameplate != self.me.device_id[-4:] or start.device_id != session.peer:
            raise PairingError("that code is not for this device")
        invite, password = self.book.human_invite(self.clock())
        spake = SPAKE2_Symmetric(password, idSymmetric=_SPAKE_ID)
        outbound = spake.start()
        try:
            key = spake.finish(start.spake)
        except (SPAKEError, ValueError):
            raise PairingError("malformed code exchange") from None
        await session.send(m.PakeReply(invite_id=invite.invite_id, spake=outbound))
        join = await session.receive()
        if not isinstance(join, m.PairJoin) or join.invite_id != invite.invite_id:
            raise PairingError("unexpected message during pairing")
        await self.on_join(session, join, _spake_secret(key, session.peer_key, self.me.public_key))

    def _from_personal(self, session: Session) -> PairingRecord:
        record = self.store.get(session.peer)
        if record is None or not record.active or record.tier is not m.TrustTier.PERSONAL:
            raise PairingError("only the owner's personal devices may send this")
        return record

    async def on_introduction(self, session: Session, intro: m.Introduction) -> None:
        """A personal device introduces a device it paired as personal."""
        sender = self._from_personal(session)
        if intro.tier is not m.TrustTier.PERSONAL or intro.device_id == self.me.device_id:
            raise PairingError("introductions are for personal devices only")
        if self.store.get(intro.device_id) is None:
            record = PairingRecord(
                device_id=intro.device_id, name=intro.name[:64], tier=m.TrustTier.PERSONAL,
                paired_at=self.clock(), via=f"introduced by {sender.name}",
            )
            if self.store.add(record):
                await self.on_paired(record)
        await session.send(m.PairReject(reason="ok"))  # acknowledgement

    async def on_revocation(
        self, session: Session, revocation: m.Revocation, revoke: Callable[[str], Awaitable[None]]
    ) -> None:
        """A personal device revoked a device: revoke it here too."""
        self._from_personal(session)
        if self.store.get(revocation.device_id) is not None:
            await revoke(revocation.device_id)
        await session.send(m.PairReject(reason="ok"))
