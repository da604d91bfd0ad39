"""The messages IslandRun nodes exchange, and their msgpack encoding.

Every message is a frozen, slotted, keyword-only dataclass that validates on
construction (via :func:`~islandrun.protocol.schema.validate`), so a message
that exists is a valid one. On the wire a message is a msgpack map::

    {"v": PROTOCOL_VERSION, "t": MsgType, <field>: <value>, ...}

Unknown keys are ignored, so a newer peer may add fields; a missing or
ill-typed required field is rejected with :class:`DecodeError` naming it.

What this module is not: it does not sign (``envelope``), encrypt
(``sealing``) or frame (``framing``) anything. Those wrap these bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from .errors import DecodeError
from .schema import from_wire, spec, to_wire, validate

PROTOCOL_VERSION = 1
#: Default bound on one encoded message. Requests carrying a long chat
#: history are the largest messages; 4 MiB holds ~1M tokens of text.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Bound on one chat message's text and on a response chunk.
MAX_TEXT_LEN = 2 * 1024 * 1024
#: Bound on the number of messages in a request's chat history.
MAX_HISTORY = 1024


class MsgType(enum.IntEnum):
    """Wire tags. APPEND-ONLY: these numbers are on the wire and in stored
    state; never renumber or reuse one."""

    ADVERT = 1
    REQUEST = 2
    CHUNK = 3
    END = 4
    ERROR = 5
    CANCEL = 6
    PAIR_JOIN = 7
    PAIR_WELCOME = 8
    PAIR_REJECT = 9
    REVOCATION = 10
    INTRODUCTION = 11
    KEEPALIVE = 12
    PAKE_START = 13
    PAKE_REPLY = 14
    GROUP_PULL = 15
    GROUP_DELTA = 16


class Tier(enum.Enum):
    """How much a request insists on running locally (paper section IX).

    primary: runs locally, queueing if needed; secondary: locally while local
    capacity is at least 50%, elsewhere otherwise; burstable: locally only when
    capacity is high.
    """

    PRIMARY = "primary"
    SECONDARY = "secondary"
    BURSTABLE = "burstable"


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class TrustTier(enum.Enum):
    """Pairing tiers: the owner's own devices, a friend's, private edge."""

    PERSONAL = "personal"
    FRIEND = "friend"
    EDGE = "edge"


_FROZEN = {"frozen": True, "slots": True, "kw_only": True}


class _Validated:
    __slots__ = ()

    def __post_init__(self) -> None:
        validate(self)


# ---------------------------------------------------------------- adverts


@dataclass(**_FROZEN)
class ModelInfo(_Validated):
    """A model an island can run: name, context window and quantisation."""

    name: str = spec(max_len=256)
    context: int = spec(lo=1, hi=10_000_000)
    quantization: str = spec(default="", max_len=64)


@dataclass(**_FROZEN)
class DatasetInfo(_Validated):
    """A named retrieval index held on an island (data locality)."""

    name: str = spec(max_len=256)
    kind: str = spec(default="lexical", max_len=32)
    documents: int = spec(default=0, lo=0)


@dataclass(**_FROZEN)
class CostModel(_Validated):
    """Price in US dollars per million input and output tokens; 0 = free."""

    price_in: float = spec(default=0.0, lo=0.0)
    price_out: float = spec(default=0.0, lo=0.0)


FREE = CostModel()


@dataclass(**_FROZEN)
class Advert(_Validated):
    """A device's signed claim about what it offers right now.

    An advert is a claim, not a credential: the trust and privacy scores a
    node uses come from its own pairing records, never from here.
    """

    device_id: str = spec(max_len=128)
    name: str = spec(max_len=128)
    models: tuple[ModelInfo, ...] = spec(default=())
    #: Fraction of this device's capacity free for new work, after its buffer.
    capacity: float = spec(lo=0.0, hi=1.0)
    in_flight: int = spec(default=0, lo=0)
    battery_pct: float | None = spec(default=None, lo=0.0, hi=100.0)
    charging: bool | None = None
    #: Willingness to serve other people's requests, 0..1 (battery-aware).
    serve_others: float = spec(default=1.0, lo=0.0, hi=1.0)
    #: Quality of the link the advert arrived over, 0..1 (1 = LAN).
    link_quality: float = spec(default=1.0, lo=0.0, hi=1.0)
    datasets: tuple[DatasetInfo, ...] = spec(default=())
    cost: CostModel = FREE
    addresses: tuple[str, ...] = spec(default=(), max_len=32)
    software_version: str = spec(default="", max_len=64)


# -------------------------------------------------------------- inference


@dataclass(**_FROZEN)
class ChatMessage(_Validated):
    role: Role
    content: str = spec(max_len=MAX_TEXT_LEN)


@dataclass(**_FROZEN)
class InferenceRequest(_Validated):
    """One generation request, shipped sealed to the island WAVES chose."""

    request_id: str = spec(max_len=64)
    conversation_id: str = spec(default="", max_len=64)
    messages: tuple[ChatMessage, ...] = spec(max_len=MAX_HISTORY)
    model_hint: str | None = spec(default=None, max_len=256)
    #: At least this sensitive: a floor set by the caller, who may know more
    #: than MIST; the routing node ships the sensitivity it used.
    sensitivity: float = spec(default=0.0, lo=0.0, hi=1.0)
    tier: Tier = Tier.SECONDARY
    dataset: str | None = spec(default=None, max_len=256)
    latency_budget_ms: int | None = spec(default=None, lo=0)
    #: Absolute deadline, Unix seconds (the sender's clock).
    deadline: float = spec(lo=0.0)
    max_tokens: int = spec(default=256, lo=1, hi=1_000_000)
    temperature: float = spec(default=0.7, lo=0.0, hi=10.0)


@dataclass(**_FROZEN)
class ResponseChunk(_Validated):
    """One piece of a streamed answer; ``index`` counts from 0 per request."""

    request_id: str = spec(max_len=64)
    index: int = spec(lo=0)
    text: str = spec(max_len=MAX_TEXT_LEN)


@dataclass(**_FROZEN)
class ResponseEnd(_Validated):
    """The end of a streamed answer, with token usage for cost accounting."""

    request_id: str = spec(max_len=64)
    prompt_tokens: int = spec(default=0, lo=0)
    completion_tokens: int = spec(default=0, lo=0)
    finish_reason: str = spec(default="stop", max_len=32)


@dataclass(**_FROZEN)
class ErrorMessage(_Validated):
    """A request failed or was refused; ``code`` is machine-readable."""

    request_id: str = spec(default="", max_len=64)
    code: str = spec(max_len=64)
    message: str = spec(max_len=4096)


@dataclass(**_FROZEN)
class Cancel(_Validated):
    """The client went away: stop generating for this request."""

    request_id: str = spec(max_len=64)


@dataclass(**_FROZEN)
class Keepalive(_Validated):
    """The island is still working on a request (sent when no chunk is due).

    Lets the client keep a short read deadline, and so detect a frozen or
    dead island within seconds, however slowly the model produces tokens.
    """

    request_id: str = spec(max_len=64)


# ---------------------------------------------------------------- pairing


@dataclass(**_FROZEN)
class PairJoin(_Validated):
    """A joiner's first pairing message: who it is and proof of the secret."""

    invite_id: bytes = spec(max_len=32)
    device_id: str = spec(max_len=128)
    name: str = spec(max_len=128)
    public_key: bytes = spec(max_len=32)
    proof: bytes = spec(max_len=64)


