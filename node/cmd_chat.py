"""``islandnode token``, ``islandnode ask`` and ``islandnode chat``.

``ask`` and ``chat`` are clients of the node's own OpenAI-compatible API
(``node/api.py``), exactly as any other application would be: they find it
through the control API (``/status``), authenticate with the token, and
stream the answer. ``chat`` keeps one conversation id, so MIST's placeholders
stay stable across turns; it sends only each new turn, since the node keeps
the history in the personal group state -- which is also what lets
``chat --conversation ID`` continue, on any of the owner's personal devices,
a conversation started on another. ``ask`` is one-shot and is not kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from islandrun.protocol.ids import short_id

from . import api, control
from .errors import NodeError
from .home import resolve_home


def cmd_token(args: argparse.Namespace) -> int:
    print(api.load_token(resolve_home(args.home)))
    return 0


def _stream_chat(args: argparse.Namespace, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """POST a streaming chat request to the local API; yield its SSE events."""
    home = resolve_home(args.home)
    url = control.get(home, "/status").get("api")
    if not url:
        raise NodeError("the node runs without its API; start it with --api 127.0.0.1:4080")
    headers = {"authorization": f"Bearer {api.load_token(home)}"}
    try:
        with (
            httpx.Client(base_url=url, timeout=httpx.Timeout(300, connect=5)) as client,
            client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply,
        ):
            if reply.status_code != 200:
                reply.read()
                raise NodeError(reply.json().get("error", {}).get("message", reply.text))
            for line in reply.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield json.loads(line[6:])
    except httpx.HTTPError as exc:
        raise NodeError(f"the local API at {url} failed: {exc}") from None


def _turn(args: argparse.Namespace, messages: list[dict[str, str]], conversation: str) -> str:
    body = {
        "model": args.model or "auto",
        "messages": messages,
        "stream": True,
        "islandrun": {"conversation": conversation, "island": args.peer, "tier": args.tier,
                      "dataset": args.dataset, "explain": getattr(args, "explain", False)},
    }
    answer = []
    for event in _stream_chat(args, body):
        if "error" in event:
            print()
            raise NodeError(event["error"]["message"])
        for choice in event.get("choices", []):
            text = choice.get("delta", {}).get("content")
            if text:
                answer.append(text)
                print(text, end="", flush=True)
        if "islandrun" in event:
            _report(event["islandrun"])
    return "".join(answer)


def _report(decision: dict[str, Any]) -> None:
    print()
    sanitized = ", sanitized" if decision["sanitized"] else ""
    print(f"[{decision['island_name']} {short_id(decision['island'] or '')}{sanitized}: "
          f"{decision['reason']}]", file=sys.stderr)
    for line in decision.get("explain", ()):
        print(f"  {line}", file=sys.stderr)


def cmd_ask(args: argparse.Namespace) -> int:
    _turn(args, [{"role": "user", "content": args.prompt}], "")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    conversation = args.conversation or uuid.uuid4().hex
    print(f"conversation {conversation} (empty line or Ctrl-D to leave)", file=sys.stderr)
    for line in sys.stdin:  # the node adds the history (it keeps the conversation)
        if not line.strip():
            break
        _turn(args, [{"role": "user", "content": line.rstrip("\n")}], conversation)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--peer", help="device id of the island to use (default: WAVES chooses)")
    p.add_argument("--model", help="model name the island must offer")
    p.add_argument("--dataset", metavar="NAME",
                   help="answer from this dataset, on the island that holds it")
    p.add_argument("--tier", choices=("primary", "secondary", "burstable"), default="secondary",
                   help="primary runs here; secondary here while capacity lasts; burstable rarely")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("token", help="print the local API's bearer token")
    p.set_defaults(func=cmd_token)

    p = subparsers.add_parser("ask", help="send a prompt through the mesh and stream the answer")
    p.add_argument("prompt")
    p.add_argument("--explain", action="store_true",
                   help="show every candidate island and why it won or lost")
    _common(p)
    p.set_defaults(func=cmd_ask)

    p = subparsers.add_parser("chat", help="a conversation through the mesh (one line a turn)")
    p.add_argument("--conversation", metavar="ID", help="continue this conversation id")
    _common(p)
    p.set_defaults(func=cmd_chat)
