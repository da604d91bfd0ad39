"""``islandnode models``: the GGUF models SHORE runs on this device.

``list`` shows the ``[[models]]`` entries of the config; ``add PATH``
registers a GGUF file (checked to be one); ``remove NAME`` drops an entry
(the file stays); ``add-demo`` generates the tiny random-weight test model
(:mod:`islandrun.node.tinymodel`) into the node home and registers it, so
the mesh runs real llama.cpp with no download.

Every change rewrites ``config.toml`` through
:func:`~islandrun.node.config.update_config`: validated before it is
written, atomically, mode 0600. A running node whose models run on SHORE
picks the change up within a second (:mod:`islandrun.node.reload`); one
started without models (the echo executor) needs a restart.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import config, tinymodel
from .cli import add_group
from .errors import NodeError
from .home import ensure_home, resolve_home
from .model_files import gguf_problem

NAME = "models"
DEMO_DIR = "models"


class ModelsError(NodeError):
    """A ``models`` command cannot do what it was asked."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub = add_group(
        subparsers,
        NAME,
        help="list, add or remove the GGUF models this device runs",
        description=(
            "Manage the [[models]] entries of config.toml: the GGUF files SHORE runs with "
            "llama.cpp and adverts offer to paired devices. Restart the node to apply."
        ),
        list_func=cmd_list,
        list_help="show the configured models",
    )
    p = sub.add_parser("add", help="register a GGUF model file")
    p.add_argument("path", type=Path, metavar="PATH", help="the .gguf file")
    p.add_argument("--name", help="name requests use (default: the file name without .gguf)")
    _add_tuning(p)
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="unregister a model (the file is kept)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)
    p = sub.add_parser("add-demo", help="generate the tiny random-weight test model and add it")
    p.add_argument("--name", default=tinymodel.DEMO_MODEL_NAME, help="model name (%(default)s)")
    p.add_argument("--seed", type=int, default=0, help="weights seed (%(default)s)")
    p.add_argument("--vocab", type=Path, metavar="FILE",
                   help=f"a {tinymodel.VOCAB_FILE} to use instead of fetching the "
                        "llama-cpp-python source distribution")
    _add_tuning(p)
    p.set_defaults(func=cmd_add_demo)


def _add_tuning(p: argparse.ArgumentParser) -> None:
    defaults = config.ModelSection(name="-", path="-")
    p.add_argument("--context", type=int, default=defaults.context,
                   help="context window in tokens (%(default)s)")
    p.add_argument("--threads", type=int, default=defaults.threads,
                   help="CPU threads, 0 = llama.cpp's choice (%(default)s)")
    p.add_argument("--gpu-layers", type=int, default=defaults.gpu_layers,
                   help="layers offloaded to a GPU, -1 = all (%(default)s)")


def cmd_list(args: argparse.Namespace) -> int:
    models = config.load_config(resolve_home(args.home)).models
    if args.json:
        print(json.dumps([asdict(s) | {"exists": Path(s.path).is_file()} for s in models],
                         indent=2))
        return 0
    if not models:
        print("no models; add one with `islandnode models add PATH` "
              "or `islandnode models add-demo`")
    for s in models:
        missing = "" if Path(s.path).is_file() else "  (file missing!)"
        print(f"{s.name}  context={s.context} threads={s.threads} "
              f"gpu_layers={s.gpu_layers}  {s.path}{missing}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    path = args.path.expanduser().resolve()
    _check_gguf(path)
    name = args.name or path.name.removesuffix(".gguf")
    add_model(resolve_home(args.home), _entry(args, name, path))
    print(f"added model {name!r} ({path}); a running node with models offers it within "
          "a second (one started without models: restart it)")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    config.remove_entry(resolve_home(args.home), "models", args.name, "model")
    print(f"removed model {args.name!r}; a running node stops offering it within a second")
    return 0


def cmd_add_demo(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    config.load_config(home)  # an initialised home, before minutes of work
    path = ensure_home(home) / DEMO_DIR / tinymodel.DEMO_MODEL_FILE
    if not path.is_file():
        print("generating the tiny test model (random weights, real tokenizer)...")
        tinymodel.make_tiny_model(path, seed=args.seed, vocab=args.vocab)
    add_model(home, _entry(args, args.name, path))
    print(f"added demo model {args.name!r} ({path}); it answers in gibberish, "
          "but through real llama.cpp")
    return 0


def _entry(args: argparse.Namespace, name: str, path: Path) -> config.ModelSection:
    return config.ModelSection(name=name, path=str(path), context=args.context,
                               threads=args.threads, gpu_layers=args.gpu_layers)


def add_model(home: Path, entry: config.ModelSection) -> config.NodeConfig:
    """Append ``entry`` to ``[[models]]``; its name must be new."""

    def append(data: dict[str, Any]) -> None:
        entries = data.setdefault("models", [])
        if any(e.get("name") == entry.name for e in entries):
            raise ModelsError(f"a model named {entry.name!r} exists; remove it first "
                              f"or pick another --name")
        entries.append(asdict(entry))

    return config.update_config(home, append)


def _check_gguf(path: Path) -> None:
    problem = gguf_problem(path)
    if problem is not None:
        raise ModelsError(problem)