@dataclass(**_FROZEN)
class PairWelcome(_Validated):
    """The inviter accepts: its identity, the tier, and its own proof."""

    device_id: str = spec(max_len=128)
    name: str = spec(max_len=128)
    public_key: bytes = spec(max_len=32)
    tier: TrustTier
    proof: bytes = spec(max_len=64)


@dataclass(**_FROZEN)
class PakeStart(_Validated):
    """A joiner with a short human code opens SPAKE2 (no secret crosses)."""

    nameplate: str = spec(max_len=8)
    device_id: str = spec(max_len=128)
    name: str = spec(max_len=128)
    spake: bytes = spec(max_len=128)


@dataclass(**_FROZEN)
class PakeReply(_Validated):
    """The inviter's SPAKE2 message, and which invite the code belongs to."""

    invite_id: bytes = spec(max_len=32)
    spake: bytes = spec(max_len=128)


@dataclass(**_FROZEN)
class PairReject(_Validated):
    reason: str = spec(max_len=256)


@dataclass(**_FROZEN)
class Revocation(_Validated):
    """The owner revoked a device; gossiped signed to their personal group."""

    device_id: str = spec(max_len=128)
    revoked_at: float = spec(lo=0.0)


@dataclass(**_FROZEN)
class Introduction(_Validated):
    """A personal device introduces a newly paired personal device."""

    device_id: str = spec(max_len=128)
    name: str = spec(max_len=128)
    public_key: bytes = spec(max_len=32)
    tier: TrustTier


