"""The local API: the mesh as an OpenAI-compatible endpoint.

``POST /v1/chat/completions`` (streaming and not) and ``GET /v1/models``, so
any OpenAI client -- the official SDK, LangChain, a chat UI -- can use the
person's islands. Every request goes through the same path as ``islandnode
ask``: MIST, WAVES, the chosen island, restore, audit.

IslandRun extensions:

* request: ``"islandrun": {"tier", "sensitivity", "dataset", "conversation",
  "island"}`` -- the tier (primary/secondary/burstable), a floor on the
  sensitivity MIST computes (the caller may know more), the dataset the
  request needs (data locality), the conversation id (placeholder vault and
  history), and optionally one island to use;
* response: headers ``x-islandrun-island`` (device id) and
  ``x-islandrun-sanitized`` (``true`` when MIST replaced entities before the
  text left this device), and an ``islandrun`` object with the decision
  (island, name, reason, sanitized; ``explain`` lines when asked).

Security: a bearer token (``<home>/api.token``, 0600; ``islandnode token``
prints it) is required, compared in constant time, and the server binds to
loopback unless told otherwise. A refusal is HTTP 403 whose message names
the constraint that removed each island; too many requests are 429.

The chat endpoint is a raw ASGI app rather than a Starlette handler because
a streamed answer's headers must name the island, which is known only once
WAVES has decided -- so the response starts when the first event arrives.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.schema import InvalidField

from .dispatch import Outcome, RateLimited, Refused
from .groupstate import GroupStateError
from .home import write_private
from .waves import Decision

TOKEN_FILE = "api.token"
#: Largest request body accepted (bytes): a long history, well below memory.
MAX_BODY = 4 * 1024 * 1024
#: Seconds allowed to receive a request body (not the answer, which may stream for long).
BODY_TIMEOUT = 30

Ask = Callable[..., Awaitable[Outcome]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ApiError(IslandRunError):
    """A request the API refuses, with its HTTP status and OpenAI error type."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param

    def body(self) -> bytes:
        error = {"message": str(self), "type": self.kind, "param": self.param, "code": None}
        return json.dumps({"error": error}).encode()


def load_token(home: Path) -> str:
    """The API token, created on first use (0600)."""
    path = home / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        write_private(path, token.encode())
    return token


@dataclass
class ChatRequest:
    """A validated ``/v1/chat/completions`` body."""

    request: m.InferenceRequest
    stream: bool
    model: str
    island: str | None
    explain: bool


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param)


