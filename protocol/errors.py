"""The errors IslandRun raises, split by who is to blame.

Every error we raise derives from :class:`IslandRunError`, so a caller (the
CLI, a transport loop, a validator) can catch exactly our errors and let real
bugs surface. The split follows h11: :class:`RemoteProtocolError` means bytes
from elsewhere were bad (drop them, keep serving); :class:`LocalProtocolError`
means our own code tried to build something invalid.

Messages say what is wrong and, where it helps, what to do. They never quote
message contents: a prompt or an entity value must not reach a log through an
exception string.
"""

from __future__ import annotations

import enum


class IslandRunError(Exception):
    """Base class of every error IslandRun raises on purpose."""


class LocalProtocolError(IslandRunError):
    """We tried to build or send something the protocol does not allow."""


class RemoteProtocolError(IslandRunError):
    """Bytes that came from elsewhere are not a valid message."""


class DecodeError(RemoteProtocolError):
    """A message could not be decoded; ``field`` names the offending field.

    ``field`` is ``None`` when the bytes are not a message at all (not msgpack,
    too large, wrong top-level shape).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field
        self.detail = message


class FrameError(RemoteProtocolError):
    """A length-prefixed frame is malformed or larger than allowed."""


class SealError(RemoteProtocolError):
    """A sealed payload could not be opened (wrong key, altered, or malformed)."""


class RejectReason(enum.Enum):
    """Why a signed envelope was refused. Each has exactly one meaning."""

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    BAD_SIGNATURE = "bad signature"
    WRONG_DOMAIN = "signed for another domain"
    SIGNER_MISMATCH = "signer is not the claimed device"
    STALE_SEQ = "sequence number not newer than the last accepted"
    CONFLICTING_SEQ = "same sequence number with different content"
    EXPIRED = "expired"


class EnvelopeRejected(RemoteProtocolError):
    """A signed envelope failed verification; ``reason`` says which check."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        text = f"envelope rejected: {reason.value}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.reason = reason
