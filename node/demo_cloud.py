"""A small OpenAI-compatible server: real HTTP on 127.0.0.1, scripted replies, requests recorded.

It plays the cloud island in ``islandnode demo`` (as its own process, see
:func:`main`) and in tests (in-process, ``await nursery.start(cloud.serve)``;
``cloud.url`` is the base URL, ``.../v1``). Every request's raw body bytes
and headers are recorded, so the demo and tests can show exactly what left
the node. Replies follow ``script`` (one :class:`Reply` per request, in
order), then ``default``. ``Reply(echo=True)`` streams back the text of all
the messages it was sent, in 3-character chunks, so placeholders arrive
split across chunks.

What this is not: a model. It never calls out, and it listens on loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    def __init__(
        self, *script: Reply, default: Reply = Reply(), record: Path | None = None,
        record_headers: Path | None = None,
    ) -> None:
        self.script = list(script)
        self.default = default
        self.received: list[Received] = []
        #: If set, each request body is also appended here as one JSON line (0600).
        self.record = record
        #: If set, each request's headers are appended here as one JSON object a line (0600).
        self.record_headers = record_headers
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
        if self.record is not None:
            _append(self.record, body)
        if self.record_headers is not None:
            _append(self.record_headers, json.dumps(dict(request.headers)).encode())
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


def _append(path: Path, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, body.replace(b"\n", b" ") + b"\n")
    finally:
        os.close(fd)


def read_record(path: Path) -> list[dict[str, Any]]:
    """The request bodies (or headers) a :class:`FakeCloud` recorded at ``path``, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def _serve_until_stopped(cloud: FakeCloud, ready: Path) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cloud.serve)
        ready.write_text(cloud.url)  # the parent waits for this file
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                return


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m islandrun.node.demo_cloud --record F --ready F``: echo until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, required=True, help="append request bodies here")
    parser.add_argument("--ready", type=Path, required=True, help="write the base URL here")
    parser.add_argument("--record-headers", type=Path, help="append request headers here")
    args = parser.parse_args(argv)
    cloud = FakeCloud(default=Reply(echo=True), record=args.record,
                      record_headers=args.record_headers)
    trio.run(_serve_until_stopped, cloud, args.ready)


if __name__ == "__main__":
    main()
