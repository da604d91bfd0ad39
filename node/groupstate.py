"""The personal group's replicated state: signed per-device op logs, merged as CRDTs.

What it is. Paper section III-B: the owner's own devices "share credentials,
synchronize state", and a conversation started on one continues on another.
The state they share -- conversations (turns and placeholder vaults), the
owner's policy and cloud island definitions (registers), cloud spend, and
revocations -- is a set of **ops**. Each op is made and Ed25519-signed by one
device (its *author*) and named by a *dot* ``(author, counter)``; counters
count from 1 per author. Every device edits its own replica while offline;
replicas converge because each op kind is merged by a CRDT rule that does not
depend on the order (or repetition) in which ops arrive:

* ``TURN`` -- grow-only set keyed by dot. A conversation's history is its
  turns ordered by ``(hlc, author, counter)``: concurrent turns made offline
  on two devices are both kept, in the same order everywhere.
* ``VAULT`` -- grow-only set of ``(entity type, number, value)``: the
  placeholder map of a conversation. On a clash (two devices gave the same
  placeholder to different values while apart) the smallest dot wins.
* ``FORGET`` -- a tombstone. **Forget wins**: a forgotten conversation's turns
  and vault entries are dropped, now and whenever one arrives later, and its
  id stays forgotten (new turns under it are refused) until the tombstone
  is compacted.
* ``SET`` -- last-writer-wins register per key, ordered by ``(hlc, author)``.
* ``SPEND`` -- a grow-only counter per ``cloud|period`` key: each device
  publishes its own cumulative spend; the group total is the sum over devices
  of each device's largest figure (``groupstate_budget`` bounds overspend).
* ``REVOKE`` -- grow-only set of revoked device ids.

``hlc`` is a hybrid logical clock (:class:`Hlc`): wall-clock milliseconds,
pushed past every hlc the device has seen, so an op made after seeing
another sorts after it even when the clocks disagree.

Version vectors and anti-entropy. ``vector[a] = c`` says: every op of ``a``
up to counter ``c`` has been applied here, or dropped by compaction because
its effect lives on in an op this replica keeps. Sync (``groupsync``) is a
pull: the puller sends its vector, the other side returns, in pages, every op
it keeps above that vector, then the puller merges the other side's vector.
Merging is sound because compaction only drops an op whose effect is
subsumed by another kept op, which the puller either has or receives.

Compaction (bounded size): LWW losers, superseded spend figures and a
forgotten conversation's turns and vault are dropped at once; a
conversation keeps its newest :data:`MAX_TURNS` turns (the same rule on every
replica, and monotone: more knowledge only adds newer turns); a tombstone is
dropped once every member has acknowledged it and it is 30 days old
(:meth:`GroupState.compact`: then no replica holds a turn it could
resurrect, and the id is free again). Local edits beyond
:data:`MAX_CONVERSATIONS` or :data:`MAX_VAULT_ENTRIES` are refused.

What it is not: no I/O, no clock, no network. Time comes in as ``now_ms``;
encryption at rest is ``groupstate_store``, the wire protocol ``groupsync``.
Who is a member is the caller's word (``is_member``), from pairing records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import msgpack
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from islandrun.protocol import messages as m
from islandrun.protocol.errors import DecodeError, IslandRunError, RemoteProtocolError
from islandrun.protocol.ids import public_key_from_device_id
from islandrun.protocol.schema import from_wire, to_wire

#: Turns a conversation keeps (older ones are compacted away everywhere).
MAX_TURNS = m.MAX_HISTORY
#: Conversations a device may start; beyond it, forget some first.
MAX_CONVERSATIONS = 4096
#: Placeholder entries per conversation this device may add.
MAX_VAULT_ENTRIES = 4096
#: Registers (policy keys, cloud definitions) a device may set.
MAX_REGISTERS = 4096
#: A forgotten conversation's id stays refused at least this long (30 days),
#: so a client still holding its history cannot bring it back by sending it.
TOMBSTONE_AGE_MS = 30 * 24 * 3600 * 1000
_SIG_DOMAIN = b"islandrun/group-op/1\x00"
_STATE_VERSION = 1

Dot = tuple[str, int]
Vector = dict[str, int]


class GroupStateError(IslandRunError):
    """A local edit the group state refuses; the message says what to do."""


class OpRejected(RemoteProtocolError):
    """An op from another device is invalid (signature, author, fields)."""


class Hlc:
    """Hybrid logical clock: max(wall ms, last + 1); pushed past what it sees."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def tick(self, now_ms: int) -> int:
        self.last = max(now_ms, self.last + 1)
        return self.last

    def observe(self, hlc: int) -> None:
        self.last = max(self.last, hlc)


