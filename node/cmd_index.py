"""``islandnode index``: the retrieval indexes this island holds.

``add NAME DIR`` indexes a directory's text-like files into
``<home>/indexes/NAME.sqlite`` (:mod:`islandrun.node.index`); ``list`` shows
them; ``remove NAME`` deletes one (the source documents are untouched). A
running node offers its indexes as datasets and picks up changes within a
second (:mod:`islandrun.node.reload`). The documents stay on this device: requests naming the
dataset are routed here, and only answers leave.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

from . import config, embed, index
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
    p.add_argument("--embed", metavar="MODEL", help="also embed the passages with this "
                   "llama.cpp embedding model (a [[models]] name or a GGUF path): hybrid search")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="delete an index (the documents are kept)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    cfg = config.load_config(home)  # an initialised home, before reading every file
    extend = None
    if args.embed:
        embedder = embed.LlamaEmbedder(_embedding_model(cfg, args.embed))
        extend = partial(embed.store_vectors, embedder=embedder)
    report = index.build_index(ensure_home(home), args.name, args.directory.expanduser(),
                               replace=args.replace, extend=extend)
    print(f"indexed {report.documents} documents ({report.passages} passages) "
          f"as {args.name!r}; a running node offers it within a second")
    skipped = {"binary or undecodable": report.skipped_binary,
               "too large": report.skipped_large, "not text": report.skipped_type}
    if any(skipped.values()):
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in skipped.items() if n))
    if report.truncated:
        print(f"stopped at {report.documents} documents (the limit); split the directory",
              file=sys.stderr)
    return 0


def _embedding_model(cfg: config.NodeConfig, name_or_path: str) -> str:
    """The GGUF path of a configured model named ``name_or_path``, or that path."""
    for model in cfg.models:
        if model.name == name_or_path:
            return model.path
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        have = ", ".join(m.name for m in cfg.models) or "none"
        raise embed.EmbeddingError(f"--embed {name_or_path!r}: no such model (configured: "
                                   f"{have}) and no such GGUF file")
    return str(path.resolve())


def cmd_list(args: argparse.Namespace) -> int:
    found = embed.open_retrievers(resolve_home(args.home))
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
    print(f"removed index {args.name!r}; a running node stops offering it within a second")
    return 0
