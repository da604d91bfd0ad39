"""``islandnode index``: the retrieval indexes this island holds.

``add NAME DIR`` indexes a directory's text-like files into
``<home>/indexes/NAME.sqlite`` (:mod:`islandrun.node.index`); ``list`` shows
them; ``remove NAME`` deletes one (the source documents are untouched). A
running node offers its indexes as datasets when it starts, so restart it
after a change. The documents stay on this device: requests naming the
dataset are routed here, and only answers leave.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config, index
from .cli import add_group
from .home import ensure_home, resolve_home

NAME = "index"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub = add_group(
        subparsers,
        NAME,
        help="build, list or remove the retrieval indexes (datasets) this device holds",
        description=(
            "Index local documents so requests naming the dataset run here, with the "
            "documents never leaving this device. Restart the node to apply a change."
        ),
        list_func=cmd_list,
        list_help="show the indexes",
    )
    p = sub.add_parser("add", help="index the text files of a directory as dataset NAME")
    p.add_argument("name", metavar="NAME", help="dataset name requests use")
    p.add_argument("directory", type=Path, metavar="DIR", help="directory of documents")
    p.add_argument("--replace", action="store_true", help="rebuild an existing index")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="delete an index (the documents are kept)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    config.load_config(home)  # an initialised home, before reading every file
    report = index.build_index(ensure_home(home), args.name, args.directory.expanduser(),
                               replace=args.replace)
    print(f"indexed {report.documents} documents ({report.passages} passages) "
          f"as {args.name!r}; restart the node to offer it")
    skipped = {"binary or undecodable": report.skipped_binary,
               "too large": report.skipped_large, "not text": report.skipped_type}
    if any(skipped.values()):
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in skipped.items() if n))
    if report.truncated:
        print(f"stopped at {report.documents} documents (the limit); split the directory",
              file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    found = index.open_indexes(resolve_home(args.home))
    for problem in found.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"name": i.name, "kind": i.info().kind, "documents": i.documents,
                           "passages": i.passages, "path": str(i.path)}
                          for i in found.indexes.values()], indent=2))
        return 0
    if not found.indexes:
        print("no indexes; build one with `islandnode index add NAME DIR`")
    for i in found.indexes.values():
        print(f"{i.name}  {i.info().kind}  documents={i.documents} passages={i.passages}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    index.remove_index(resolve_home(args.home), args.name)
    print(f"removed index {args.name!r}; restart the node to stop offering it")
    return 0
