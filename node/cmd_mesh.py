"""Mesh commands: ``islandnode run``, ``islandnode peers``, ``islandnode ask``.

``run`` runs the node in the foreground; the others talk to it over the
control API (``node/control.py``) and say so clearly when no node runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import short_id
from islandrun.transports.ble_radio_air import sim_path

from . import control
from .cli import load_identity
from .cmd_status import age_text
from .config import NodeConfig
from .errors import NodeError
from .executor import EchoExecutor, Executor
from .home import resolve_home
from .model_files import check_model_files
from .runtime import RunOptions, run_node
from .shore import Shore
from .transports_setup import ble_choice


def cmd_run(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    ident = load_identity(home)
    from .config import load_config

    cfg = load_config(home)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("libp2p", "multiaddr", "zeroconf", "hypercorn", "async_service"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    options = RunOptions(
        listen=tuple(args.listen or ()),
        bootstrap=tuple(args.bootstrap or ()),
        mdns=False if args.no_mdns else None,
        executor=_executor(args, cfg),
        fixed_load=args.fixed_load,
        fixed_battery=args.fixed_battery,
        ble=ble_choice(cfg.ble, enabled=args.ble, required=args.ble_required,
                       adapter=args.ble_adapter),
        api=None if args.api == "off" else args.api,
        api_remote=args.api_remote,
    )
    try:
        trio.run(run_node, home, ident, cfg, options)
    except BaseExceptionGroup as group:  # one error of ours from inside a nursery: say it
        ours, rest = group.split(IslandRunError)
        if ours is None or rest is not None:
            raise
        raise _first_leaf(ours) from None
    print("node stopped", file=sys.stderr)
    return 0


def _executor(args: argparse.Namespace, cfg: NodeConfig) -> Executor:
    """SHORE over the configured models, or the echo executor (for tests, or
    when no model is configured)."""
    choice = args.executor or ("llama" if cfg.models else "echo")
    if choice == "echo":
        return EchoExecutor(model=args.echo_model, delay=args.echo_delay)
    if not cfg.models:
        raise NodeError("--executor llama needs a model: run `islandnode models add PATH` "
                        "or `islandnode models add-demo`")
    check_model_files(cfg)  # a missing file is a config error now, not at the first request
    return Shore(cfg.models)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a fraction from 0 to 1, e.g. 0.15")
    return value


def _ble_adapter(text: str) -> str:
    if text != "bleak" and not sim_path(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected bleak or sim:PATH")
    return text


def cmd_peers(args: argparse.Namespace) -> int:
    peers: list[dict[str, Any]] = control.get(resolve_home(args.home), "/peers")
    if args.json:
        print(json.dumps(peers, indent=2))
        return 0
    table = Table("island", "id", "liveness", "capacity", "battery", "models", "datasets",
                  "last seen")
    for p in peers:
        battery = "-" if p["battery_pct"] is None else f"{p['battery_pct']:.0f}%"
        if p["charging"]:
            battery += " ⚡"
        table.add_row(p["name"], short_id(p["device_id"]), p["liveness"],
                      f"{p['capacity']:.0%}", battery, ", ".join(p["models"]) or "-",
                      ", ".join(p["datasets"]) or "-", age_text(time.time() - p["last_seen"]))
    empty = "no islands yet (pair devices or list them in [mesh].allow)"
    Console().print(table if peers else empty)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the node in the foreground (Ctrl-C stops it)")
    p.add_argument("--listen", action="append", metavar="MULTIADDR",
                   help="libp2p listen address, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable)")
    p.add_argument("--bootstrap", action="append", metavar="MULTIADDR",
                   help="peer to dial at start, /ip4/A/tcp/P/p2p/ID (repeatable)")
    p.add_argument("--no-mdns", action="store_true", help="do not use mDNS on the LAN")
    p.add_argument("--api", default="127.0.0.1:4080", metavar="HOST:PORT",
                   help="OpenAI-compatible API address (default 127.0.0.1:4080; 'off' disables)")
    p.add_argument("--api-remote", action="store_true",
                   help="allow the API on a non-loopback address (still token-protected)")
    p.add_argument("--executor", choices=("echo", "llama"),
                   help="what runs requests here: llama (SHORE, the default when [[models]] "
                        "are configured) or echo (the default otherwise; for tests)")
    p.add_argument("--echo-model", default="echo", metavar="NAME",
                   help="(testing) model name the built-in echo executor advertises")
    p.add_argument("--echo-delay", type=float, default=0.0, metavar="SECONDS",
                   help="(testing) pause of the built-in echo executor between words")
    p.add_argument("--fixed-load", type=float, metavar="FRACTION",
                   help="(testing) report this CPU and memory load instead of measuring it")
    p.add_argument("--fixed-battery", type=_fraction, metavar="FRACTION",
                   help="(testing) report this battery charge, not charging, e.g. 0.15")
    p.add_argument("--ble", action="store_true",
                   help="also run the Bluetooth LE mesh ([ble] in config.toml); without an "
                        "adapter the node warns and runs on the LAN only")
    p.add_argument("--ble-required", action="store_true",
                   help="like --ble, but refuse to start without a Bluetooth adapter")
    p.add_argument("--ble-adapter", type=_ble_adapter, metavar="bleak|sim:PATH",
                   help="like --ble, on this radio: bleak (the host's adapter) or sim:PATH, "
                        "a shared radio model at the Unix socket PATH (tests and demos; "
                        "[ble] address names this device in it)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("peers", help="list islands: liveness, capacity, battery, models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_peers)
