"""``islandnode conversations``: the conversations of the owner's personal group.

Conversations live in the personal group state (``groupnode``), synced
between the owner's own devices, so every device lists the same ones.
``list`` shows them (id, turns, last activity, the devices that added
turns); ``show ID`` prints one (an unambiguous prefix of the id will do);
``forget ID`` removes it, and its placeholder vault, from every personal
device (a tombstone that syncs; the id can never be used again).

These are clients of the running node's control API.
"""

from __future__ import annotations

import argparse
import datetime
import json

from . import control
from .cli import add_group
from .home import resolve_home

NAME = "conversations"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub = add_group(
        subparsers,
        NAME,
        help="list, show or forget conversations (shared by your personal devices)",
        description=(
            "Conversations are kept in the personal group state and synced, encrypted end "
            "to end, between your own (personal) devices only. `forget` removes one from "
            "every personal device, with its placeholder vault."
        ),
        list_func=cmd_list,
        list_help="list conversations, most recent first",
    )
    p = sub.add_parser("show", help="print a conversation")
    p.add_argument("id", metavar="ID", help="conversation id (or an unambiguous prefix)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("forget", help="forget a conversation on every personal device")
    p.add_argument("id", metavar="ID", help="conversation id (or an unambiguous prefix)")
    p.set_defaults(func=cmd_forget)


def cmd_list(args: argparse.Namespace) -> int:
    rows = control.get(resolve_home(args.home), "/conversations")
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no conversations yet (start one with `islandnode chat`)")
    for row in rows:
        when = datetime.datetime.fromtimestamp(row["updated"], datetime.UTC)
        print(f"{row['id']}  {row['turns']:>4} turns  {when:%Y-%m-%d %H:%M} UTC  "
              f"{', '.join(row['devices'])}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    found = control.post(resolve_home(args.home), "/conversations/show", {"id": args.id})
    if args.json:
        print(json.dumps(found))
        return 0
    print(f"conversation {found['id']}")
    for message in found["messages"]:
        print(f"{message['role']}: {message['content']}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    found = control.post(resolve_home(args.home), "/conversations/forget", {"id": args.id})
    print(f"forgot conversation {found['id']} (your other personal devices follow at their "
          "next sync)")
    return 0