def _signed_bytes(op: m.GroupOp) -> bytes:
    return _SIG_DOMAIN + msgpack.packb(to_wire(replace(op, sig=b"")), use_bin_type=True)


def sign_op(key: SigningKey, op: m.GroupOp) -> m.GroupOp:
    """``op`` with its author's signature (the key must be the author's)."""
    return replace(op, sig=key.sign(_signed_bytes(op)).signature)


def verify_op(op: m.GroupOp) -> None:
    """Raise :class:`OpRejected` unless ``op`` is signed by its author's key."""
    try:
        VerifyKey(public_key_from_device_id(op.author)).verify(_signed_bytes(op), op.sig)
    except (BadSignatureError, ValueError, DecodeError):
        raise OpRejected("group op with a bad signature or author") from None


def _order(op: m.GroupOp) -> tuple[int, str, int]:
    return (op.hlc, op.author, op.counter)


def _dot(op: m.GroupOp) -> Dot:
    return (op.author, op.counter)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    turns: int
    last_hlc: int
    authors: tuple[str, ...]


class GroupState:
    """One device's replica. Pure: no clock, no I/O; time comes in as ``now_ms``."""

    def __init__(self, me: str, key: SigningKey) -> None:
        self.me, self._key = me, key
        self.hlc = Hlc()
        self._vector: Vector = {}
        #: Every op kept, by dot. Invariant: each is also in exactly one index below.
        self._ops: dict[Dot, m.GroupOp] = {}
        self._turns: dict[str, dict[Dot, m.GroupOp]] = {}
        self._vault: dict[str, dict[Dot, m.GroupOp]] = {}
        self._forgotten: dict[str, m.GroupOp] = {}
        self._registers: dict[str, m.GroupOp] = {}
        self._spend: dict[tuple[str, str], m.GroupOp] = {}
        self._revoked: dict[str, m.GroupOp] = {}
        #: What each other device last said it knows (its pull vector).
        self.acks: dict[str, Vector] = {}

    # -- knowledge -----------------------------------------------------------

    def vector(self) -> Vector:
        return dict(self._vector)

    def merge_vector(self, vector: Mapping[str, int]) -> None:
        """After a complete delta: everything the sender knew is known here."""
        for device, counter in vector.items():
            if counter > self._vector.get(device, 0):
                self._vector[device] = counter

    def note_ack(self, device: str, vector: Mapping[str, int]) -> None:
        """``device`` pulled with ``vector``: it has (at least) those ops."""
        old = self.acks.setdefault(device, {})
        for author, counter in vector.items():
            old[author] = max(old.get(author, 0), counter)

    def ops(self) -> list[m.GroupOp]:
        return sorted(self._ops.values(), key=_dot)

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:  # never the contents
        return f"<GroupState ops={len(self._ops)} conversations={len(self._turns)}>"

    # -- local edits ---------------------------------------------------------

    def _edit(self, now_ms: int, kind: m.OpKind, **fields: Any) -> m.GroupOp:
        counter = self._vector.get(self.me, 0) + 1
        op = m.GroupOp(author=self.me, counter=counter, hlc=self.hlc.tick(now_ms), kind=kind,
                       **fields)
        op = sign_op(self._key, op)
        self._integrate(op)
        self._vector[self.me] = counter
        return op

    def check_live(self, conversation: str) -> None:
        """Raise :class:`GroupStateError` if ``conversation`` was forgotten."""
        if conversation in self._forgotten:
            raise GroupStateError(
                "this conversation was forgotten on one of your devices; start a new one"
            )

    def add_turn(self, conversation: str, role: m.Role, text: str, now_ms: int) -> m.GroupOp:
        self.check_live(conversation)
        if conversation not in self._turns and len(self._turns) >= MAX_CONVERSATIONS:
            raise GroupStateError(
                f"{MAX_CONVERSATIONS} conversations are kept; forget some "
                "(`islandnode conversations forget ID`)"
            )
        return self._edit(now_ms, m.OpKind.TURN, conversation=conversation, key=role.value,
                          text=text)

    def add_vault_entry(
        self, conversation: str, kind: str, number: int, value: str, now_ms: int
    ) -> m.GroupOp:
        self.check_live(conversation)
        if len(self._vault.get(conversation, ())) >= MAX_VAULT_ENTRIES:
            raise GroupStateError("this conversation holds too many placeholders; start a new one")
        return self._edit(now_ms, m.OpKind.VAULT, conversation=conversation, key=kind,
                          number=number, text=value)

    def forget(self, conversation: str, now_ms: int) -> m.GroupOp | None:
        """Tombstone ``conversation``; None if it was forgotten already."""
        if conversation in self._forgotten:
            return None
        return self._edit(now_ms, m.OpKind.FORGET, conversation=conversation)

    def set_register(self, key: str, value: Any, now_ms: int) -> m.GroupOp:
        """Set register ``key`` to a JSON-ready ``value`` (last writer wins)."""
        if key not in self._registers and len(self._registers) >= MAX_REGISTERS:
            raise GroupStateError(f"at most {MAX_REGISTERS} settings are synced")
        return self._edit(now_ms, m.OpKind.SET, key=key, text=json.dumps(value, sort_keys=True))

    def record_spend(self, key: str, total: float, now_ms: int) -> m.GroupOp:
        """This device's cumulative spend under ``key`` (``cloud|period``) is now ``total``."""
        return self._edit(now_ms, m.OpKind.SPEND, key=key, amount=total)

    def revoke(self, device: str, now_ms: int) -> m.GroupOp | None:
        if device in self._revoked:
            return None
        return self._edit(now_ms, m.OpKind.REVOKE, key=device)

    # -- remote ops ----------------------------------------------------------

    def apply(self, op: m.GroupOp, is_member: Callable[[str], bool]) -> bool:
        """Verify and merge an op from another device; True if it was new here.

        Raises :class:`OpRejected` for a bad signature, an author who is not
        a member of the personal group, or fields that do not fit the kind.
        """
        if not is_member(op.author) and op.author != self.me:
            raise OpRejected("group op from a device outside the personal group")
        _check_fields(op)
        verify_op(op)
        self.hlc.observe(op.hlc)
        return self._integrate(op)

    def _integrate(self, op: m.GroupOp) -> bool:
        dot = _dot(op)
        if dot in self._ops or op.counter <= self._vector.get(op.author, 0):
            return False
        _MERGE[op.kind](self, op)
        return True

    def _keep(self, index: dict, key: Any, op: m.GroupOp) -> None:
        index[key] = op
        self._ops[_dot(op)] = op

    def _drop(self, op: m.GroupOp) -> None:
        self._ops.pop(_dot(op), None)

    def _merge_turn(self, op: m.GroupOp) -> None:
        if op.conversation in self._forgotten:
            return
        turns = self._turns.setdefault(op.conversation, {})
        self._keep(turns, _dot(op), op)
        if len(turns) > MAX_TURNS:  # history compaction: the oldest turn goes
            oldest = min(turns.values(), key=_order)
            del turns[_dot(oldest)]
            self._drop(oldest)

    def _merge_vault(self, op: m.GroupOp) -> None:
        if op.conversation not in self._forgotten:
            self._keep(self._vault.setdefault(op.conversation, {}), _dot(op), op)

    def _merge_forget(self, op: m.GroupOp) -> None:
        old = self._forgotten.get(op.conversation)
        if old is not None:  # two tombstones mean the same: keep the smaller dot
            keep, lose = sorted((old, op), key=_dot)
            self._drop(lose)
            self._keep(self._forgotten, op.conversation, keep)
            return
        self._keep(self._forgotten, op.conversation, op)
        for index in (self._turns, self._vault):
            for gone in index.pop(op.conversation, {}).values():
                self._drop(gone)

    def _merge_set(self, op: m.GroupOp) -> None:
        _highest(self, self._registers, op.key, op, rank=lambda o: (o.hlc, o.author))

    def _merge_spend(self, op: m.GroupOp) -> None:
        _highest(self, self._spend, (op.key, op.author), op, rank=lambda o: (o.amount, o.counter))

    def _merge_revoke(self, op: m.GroupOp) -> None:  # the first revocation stands
        _highest(self, self._revoked, op.key, op, rank=lambda o: (-o.hlc, o.author))

    # -- compaction ----------------------------------------------------------

    def compact(self, members: Iterable[str], now_ms: int) -> int:
        """Drop tombstones older than :data:`TOMBSTONE_AGE_MS` that every member
        has acknowledged; how many were dropped."""
        acks = [self.acks.get(d, {}) for d in members if d != self.me]
        stable = [
            op for op in self._forgotten.values()
            if op.hlc + TOMBSTONE_AGE_MS <= now_ms
            and all(ack.get(op.author, 0) >= op.counter for ack in acks)
        ]
        for op in stable:
            del self._forgotten[op.conversation]
            self._drop(op)
        return len(stable)

    # -- anti-entropy ----------------------------------------------------------

    def delta(
        self,
        vector: Mapping[str, int],
        after: Dot | None = None,
        *,
        max_ops: int = m.MAX_DELTA_OPS,
        max_bytes: int = 2 * 1024 * 1024,
    ) -> tuple[list[m.GroupOp], bool]:
        """Ops kept here that ``vector`` lacks, in dot order after ``after``;
        one page of at most ``max_ops`` ops and about ``max_bytes``; and
        whether more follow."""
        wanted = sorted(
            (op for dot, op in self._ops.items()
             if op.counter > vector.get(op.author, 0) and (after is None or dot > after)),
            key=_dot,
        )
        page, size = [], 0
        for op in wanted:
            cost = len(op.text.encode()) + len(op.conversation) + len(op.key) + 256
            if page and (len(page) >= max_ops or size + cost > max_bytes):
                return page, True
            page.append(op)
            size += cost
        return page, False

    # -- views ---------------------------------------------------------------

    def conversations(self) -> list[ConversationSummary]:
        """Live conversations, most recently active first."""
        out = []
        for conv, turns in self._turns.items():
            if turns:
                ops = sorted(turns.values(), key=_order)
                authors = tuple(sorted({o.author for o in ops}))
                out.append(ConversationSummary(conv, len(ops), ops[-1].hlc, authors))
        return sorted(out, key=lambda c: (-c.last_hlc, c.id))

    def history(self, conversation: str) -> list[m.ChatMessage]:
        turns = sorted(self._turns.get(conversation, {}).values(), key=_order)
        return [m.ChatMessage(role=m.Role(o.key), content=o.text) for o in turns]

    def is_forgotten(self, conversation: str) -> bool:
        return conversation in self._forgotten

    def vault_entries(self, conversation: str) -> list[tuple[str, int, str]]:
        """``(entity type, number, value)``, smallest dot first (the clash winner)."""
        ops = sorted(self._vault.get(conversation, {}).values(), key=_dot)
        return [(o.key, o.number, o.text) for o in ops]

    def register(self, key: str) -> Any:
        op = self._registers.get(key)
        return None if op is None else json.loads(op.text)

    def register_stamp(self, key: str) -> tuple[int, str] | None:
        """When register ``key`` got its value: ``(hlc, author)``, its LWW rank."""
        op = self._registers.get(key)
        return None if op is None else (op.hlc, op.author)

    def registers(self, prefix: str = "") -> dict[str, Any]:
        return {k: json.loads(o.text) for k, o in sorted(self._registers.items())
                if k.startswith(prefix)}

    def spend(self, key: str) -> dict[str, float]:
        """Each device's cumulative spend under ``key``."""
        return {author: op.amount for (k, author), op in self._spend.items() if k == key}

    def own_spend_op(self, key: str) -> m.GroupOp | None:
        return self._spend.get((key, self.me))

    def revoked(self) -> dict[str, int]:
        """Revoked device id -> hlc of the revocation."""
        return {d: op.hlc for d, op in self._revoked.items()}

    # -- persistence (bytes only; encryption is groupstate_store's) ------------

    def to_bytes(self) -> bytes:
        body = {
            "v": _STATE_VERSION, "hlc": self.hlc.last, "vector": self._vector,
            "acks": self.acks, "ops": [to_wire(op) for op in self.ops()],
        }
        return msgpack.packb(body, use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes, me: str, key: SigningKey) -> GroupState:
        """A replica :meth:`to_bytes` wrote; :class:`DecodeError` if damaged."""
        body = m.unpack(data, max_size=1 << 31)
        if type(body) is not dict or body.get("v") != _STATE_VERSION:
            raise DecodeError("not a group state of a known version")
        state = cls(me, key)
        try:
            state.hlc = Hlc(int(body["hlc"]))
            state.acks = {str(d): {str(a): int(c) for a, c in v.items()}
                          for d, v in body["acks"].items()}
            for raw in body["ops"]:
                state._integrate(from_wire(m.GroupOp, raw))
            state._vector = {str(d): int(c) for d, c in body["vector"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DecodeError("group state is damaged") from None
        return state


def _highest(
    state: GroupState, index: dict, key: Any, op: m.GroupOp, *, rank: Callable
) -> None:
    """Keep whichever of ``op`` and ``index[key]`` ranks higher; drop the other."""
    old = index.get(key)
    if old is not None:
        if rank(old) >= rank(op):
            return
        state._drop(old)
    state._keep(index, key, op)


_MERGE: dict[m.OpKind, Callable[[GroupState, m.GroupOp], None]] = {
    m.OpKind.TURN: GroupState._merge_turn,
    m.OpKind.VAULT: GroupState._merge_vault,
    m.OpKind.FORGET: GroupState._merge_forget,
    m.OpKind.SET: GroupState._merge_set,
    m.OpKind.SPEND: GroupState._merge_spend,
    m.OpKind.REVOKE: GroupState._merge_revoke,
}


def _check_fields(op: m.GroupOp) -> None:
    """Fields an op of its kind must have; :class:`OpRejected` otherwise."""
    kind = op.kind
    if kind in (m.OpKind.TURN, m.OpKind.VAULT, m.OpKind.FORGET) and not op.conversation:
        raise OpRejected(f"{kind.value} op without a conversation")
    if kind is m.OpKind.TURN and op.key not in {r.value for r in m.Role}:
        raise OpRejected("turn op with an unknown role")
    if kind in (m.OpKind.SET, m.OpKind.SPEND, m.OpKind.REVOKE, m.OpKind.VAULT) and not op.key:
        raise OpRejected(f"{kind.value} op without a key")
    if kind is m.OpKind.SET:
        try:
            json.loads(op.text)
        except ValueError:
            raise OpRejected("set op whose value is not JSON") from None
