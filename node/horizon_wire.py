"""The OpenAI chat-completions wire format, as HORIZON speaks it (sans-IO).

Bytes and dicts in, values out; no sockets, no clock. HORIZON
(:mod:`islandrun.node.horizon`) does the HTTP and feeds this module:

- :func:`chat_body` turns an :class:`InferenceRequest` into the JSON body of
  ``POST {url}/chat/completions``, asking for a stream and for the token
  usage at its end (``stream_options.include_usage``);
- :class:`SSEDecoder` splits a ``text/event-stream`` body into event data
  (the Server-Sent Events rules: ``data:`` lines joined, comments and other
  fields ignored, an empty line ends an event; LF or CRLF line ends), with a
  line size limit;
- :func:`parse_chunk` reads one streamed ``chat.completion.chunk`` and
  :func:`parse_completion` a whole non-streamed ``chat.completion`` (servers
  that ignore ``stream``);
- :func:`retry_after` reads a ``Retry-After`` header (seconds or HTTP date).

Errors never quote what the server sent: an error body may echo the prompt
or part of the API key (some providers do), so messages name only the field
that was wrong.
"""

from __future__ import annotations

import email.utils
import json
import math
from dataclasses import dataclass
from typing import Any

from islandrun.protocol.messages import InferenceRequest

from .errors import NodeError

#: Longest SSE line accepted (one streamed chunk is a few hundred bytes).
MAX_LINE_BYTES = 1 << 20
#: Largest non-streamed response body accepted.
MAX_BODY_BYTES = 16 << 20


class CloudError(NodeError):
    """A cloud island could not answer; the message says why and what to do."""


class CloudProtocolError(CloudError):
    """A cloud island sent something that is not the OpenAI wire format."""


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Piece:
    """What one streamed chunk (or a whole completion) carries."""

    text: str = ""
    finish_reason: str | None = None
    usage: TokenUsage | None = None


def chat_body(request: InferenceRequest, model: str, *, stream: bool = True) -> dict[str, Any]:
    """The JSON body of a chat-completions call for ``request`` on ``model``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": msg.role.value, "content": msg.content} for msg in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


class SSEDecoder:
    """Server-Sent Events: bytes in, the ``data`` of each complete event out."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max_line = max_line
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """The events completed by ``chunk`` (LF and CRLF end a line)."""
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        if len(self._buffer) > self._max_line:
            raise CloudProtocolError(f"event-stream line longer than {self._max_line} bytes")
        events = (self._line(line.removesuffix(b"\r")) for line in lines)
        return [event for event in events if event is not None]

    def close(self) -> list[str]:
        """The last event, if the stream ended without its blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _line(self, raw: bytes) -> str | None:
        if len(raw) > self._max_line:
            raise CloudProtocolError(f"event-stream line longer than {self._max_line} bytes")
        if not raw:
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CloudProtocolError("event-stream line is not UTF-8") from None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None


def _decode_json(data: str | bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError:
        raise CloudProtocolError(f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise CloudProtocolError(f"{what} is not a JSON object")
    if "error" in obj:
        raise CloudError(f"the cloud reported an error{_error_code(obj['error'])}")
    return obj


def error_code(body: bytes) -> str:
    """`` (code X)`` from an error response body like ``{"error": {"code": X}}``."""
    try:
        obj = json.loads(body)
    except ValueError:
        return ""
    return _error_code(obj.get("error")) if isinstance(obj, dict) else ""


def _error_code(error: Any) -> str:
    """`` (code X)`` when the error carries a short identifier, else nothing."""
    code = error.get("code") or error.get("type") if isinstance(error, dict) else None
    if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64:
        return f" (code {code})"
    return ""


def _usage(obj: dict[str, Any]) -> TokenUsage | None:
    usage = obj.get("usage")
    if usage is None:
        return None
    counts = [usage.get(k) if isinstance(usage, dict) else None
              for k in ("prompt_tokens", "completion_tokens")]
    if not all(type(c) is int and c >= 0 for c in counts):
        raise CloudProtocolError("usage must hold prompt_tokens and completion_tokens >= 0")
    return TokenUsage(*counts)


def _first_choice(obj: dict[str, Any], what: str) -> dict[str, Any] | None:
    choices = obj.get("choices")
    if choices is None or choices == []:
        return None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise CloudProtocolError(f"{what}: choices must be a list of objects")
    return choices[0]


def _finish(choice: dict[str, Any], what: str) -> str | None:
    reason = choice.get("finish_reason")
    if reason is not None and not (isinstance(reason, str) and len(reason) <= 32):
        raise CloudProtocolError(f"{what}: finish_reason must be a short string")
    return reason


def _text(part: Any, what: str) -> str:
    content = part.get("content") if isinstance(part, dict) else None
    if content is not None and not isinstance(content, str):
        raise CloudProtocolError(f"{what}: content must be a string")
    return content or ""


def parse_chunk(data: str) -> Piece:
    """One streamed ``chat.completion.chunk`` (the data of one SSE event)."""
    what = "stream chunk"
    obj = _decode_json(data, what)
    choice = _first_choice(obj, what)
    if choice is None:
        return Piece(usage=_usage(obj))
    return Piece(_text(choice.get("delta"), what), _finish(choice, what), _usage(obj))


def parse_completion(body: bytes) -> Piece:
    """A whole non-streamed ``chat.completion``."""
    what = "completion"
    obj = _decode_json(body, what)
    choice = _first_choice(obj, what)
    if choice is None:
        raise CloudProtocolError(f"{what} has no choices")
    return Piece(_text(choice.get("message"), what), _finish(choice, what), _usage(obj))


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (``now``: Unix seconds), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def estimate_tokens(chars: int) -> int:
    """Tokens in a text of ``chars`` characters when the server reports no usage
    (about 4 characters a token for English and BPE tokenizers)."""
    return math.ceil(chars / 4)
