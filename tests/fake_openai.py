"""A small OpenAI-compatible server for tests: real HTTP on 127.0.0.1, scripted replies.

It plays a cloud island (or any OpenAI-compatible API). Every request's raw
body bytes and headers are recorded, so a test can assert exactly what left
the node. Replies follow ``script`` (one :class:`Reply` per request, in
order), then ``default``. ``Reply(echo=True)`` streams back the text of all
the messages it was sent, in 3-character chunks, so placeholders arrive
split across chunks.

Served by hypercorn under trio (starlette app): start it with
``await nursery.start(fake.serve)``; ``fake.url`` is the base URL (``.../v1``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import hypercorn.trio
import trio
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    chunks: tuple[str, ...] = ("Hello", " from", " the cloud")
    usage: dict[str, int] | None = field(default_factory=lambda: dict(USAGE))
    stream: bool = True  # False: one JSON completion, as servers ignoring "stream" send
    echo: bool = False  # answer with the text of every message received
    retry_after: str | None = None
    stall: bool = False  # send nothing, ever (for timeouts)
    done: bool = True  # end the stream with [DONE] (False: cut it off after the chunks)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class FakeCloud:
    def __init__(self, *script: Reply, default: Reply = Reply()) -> None:
        self.script = list(script)
        self.default = default
        self.received: list[Received] = []
        self.url = ""
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.graceful_timeout = 0.1
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(hypercorn.trio.serve, self.app, config)
            self.url = binds[0] + "/v1"
            task_status.started()

    async def _chat(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(body, dict(request.headers)))
        reply = self.script.pop(0) if self.script else self.default
        if reply.status != 200:
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            error = {"error": {"message": "nope", "type": "test_error", "code": "test_error"}}
            return JSONResponse(error, status_code=reply.status, headers=headers)
        if reply.stall:
            await trio.sleep_forever()
        chunks = reply.chunks
        if reply.echo:
            text = "\n".join(msg["content"] for msg in json.loads(body)["messages"])
            chunks = tuple(text[i : i + 3] for i in range(0, len(text), 3))
        if not reply.stream:
            return JSONResponse(_completion("".join(chunks), reply.usage))
        return StreamingResponse(_sse(chunks, reply), media_type="text/event-stream")


def _completion(text: str, usage: dict[str, int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "cmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def _sse(chunks: tuple[str, ...], reply: Reply) -> AsyncIterator[bytes]:
    yield b": keep-alive comment\n\n"
    first = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    yield _event(first)
    for text in chunks:
        yield _event({"choices": [{"index": 0, "delta": {"content": text},
                                   "finish_reason": None}]})
    if not reply.done:
        return
    yield _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if reply.usage is not None:
        yield _event({"choices": [], "usage": reply.usage})
    yield b"data: [DONE]\n\n"