# ------------------------------------------------ personal group state sync


class OpKind(enum.Enum):
    """What a group-state op does (``node/groupstate.py``). APPEND-ONLY."""

    TURN = "turn"  # a chat turn added to a conversation
    VAULT = "vault"  # a placeholder <-> value pair of a conversation's vault
    FORGET = "forget"  # a conversation tombstone
    SET = "set"  # a last-writer-wins register (policy, cloud definitions)
    SPEND = "spend"  # this device's cumulative spend on a cloud in a period
    REVOKE = "revoke"  # a device the owner revoked


#: Bound on one op's text (a turn, a register's value): one op always fits
#: in a delta message, with room for others.
MAX_OP_TEXT = 512 * 1024
#: Bound on ops in one delta message (pages carry the rest).
MAX_DELTA_OPS = 512
#: Bound on the devices named in a version vector (= paired devices).
MAX_VECTOR = 1024


@dataclass(**_FROZEN)
class GroupOp(_Validated):
    """One edit of the personal group's state, signed by the device that made it.

    ``(author, counter)`` names the op uniquely; ``counter`` counts from 1 per
    author with no gaps. ``hlc`` is the author's hybrid logical clock. Which
    of the other fields matter depends on ``kind``. ``sig`` is the author's
    Ed25519 signature over the op with ``sig`` empty (``groupstate.sign_op``).
    """

    author: str = spec(max_len=128)
    counter: int = spec(lo=1)
    hlc: int = spec(lo=0)
    kind: OpKind
    #: TURN, VAULT, FORGET: the conversation id.
    conversation: str = spec(default="", max_len=64)
    #: TURN: the role; VAULT: the entity type; SET: the register's key;
    #: SPEND: the cloud name and period ("name|2026-11-22"); REVOKE: the device id.
    key: str = spec(default="", max_len=256)
    #: TURN: the text; VAULT: the value; SET: the value (JSON).
    text: str = spec(default="", max_len=MAX_OP_TEXT)
    #: VAULT: the placeholder number.
    number: int = spec(default=0, lo=0, hi=2**31)
    #: SPEND: cumulative amount (currency).
    amount: float = spec(default=0.0, lo=0.0)
    sig: bytes = spec(default=b"", max_len=64)

    def __repr__(self) -> str:  # never ``text``: chat turns, vault values, shared API keys
        return (f"GroupOp({self.kind.value} {self.author[:12]}#{self.counter} "
                f"hlc={self.hlc} key={self.key[:64]!r})")


@dataclass(**_FROZEN)
class VersionEntry(_Validated):
    """In a version vector: every op of ``device`` up to ``counter`` is known."""

    device: str = spec(max_len=128)
    counter: int = spec(lo=0)


@dataclass(**_FROZEN)
class GroupPull(_Validated):
    """Anti-entropy: "this is what I know; send me what I lack".

    ``after`` pages through a long delta: the (author, counter) of the last op
    of the previous page, or empty for the first page.
    """

    vector: tuple[VersionEntry, ...] = spec(max_len=MAX_VECTOR)
    after_device: str = spec(default="", max_len=128)
    after_counter: int = spec(default=0, lo=0)


