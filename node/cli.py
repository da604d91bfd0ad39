"""``islandnode``: the command line of the identical node.

Core commands live here; each capability adds its commands from its own
``cmd_<name>`` module (listed in :data:`COMMAND_MODULES`), which exposes
``register(subparsers)``. Every command returns an exit code; our own errors
(:class:`IslandRunError`) are printed as one line without a traceback, since
their messages already say what to do.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from islandrun import __version__
from islandrun.protocol.errors import IslandRunError

from . import config, identity
from .home import resolve_home

#: Modules that add subcommands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "cmd_mesh",
    "cmd_chat",
    "cmd_pair",
    "cmd_models",
    "cmd_cloud",
    "cmd_sanitize",
    "cmd_route",
    "cmd_demo",
    "cmd_index",
    "cmd_conversations",
    "cmd_status",
    "cmd_doctor",
    "cmd_simulate",
)


def _home(args: argparse.Namespace) -> Path:
    return resolve_home(args.home)


def cmd_init(args: argparse.Namespace) -> int:
    home = _home(args)
    name = args.name or socket.gethostname()[:config.MAX_NAME_LEN] or "island"
    config.validate_name(name)
    key = identity.create_key(home)
    config.write_initial_config(home, name)
    ident = identity.Identity(key=key, name=name)
    print(f"Initialised device {name!r} in {home}")
    print(f"device id: {ident.device_id}")
    return 0


def load_identity(home: Path) -> identity.Identity:
    """The device identity of an initialised home (key + configured name)."""
    cfg = config.load_config(home)
    return identity.Identity(key=identity.load_key(home), name=cfg.node.name)


def cmd_id(args: argparse.Namespace) -> int:
    ident = load_identity(_home(args))
    if args.json:
        print(ident.public_json())
    else:
        print(f"name:       {ident.name}")
        print(f"device id:  {ident.device_id}")
        print(f"public key: {ident.public_key.hex()}")
    return 0


def add_group(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    list_func: Callable[[argparse.Namespace], int],
    list_help: str,
) -> argparse._SubParsersAction:
    """A command with actions (``NAME list|add|remove ...``) whose bare form,
    like ``NAME list``, lists what it manages (``--json`` for scripts)."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=list_func, json=False)
    sub = parser.add_subparsers(title="actions", metavar="ACTION")
    p = sub.add_parser("list", help=list_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=list_func)
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="islandnode",
        description="IslandRun node: your own devices as one private AI inference system.",
    )
    parser.add_argument("--version", action="version", version=f"islandnode {__version__}")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="node home directory (default: $ISLANDRUN_HOME, then the per-user data dir)",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    p = sub.add_parser("init", help="create this device's identity and config")
    p.add_argument("--name", help="device name shown to paired devices (default: host name)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("id", help="show this device's id, name and public key")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_id)
    for module in COMMAND_MODULES:
        importlib.import_module(f"islandrun.node.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except IslandRunError as exc:
        print(f"islandnode: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
