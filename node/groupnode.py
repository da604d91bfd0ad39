"""The personal group state inside a running node: who syncs, what is kept, the loop.

Glue between the pure replica (``groupstate``), its encrypted file
(``groupstate_store``), the wire protocol (``groupsync``) and the node:

* **membership** -- the group is this device and every device the owner's
  records treat as personal (a *personal* pairing, or ``[mesh].allow``);
  read live, so a revocation or a new pairing counts from the next pull;
* **conversations** -- the dispatcher takes a conversation's history and
  placeholder vault from here (:meth:`GroupNode.prepare`, :meth:`vault`) and
  records each new turn and answer (:meth:`record`), so a conversation
  started on one device continues on any other; a client sends only its new
  turn. Forgetting tombstones the conversation everywhere and drops its vault;
* **budgets** -- :meth:`ledger` gives HORIZON the group-wide spend ledger;
* **revocations** -- a revocation recorded here or in the pairing records is
  copied to the other, so one that happened while a device was offline
  still reaches it;
* **policy and cloud islands** -- the owner's edits to the synced part of
  ``config.toml`` go out, the group's come in (``groupconfig``), and the
  running node routes by them at once (:func:`apply_config`);
* **shared API keys** -- the keys the owner opted in (``groupsecrets``):
  :meth:`cloud_key` for HORIZON, the ``/cloud/*`` control routes, and
  a removed cloud's key taken out of the group;
* **sync loop** -- every ``SYNC_INTERVAL`` seconds, pull from each member
  (``groupsync``), then apply revocations, sync the config, compact, and
  save when changed.

What it is not: no merging rules (``groupstate``), no wire format
(``groupsync``), no routing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from starlette.requests import Request

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import short_id

from .config import NodeConfig
from .groupconfig import ConfigSync
from .groupsecrets import control_routes as key_routes
from .groupsecrets import drop_removed, synced_key
from .groupstate import GroupStateError
from .groupstate_budget import GroupLedger
from .groupstate_store import load_state, save_state
from .groupsync import pull, serve_pull
from .horizon_budget import BudgetLedger
from .identity import Identity
from .mist_entities import EntityType
from .mist_vault import Vault
from .pairing_service import PairingService
from .shipping import OtherHandler, Session, ShippingConfig
from .waves_inputs import IslandKind

if TYPE_CHECKING:
    from islandrun.transports.base import Transport

    from .control import Handler
    from .runtime import Node

log = logging.getLogger("islandrun.group")

#: Seconds between anti-entropy rounds (each pulls from every member).
SYNC_INTERVAL = 1.0
#: Longest one pull may take, dialling included (s).
PULL_TIMEOUT = 10.0
#: Conversation vaults kept in memory (LRU); the group state keeps them all.
MAX_CACHED_VAULTS = 1024


class GroupNode:
    """This device's replica of the personal group state, and its uses."""

    def __init__(
        self,
        home: Path,
        ident: Identity,
        pairing: PairingService,
        *,
        shipping: ShippingConfig,
        on_revoked: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.home, self._ident, self._pairing = home, ident, pairing
        self._shipping, self._on_revoked, self._clock = shipping, on_revoked, clock
        self.state = load_state(home, ident.device_id, ident.key)
        self.dirty = False
        self._vaults: OrderedDict[str, Vault] = OrderedDict()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- membership ------------------------------------------------------------

    def is_member(self, device_id: str) -> bool:
        found = self._pairing.scores(device_id)
        return found is not None and found[0] is IslandKind.PERSONAL

    def members(self) -> list[str]:
        """The owner's other personal devices (active)."""
        known = {r.device_id for r in self._pairing.store.active()}
        known.update(self._pairing.cfg.mesh.allow)
        return sorted(d for d in known if d != self._ident.device_id and self.is_member(d))

    # -- conversations (the dispatcher's side) ---------------------------------

    def prepare(
        self, request: m.InferenceRequest
    ) -> tuple[m.InferenceRequest, tuple[m.ChatMessage, ...]]:
        """The request with its conversation's history, and the turns new in it.

        A client may send only its new turn (the history comes from here) or
        the whole conversation as OpenAI clients do (recognised by its start).
        """
        conversation = request.conversation_id
        self.state.check_live(conversation)
        history = tuple(self.state.history(conversation))
        sent = request.messages
        if sent[: len(history)] == history:
            return request, sent[len(history):]
        full = (history + sent)[-m.MAX_HISTORY:]
        return replace(request, messages=full), sent

    def vault(self, conversation: str) -> Vault:
        """The conversation's placeholder vault, with every pair any member made."""
        self.state.check_live(conversation)
        vault = self._vaults.pop(conversation, None)
        if vault is None:
            vault = Vault(secrets.SystemRandom())
        self._vaults[conversation] = vault
        while len(self._vaults) > MAX_CACHED_VAULTS:
            self._vaults.popitem(last=False)
        for kind, number, value in self.state.vault_entries(conversation):
            vault.adopt(EntityType(kind), number, value)
        return vault

    def record(self, conversation: str, fresh: tuple[m.ChatMessage, ...], answer: str) -> None:
        """Keep the new turns, the answer and new placeholder pairs (best effort)."""
        try:
            now = self._now_ms()
            for message in fresh:
                self.state.add_turn(conversation, message.role, message.content, now)
            self.state.add_turn(conversation, m.Role.ASSISTANT, answer, now)
            vault = self._vaults.get(conversation)
            if vault is not None:
                known = {(k, n) for k, n, _ in self.state.vault_entries(conversation)}
                for kind, number, value in vault.entries():
                    if (kind.value, number) not in known:
                        self.state.add_vault_entry(conversation, kind.value, number, value, now)
        except IslandRunError as exc:  # the user has the answer; the sync copy is what failed
            log.warning("conversation %s not fully recorded: %s", conversation[:16],
                        type(exc).__name__)
        self.dirty = True

    # -- commands ----------------------------------------------------------------

    def _find(self, prefix: str) -> str:
        found = [c.id for c in self.state.conversations() if c.id.startswith(prefix)]
        if len(found) != 1 or not prefix:
            raise GroupStateError(
                f"{'no' if not found else 'more than one'} conversation matches {prefix[:64]!r} "
                "(see `islandnode conversations list`)"
            )
        return found[0]

    def list(self) -> list[dict[str, Any]]:
        return [{"id": c.id, "turns": c.turns, "updated": c.last_hlc / 1000,
                 "devices": [short_id(a) for a in c.authors]}
                for c in self.state.conversations()]

    def show(self, prefix: str) -> dict[str, Any]:
        conversation = self._find(prefix)
        return {"id": conversation, "messages": [
            {"role": x.role.value, "content": x.content}
            for x in self.state.history(conversation)]}

    def forget(self, prefix: str) -> dict[str, Any]:
        conversation = self._find(prefix)
        self.state.forget(conversation, self._now_ms())
        self._vaults.pop(conversation, None)
        self.dirty = True
        return {"id": conversation, "forgotten": True}

    def routes(self) -> dict[str, Handler]:
        async def listing(_: Request) -> Any:
            return self.list()

        async def show(request: Request) -> Any:
            return self.show(str((await request.json()).get("id", "")))

        async def forget(request: Request) -> Any:
            return self.forget(str((await request.json()).get("id", "")))

        return {"/conversations": listing, "/conversations/show": show,
                "/conversations/forget": forget, **key_routes(self, self._now_ms)}

    def cloud_key(self, cloud: str) -> str | None:
        """The API key shared for ``cloud`` in the group, if any (HORIZON's hook)."""
        return synced_key(self.state, cloud)

    # -- budgets -----------------------------------------------------------------

    def ledger(self, own: BudgetLedger) -> GroupLedger:
        return GroupLedger(lambda: self.state, own, self.members)

    # -- sync ----------------------------------------------------------------------

    def handlers(self) -> dict[type, OtherHandler]:
        async def on_pull(session: Session, first: m.GroupPull) -> None:
            await serve_pull(session, first, self.state, self.is_member)

        return {m.GroupPull: on_pull}

    def upkeep(self) -> None:
        """After a round: revocations both ways, forgotten vaults out of memory, compaction."""
        now = self._clock()
        state, store = self.state, self._pairing.store
        for record in store.all():
            if not record.active and state.revoke(record.device_id, self._now_ms()):
                self.dirty = True
        for device in state.revoked():
            record = store.get(device)
            if record is not None and record.active:
                store.revoke(device, now)
                self._on_revoked(device)
                log.info("revoked %s (from the personal group)", short_id(device))
        for conversation in [c for c in self._vaults if state.is_forgotten(c)]:
            del self._vaults[conversation]
        if state.compact([*self.members(), self._ident.device_id], self._now_ms()):
            self.dirty = True

    def sync_config(self, configs: ConfigSync) -> NodeConfig | None:
        """One config round (``groupconfig``); the config if its synced part changed."""
        made, cfg = configs.round(self.state, self._now_ms())
        made += len(drop_removed(self.state, self._now_ms()))  # a removed cloud's shared key
        self.dirty = self.dirty or made > 0
        return cfg

    async def save(self) -> None:
        if self.dirty:
            self.dirty = False
            data = self.state.to_bytes()  # here: the state may change while writing
            await trio.to_thread.run_sync(save_state, self.home, self._ident.key, data)

    def save_now(self) -> None:
        save_state(self.home, self._ident.key, self.state.to_bytes())


async def _pull_from(node: Node, transport: Transport, peer: str) -> int:
    group = node.group
    with trio.move_on_after(PULL_TIMEOUT):
        try:
            await node.reach(transport, peer)
            async with transport.open_stream(peer) as stream:
                return await pull(Session(stream, node.sealer, node.options.shipping),
                                  group.state, group.is_member)
        except (IslandRunError, trio.TooSlowError) as exc:
            log.debug("no sync with %s: %s", short_id(peer), exc)
    return 0


def apply_config(node: Node, cfg: NodeConfig) -> None:
    """Route by ``cfg``'s synced settings from now on (the rest needs a restart)."""
    node.config = replace(node.config, trust=cfg.trust, cloud=cfg.cloud, waves=cfg.waves,
                          tide=cfg.tide)
    node.pairing.cfg = node.config
    node.horizon.set_clouds(cfg.cloud)
    node.dispatcher.policy = cfg.waves.policy()
    node.tide.config = replace(node.tide.config, buffer=cfg.tide.preset.value)


async def sync_loop(node: Node, transport: Transport) -> None:
    """Anti-entropy with every member, for as long as the node runs."""
    group, configs = node.group, ConfigSync(node.home)
    try:
        while True:
            for peer in group.members():
                if await _pull_from(node, transport, peer):
                    group.dirty = True
            group.upkeep()
            cfg = group.sync_config(configs)
            if cfg is not None:
                apply_config(node, cfg)
            try:
                await group.save()
            except OSError as exc:  # retried next round
                group.dirty = True
                log.warning("group state not saved: %s", exc.strerror)
            await trio.sleep(SYNC_INTERVAL)
    finally:
        if group.dirty:
            group.save_now()