@dataclass(**_FROZEN)
class GroupDelta(_Validated):
    """The ops the puller lacks (one page), and the sender's vector when complete."""

    ops: tuple[GroupOp, ...] = spec(max_len=MAX_DELTA_OPS)
    #: The sender's version vector as of the first page; the puller merges it
    #: only after the last page (``more`` false).
    vector: tuple[VersionEntry, ...] = spec(max_len=MAX_VECTOR)
    more: bool = False


Message = (
    Advert
    | InferenceRequest
    | ResponseChunk
    | ResponseEnd
    | ErrorMessage
    | Cancel
    | Keepalive
    | PairJoin
    | PairWelcome
    | PairReject
    | PakeStart
    | PakeReply
    | Revocation
    | Introduction
    | GroupPull
    | GroupDelta
)

_TYPES: dict[MsgType, type] = {
    MsgType.ADVERT: Advert,
    MsgType.REQUEST: InferenceRequest,
    MsgType.CHUNK: ResponseChunk,
    MsgType.END: ResponseEnd,
    MsgType.ERROR: ErrorMessage,
    MsgType.CANCEL: Cancel,
    MsgType.KEEPALIVE: Keepalive,
    MsgType.PAIR_JOIN: PairJoin,
    MsgType.PAIR_WELCOME: PairWelcome,
    MsgType.PAIR_REJECT: PairReject,
    MsgType.REVOCATION: Revocation,
    MsgType.INTRODUCTION: Introduction,
    MsgType.PAKE_START: PakeStart,
    MsgType.PAKE_REPLY: PakeReply,
    MsgType.GROUP_PULL: GroupPull,
    MsgType.GROUP_DELTA: GroupDelta,
}
_TAGS: dict[type, MsgType] = {cls: tag for tag, cls in _TYPES.items()}

M = TypeVar("M")


def msg_type(message: Message) -> MsgType:
    """The wire tag of a message object."""
    return _TAGS[type(message)]


def encode(message: Message) -> bytes:
    """Encode a message as versioned, tagged msgpack."""
    body: dict[str, Any] = to_wire(message)
    body["v"] = PROTOCOL_VERSION
    body["t"] = int(_TAGS[type(message)])
    return msgpack.packb(body, use_bin_type=True)


def unpack(data: bytes, *, max_size: int) -> Any:
    """msgpack bytes -> Python values, turning every failure into ours.

    msgpack can raise many exception types on hostile input (ValueError,
    ExtraData, StackError, UnicodeDecodeError, TypeError...); none escapes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("expected bytes")
    if len(data) > max_size:
        raise DecodeError(f"message of {len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:
        raise DecodeError(f"not valid msgpack ({type(exc).__name__})") from None


def decode(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Message:
    """Decode one message; raises only :class:`DecodeError`."""
    body = unpack(data, max_size=max_size)
    if type(body) is not dict:
        raise DecodeError("expected a message map")
    version = body.get("v")
    if type(version) is not int:
        raise DecodeError("missing or invalid protocol version", field="v")
    if version != PROTOCOL_VERSION:
        raise DecodeError(
            f"protocol version {version} is not supported (this node speaks "
            f"{PROTOCOL_VERSION}); update the older node",
            field="v",
        )
    tag = body.get("t")
    try:
        cls = _TYPES[MsgType(tag)]
    except (ValueError, TypeError):
        raise DecodeError("unknown message type", field="t") from None
    return from_wire(cls, body)


def decode_as(data: bytes, cls: type[M], *, max_size: int = MAX_MESSAGE_SIZE) -> M:
    """Decode one message and insist on its type (e.g. only adverts on the advert topic)."""
    message = decode(data, max_size=max_size)
    if not isinstance(message, cls):
        raise DecodeError(f"expected {cls.__name__}, got {type(message).__name__}", field="t")
    return message
