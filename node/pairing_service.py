"""Pairing inside a running node: invites, joins, the allowlist, revocation.

Glue between the pure pairing core (``pairing``, ``pairing_store``), the
conversations (``pairing_flow``) and the transport. It owns the live
allowlist: a device is admitted when it is listed in ``[mesh].allow`` or
has an active pairing record, and a revocation takes effect at once --
adverts and requests from that key are refused from the next message on.

News for the owner's personal group (a new personal device, a revocation)
is sent sealed and directly to each of the owner's other personal devices,
never gossiped, so it cannot reach friends or edge islands.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import public_key_from_device_id, short_id
from islandrun.transports.base import Transport

from .config import NodeConfig
from .identity import Identity
from .pairing import (
    MAX_EXPIRY,
    InviteBook,
    PairingError,
    parse_code,
    parse_human_code,
)
from .pairing_flow import Inviter, join_with_code, join_with_invite
from .pairing_store import PairingRecord, PairingStore, scores
from .shipping import OtherHandler, Session, ShippingConfig
from .waves_inputs import IslandKind

log = logging.getLogger("islandrun.pairing")

_KINDS = {
    m.TrustTier.PERSONAL: IslandKind.PERSONAL,
    m.TrustTier.FRIEND: IslandKind.FRIEND,
    m.TrustTier.EDGE: IslandKind.EDGE,
}


class PairingService:
    def __init__(
        self,
        me: Identity,
        cfg: NodeConfig,
        store: PairingStore,
        *,
        shipping: ShippingConfig,
        on_revoked: Callable[[str], None],
        on_paired: Callable[[PairingRecord], None],
        rng: random.Random,
    ) -> None:
        self.me, self.cfg, self.store, self.shipping = me, cfg, store, shipping
        self._on_revoked, self._on_paired_hook = on_revoked, on_paired
        self.transport: Transport | None = None
        self.nursery: trio.Nursery | None = None
        #: Devices seen on the LAN (mDNS): id -> addresses, for short codes.
        self.lan: dict[str, tuple[str, ...]] = {}
        self.inviter = Inviter(
            me=me, book=InviteBook(), store=store, clock=time.time, rng=rng,
            on_paired=self._paired,
        )
        self._rng = rng

    # -- who is trusted ------------------------------------------------------

    def is_allowed(self, device_id: str) -> bool:
        record = self.store.get(device_id)
        if record is not None:
            return record.active
        return device_id in self.cfg.mesh.allow

    def scores(self, device_id: str) -> tuple[IslandKind, float, float] | None:
        """``(kind, trust, privacy)`` from the owner's records, or None."""
        record = self.store.get(device_id)
        if record is not None:
            if not record.active:
                return None
            trust, privacy = scores(record, self.cfg.trust)
            return _KINDS[record.tier], trust, privacy
        if device_id in self.cfg.mesh.allow:  # listed by hand: one of the owner's own
            tier = self.cfg.trust.personal
            return IslandKind.PERSONAL, tier.trust, tier.privacy
        return None

    def handlers(self) -> dict[type, OtherHandler]:
        """Inbound stream handlers by first message type."""
        return {
            m.PairJoin: self.inviter.on_join,
            m.PakeStart: self.inviter.on_pake,
            m.Introduction: self.inviter.on_introduction,
            m.Revocation: partial(self.inviter.on_revocation, revoke=self._revoke_here),
        }

    # -- commands (from the control API) -------------------------------------

    def invite(self, tier: str, lifetime: float, short: bool) -> dict[str, Any]:
        try:
            trust_tier = m.TrustTier(tier)
        except ValueError:
            raise PairingError("tier must be personal, friend or edge") from None
        if not 0 < lifetime <= MAX_EXPIRY:
            raise PairingError(f"expiry must be between 1 s and {MAX_EXPIRY / 3600:.0f} h")
        addresses = self.transport.addresses() if self.transport else ()
        invite = self.inviter.book.create(
            device_id=self.me.device_id, name=self.me.name, addresses=addresses,
            tier=trust_tier, lifetime=lifetime, now=time.time(), rng=self._rng,
        )
        result: dict[str, Any] = {"code": invite.code(), "expires": invite.expires}
        if short:
            result["short_code"] = self.inviter.book.create_human(invite, self._rng)
        return result

    async def join(self, code: str | None, short: str | None, address: str | None) -> dict:
        transport = self._transport()
        if code:
            invite = parse_code(code)
            if invite.expires < time.time():
                raise PairingError("this invite has expired; ask for a new one")
            addresses = ([address] if address else []) + list(invite.addresses)
            welcome = await self._converse(
                transport, invite.device_id, addresses,
                lambda s: join_with_invite(s, invite, self.me),
            )
        elif short:
            nameplate, password = parse_human_code(short)
            target, addresses = self._find(nameplate, address)
            welcome = await self._converse(
                transport, target, addresses,
                lambda s: join_with_code(s, nameplate, password, self.me),
            )
        else:
            raise PairingError("give an invite code, a QR image or a short code")
        record = PairingRecord(
            device_id=welcome.device_id, name=welcome.name[:64], tier=welcome.tier,
            paired_at=time.time(), via="invite" if code else "code",
        )
        if not self.store.add(record):
            raise PairingError("that device was revoked here; remove it before pairing again")
        await self._paired(record)
        return {"device_id": record.device_id, "name": record.name, "tier": record.tier.value}

    def list(self) -> list[dict[str, Any]]:
        out = []
        for record in self.store.all():
            trust, privacy = scores(record, self.cfg.trust)
            out.append({
                "device_id": record.device_id, "name": record.name, "tier": record.tier.value,
                "trust": trust, "privacy": privacy, "via": record.via,
                "paired_at": record.paired_at, "revoked_at": record.revoked_at,
            })
        return out

    async def revoke(self, device: str) -> dict[str, Any]:
        matches = [r for r in self.store.all() if device in (r.device_id, r.name)
                   or r.device_id.endswith(device)]
        if len(matches) != 1:
            raise PairingError(
                f"{'no' if not matches else 'more than one'} paired device matches {device!r}"
            )
        target = matches[0].device_id
        await self._revoke_here(target)
        self._tell_personal(m.Revocation(device_id=target, revoked_at=time.time()), skip=target)
        return {"device_id": target, "name": matches[0].name}

    # -- internals -----------------------------------------------------------

    def _transport(self) -> Transport:
        if self.transport is None:
            raise PairingError("the mesh is not up yet; try again in a moment")
        return self.transport

    def _find(self, nameplate: str, address: str | None) -> tuple[str, list[str]]:
        """The LAN device whose id ends in ``nameplate`` (or at ``address``)."""
        if address:
            device = address.rsplit("/p2p/", 1)[-1]
            if "/p2p/" not in address or not device.endswith(nameplate):
                raise PairingError(f"--address must end in /p2p/<id ending in {nameplate}>")
            return device, [address]
        found = [d for d in self.lan if d.endswith(nameplate)]
        if len(found) != 1:
            raise PairingError(
                f"no single device ending in {nameplate!r} was found on the LAN; make sure both "
                "run with mDNS on, or pass --address"
            )
        return found[0], list(self.lan[found[0]])

    async def _converse(
        self,
        transport: Transport,
        device_id: str,
        addresses: list[str],
        talk: Callable[[Session], Awaitable[m.PairWelcome]],
    ) -> m.PairWelcome:
        for address in addresses:
            try:
                await transport.connect(address)
                break
            except IslandRunError as exc:
                log.info("pairing: %s unreachable (%s)", address, exc)
        try:
            async with transport.open_stream(device_id) as stream:
                return await talk(Session(stream, self.me.sealer(), self.shipping))
        except trio.TooSlowError:
            raise PairingError("the other device did not answer in time") from None
        except PairingError:
            raise
        except IslandRunError:
            # libp2p dials /p2p/<id>: its Noise handshake refuses any other key,
            # so "unreachable" includes "a different device answered there".
            raise PairingError(
                f"no device with the key named in the code ({short_id(device_id)}) answered at "
                f"{len(addresses)} address(es): it is offline, or a different device answered "
                "there (possible man-in-the-middle); pairing aborted, nothing was stored"
            ) from None

    async def _revoke_here(self, device_id: str) -> None:
        self.store.revoke(device_id, time.time())
        self._on_revoked(device_id)
        log.info("revoked %s", short_id(device_id))

    async def _paired(self, record: PairingRecord) -> None:
        log.info("paired with %s (%s) as %s", record.name, short_id(record.device_id),
                 record.tier.value)
        self._on_paired_hook(record)
        if record.tier is not m.TrustTier.PERSONAL or record.via.startswith("introduced"):
            return
        # Introduce the new personal device to the others, and them to it.
        newcomer = _introduction(record)
        self._tell_personal(newcomer, skip=record.device_id)
        for other in self._personal(skip=record.device_id):
            self._send_soon(record.device_id, _introduction(other))

    def _personal(self, skip: str) -> list[PairingRecord]:
        return [r for r in self.store.active()
                if r.tier is m.TrustTier.PERSONAL and r.device_id != skip]

    def _tell_personal(self, message: m.Message, skip: str) -> None:
        for record in self._personal(skip):
            self._send_soon(record.device_id, message)

    def _send_soon(self, device_id: str, message: m.Message) -> None:
        if self.nursery is not None:
            self.nursery.start_soon(self._send, device_id, message)

    async def _send(self, device_id: str, message: m.Message) -> None:
        """Best effort: a device that is offline now learns at its next pairing sync."""
        transport = self.transport
        if transport is None:
            return
        try:
            with trio.fail_after(10):
                async with transport.open_stream(device_id) as stream:
                    session = Session(stream, self.me.sealer(), self.shipping)
                    await session.send(message)
                    await session.receive()  # acknowledgement
        except (IslandRunError, trio.TooSlowError) as exc:
            log.info("could not tell %s about a pairing change: %s", short_id(device_id), exc)


def _introduction(record: PairingRecord) -> m.Introduction:
    return m.Introduction(
        device_id=record.device_id, name=record.name,
        public_key=public_key_from_device_id(record.device_id), tier=record.tier,
    )