def parse_chat(body: Any, *, now: float, timeout: float = 300.0) -> ChatRequest:
    """Validate an OpenAI chat body into an :class:`InferenceRequest`."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a non-empty list", "messages")
    ext = body.get("islandrun") or {}
    if not isinstance(ext, dict):
        raise _bad("islandrun must be an object", "islandrun")
    try:
        messages = tuple(_message(x, i) for i, x in enumerate(raw))
        model = body.get("model")
        request = m.InferenceRequest(
            request_id=uuid.uuid4().hex,
            conversation_id=str(ext.get("conversation") or ""),
            messages=messages,
            model_hint=model if model not in (None, "", "auto") else None,
            tier=m.Tier(ext.get("tier", "secondary")),
            sensitivity=float(ext.get("sensitivity", 0.0)),
            dataset=ext.get("dataset"),
            deadline=now + timeout,
            max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
            temperature=float(body.get("temperature", 0.7)),
        )
    except InvalidField as exc:
        raise _bad(f"{exc.field}: {exc.reason}", exc.field) from None
    except (ValueError, TypeError) as exc:
        raise _bad(f"invalid field: {exc}") from None
    return ChatRequest(
        request=request, stream=bool(body.get("stream", False)), model=str(model or "auto"),
        island=ext.get("island"), explain=bool(ext.get("explain", False)),
    )


def _message(item: Any, index: int) -> m.ChatMessage:
    if not isinstance(item, dict):
        raise _bad(f"messages[{index}] must be an object", f"messages[{index}]")
    content = item.get("content")
    if isinstance(content, list):  # OpenAI "parts": keep the text parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise _bad(f"messages[{index}].content must be text", f"messages[{index}].content")
    try:
        role = m.Role(item.get("role"))
    except ValueError:
        raise _bad(f"messages[{index}].role must be system, user or assistant") from None
    return m.ChatMessage(role=role, content=content)


def decision_summary(decision: Decision, sanitized: bool, explain: bool) -> dict[str, Any]:
    island = decision.island
    summary: dict[str, Any] = {
        "island": island.device_id if island else None,
        "island_name": island.name if island else None,
        "reason": decision.reason,
        "sanitized": sanitized,
        "sensitivity": round(decision.sensitivity, 3),
    }
    if explain:
        summary["explain"] = decision.explain()
    return summary


class ChatEndpoint:
    """``POST /v1/chat/completions`` as a raw ASGI app (see the module docstring)."""

    def __init__(self, ask: Ask, token: str) -> None:
        self._ask, self._token = ask, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            chat = await self._read(Request(scope, receive))
        except ApiError as exc:
            await _send_json(send, exc.status, exc.body())
            return
        async with trio.open_nursery() as nursery:
            events = self._start(nursery, chat)
            first = await events.receive()
            if first[0] == "error":
                await _send_error(send, first[1])
            elif chat.stream:
                nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
                await _stream(send, chat, first, events)
            else:
                await _complete(send, chat, first, events)
            nursery.cancel_scope.cancel()

    async def _read(self, request: Request) -> ChatRequest:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
            raise ApiError(401, "missing or wrong bearer token (see `islandnode token`)",
                           "authentication_error")
        body = b""
        with trio.move_on_after(BODY_TIMEOUT) as timer:
            async for piece in request.stream():
                body += piece
                if len(body) > MAX_BODY:
                    raise _bad(f"request body over {MAX_BODY} bytes")
        if timer.cancelled_caught:
            raise ApiError(408, f"request body not received within {BODY_TIMEOUT} s",
                           "invalid_request_error")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _bad("the body is not valid JSON") from None
        return parse_chat(data, now=time.time())

    def _start(
        self, nursery: trio.Nursery, chat: ChatRequest
    ) -> trio.MemoryReceiveChannel[tuple[str, Any]]:
        """Run the request in ``nursery``; its events: chunk, then end or error."""
        send, receive = trio.open_memory_channel[tuple[str, Any]](256)
        current: list[Decision] = []

        async def on_chunk(text: str) -> None:
            await send.send(("chunk", (text, current[-1])))

        async def run() -> None:
            async with send:
                try:
                    outcome = await self._ask(
                        chat.request, on_chunk, peer=chat.island, client_id="api",
                        on_island=current.append,
                    )
                    await send.send(("end", outcome))
                except IslandRunError as exc:
                    await send.send(("error", exc))

        nursery.start_soon(run)
        return receive


def _headers(decision: Decision, content_type: bytes) -> list[tuple[bytes, bytes]]:
    island = decision.island
    return [
        (b"content-type", content_type),
        (b"x-islandrun-island", (island.device_id if island else "").encode()),
        (b"x-islandrun-sanitized", b"true" if decision.sanitize else b"false"),
    ]


async def _send_json(send: Send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": headers or [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, exc: IslandRunError) -> None:
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, Refused):
        error = ApiError(403, str(exc), "islandrun_refused")
    elif isinstance(exc, RateLimited):
        error = ApiError(429, str(exc), "rate_limit_error")
    elif isinstance(exc, GroupStateError):  # e.g. a forgotten conversation id: the caller's to fix
        error = ApiError(409, str(exc), "islandrun_conversation")
    else:
        error = ApiError(502, f"no island could answer: {exc}", "islandrun_unavailable")
    await _send_json(send, error.status, error.body())


def _completion_base(chat: ChatRequest, kind: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{chat.request.request_id}", "object": kind,
            "created": int(time.time()), "model": chat.model}


async def _complete(send: Send, chat: ChatRequest, first: tuple, events: Any) -> None:
    text, event = [], first
    while event[0] == "chunk":
        text.append(event[1][0])
        event = await events.receive()
    if event[0] == "error":
        await _send_error(send, event[1])
        return
    outcome: Outcome = event[1]
    usage = outcome.usage
    body = {
        **_completion_base(chat, "chat.completion"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                     "finish_reason": usage.finish_reason}],
        "usage": {"prompt_tokens": usage.prompt_tokens,
                  "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.prompt_tokens + usage.completion_tokens},
        "islandrun": decision_summary(outcome.decision, outcome.sanitized, chat.explain),
    }
    await _send_json(send, 200, json.dumps(body).encode(),
                     _headers(outcome.decision, b"application/json"))


async def _stream(send: Send, chat: ChatRequest, first: tuple, events: Any) -> None:
    decision = first[1][1] if first[0] == "chunk" else first[1].decision
    await send({"type": "http.response.start", "status": 200,
                "headers": _headers(decision, b"text/event-stream")})
    base = _completion_base(chat, "chat.completion.chunk")

    async def emit(payload: dict[str, Any]) -> None:
        data = b"data: " + json.dumps(payload).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": data, "more_body": True})

    event = first
    while event[0] == "chunk":
        await emit({**base, "choices": [{"index": 0, "delta": {"content": event[1][0]},
                                         "finish_reason": None}]})
        event = await events.receive()
    if event[0] == "end":
        outcome: Outcome = event[1]
        usage = outcome.usage
        await emit({**base, "choices": [{"index": 0, "delta": {},
                                         "finish_reason": usage.finish_reason}],
                    "usage": {"prompt_tokens": usage.prompt_tokens,
                              "completion_tokens": usage.completion_tokens,
                              "total_tokens": usage.prompt_tokens + usage.completion_tokens},
                    "islandrun": decision_summary(outcome.decision, outcome.sanitized,
                                                  chat.explain)})
    else:  # failed mid-stream: say so in-band, as OpenAI-compatible servers do
        await emit({"error": {"message": str(event[1]), "type": "islandrun_unavailable"}})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    """The client went away: cancel the request (the remote generation stops)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def build_app(ask: Ask, models: Callable[[], list[dict[str, Any]]], token: str) -> Starlette:
    """The ASGI app of the local API."""

    async def list_models(request: Request) -> JSONResponse:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            error = ApiError(401, "missing or wrong bearer token (see `islandnode token`)",
                             "authentication_error")
            return JSONResponse(json.loads(error.body()), status_code=401)
        return JSONResponse({"object": "list", "data": models()})

    return Starlette(routes=[
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", ChatEndpoint(ask, token), methods=["POST"]),
    ])
