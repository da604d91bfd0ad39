"""``islandnode cloud``: the cloud islands HORIZON may call, and what they cost.

``add NAME`` writes a ``[[cloud]]`` entry (URL, model, trust, privacy,
prices per 1M tokens, the *name* of the environment variable holding the API
key, spend ceilings); ``list`` shows them with today's and this month's
spend against the ceilings and where each key comes from; ``remove NAME``
drops one (its spend history stays in ``spend.json``).

Every change goes through :func:`~islandrun.node.config.update_config`:
validated before it is written, atomically, mode 0600. The API key itself is
never asked for, stored in the config or printed. A running node applies a
change within seconds and shares it with the owner's other personal devices
(``groupconfig``: the variable's name travels, not its value).

Only if the owner opts in -- ``add ... --sync-key`` or ``sync-key NAME`` --
does the key itself travel: read from the variable in this shell and handed
to the running node over its control socket, which shares it with the
personal devices only (``groupsecrets``, which also says what that risks);
``unsync-key NAME`` takes it out again.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import config, control
from .cli import add_group
from .errors import NodeError, NodeNotRunning
from .groupsecrets import key_sources, synced_clouds
from .groupstate_store import load_state, state_path
from .home import resolve_home
from .horizon_budget import BudgetLedger, load_ledger
from .identity import Identity, load_key

NAME = "cloud"


class CloudCommandError(NodeError):
    """A ``cloud`` command cannot do what it was asked."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub = add_group(
        subparsers,
        NAME,
        help="list, add or remove cloud islands (OpenAI-compatible APIs)",
        description=(
            "Manage the [[cloud]] entries of config.toml: OpenAI-compatible APIs (a hosted "
            "provider, vLLM, Ollama, llama.cpp's server) WAVES may route requests to, always "
            "through MIST sanitisation when trust < 1. A running node applies changes within "
            "seconds and shares them with your other personal devices (never the API key)."
        ),
        list_func=cmd_list,
        list_help="show cloud islands with spend against their budgets",
    )
    p = sub.add_parser("add", help="add a cloud island")
    p.add_argument("name", metavar="NAME", help="island name (letters, digits, . _ -)")
    p.add_argument("--url", required=True,
                   help="API base URL; requests go to URL/chat/completions")
    p.add_argument("--model", required=True, help="model name the API expects")
    p.add_argument("--trust", type=float, default=config.CLOUD_TRUST,
                   help="your trust in the provider, 0-1 (%(default)s: the cloud tier)")
    p.add_argument("--privacy", type=float, default=config.CLOUD_PRIVACY,
                   help="highest sensitivity it may receive, 0-1 (%(default)s)")
    p.add_argument("--price-in", type=float, default=0.0,
                   help="price per 1M prompt tokens (%(default)s)")
    p.add_argument("--price-out", type=float, default=0.0,
                   help="price per 1M answer tokens (%(default)s)")
    p.add_argument("--api-key-env", default="", metavar="VAR",
                   help="environment variable holding the API key (the key is never stored)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for a connection or the next piece (%(default)s)")
    p.add_argument("--daily-budget", type=float, help="spend ceiling per day (default: none)")
    p.add_argument("--monthly-budget", type=float, help="spend ceiling per month (default: none)")
    p.add_argument("--sync-key", action="store_true", help=SYNC_HELP)
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="remove a cloud island (and its shared key)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)
    p = sub.add_parser("sync-key", help="share an island's API key with your personal devices",
                       description=SYNC_HELP)
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_sync_key)
    p = sub.add_parser("unsync-key", help="stop sharing an island's API key",
                       description="Remove the shared key from every personal device (each "
                       "drops it when it next syncs). A device that had it may have kept a "
                       "copy: rotate the key if one is lost or revoked.")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_unsync_key)


SYNC_HELP = (
    "share the API key (the value of its api_key_env variable in this shell) with your "
    "personal devices through the running node, so they can call this island without the "
    "variable; friends never get it, and a device you later lose or revoke keeps it (rotate "
    "the key then)"
)


def cmd_add(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    if args.sync_key:  # check before writing anything
        _key_in_shell(args.name, args.api_key_env)
        _running(home, "--sync-key hands the key to the running node")
    entry = {
        "name": args.name, "url": args.url, "model": args.model, "trust": args.trust,
        "privacy": args.privacy, "price_in": args.price_in, "price_out": args.price_out,
        "api_key_env": args.api_key_env, "timeout": args.timeout,
        "daily_budget": args.daily_budget, "monthly_budget": args.monthly_budget,
    }

    def append(data: dict[str, Any]) -> None:
        entries = data.setdefault("cloud", [])
        if any(e.get("name") == args.name for e in entries):
            raise CloudCommandError(f"a cloud island named {args.name!r} exists; remove it "
                                    "first or pick another name")
        entries.append({k: v for k, v in entry.items() if v is not None and v != ""})

    cfg = config.update_config(home, append)
    print(f"added cloud island {args.name!r} ({cfg.cloud[-1].device_id}); a running node "
          "routes to it within seconds, and your other personal devices get it too")
    if args.sync_key:
        _share(home, cfg.cloud[-1])
    elif args.api_key_env and not os.environ.get(args.api_key_env):
        print(f"note: ${args.api_key_env} is not set in this shell; the node needs it set "
              "when it runs")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    config.remove_entry(resolve_home(args.home), "cloud", args.name, "cloud island")
    print(f"removed cloud island {args.name!r}; a running node stops routing to it within "
          "seconds, on your other personal devices too, and drops its shared API key if any")
    return 0


def cmd_sync_key(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    _share(home, _find(home, args.name))
    return 0


def cmd_unsync_key(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    _running(home, "the running node takes the key out of the group")
    done = control.post(home, "/cloud/unsync-key", {"name": args.name})
    if not done["removed"]:
        raise CloudCommandError(f"no API key of {args.name!r} is shared with your devices")
    print(f"the API key of {args.name!r} is no longer shared: each personal device drops it "
          "when it next syncs. Devices that had it may keep a copy; if one is lost or "
          "revoked, rotate the key at the provider")
    return 0


def _find(home: Path, name: str) -> config.CloudSection:
    clouds = config.load_config(home).cloud
    for cloud in clouds:
        if cloud.name == name:
            return cloud
    have = ", ".join(c.name for c in clouds) or "none"
    raise CloudCommandError(f"no cloud island named {name!r} (configured: {have})")


def _key_in_shell(name: str, var: str) -> str:
    if not var:
        raise CloudCommandError(f"cloud island {name!r} has no API key variable; give it one "
                                "with --api-key-env VAR")
    key = os.environ.get(var, "")
    if not key:
        raise CloudCommandError(f"${var} is not set in this shell; set it to the key of "
                                f"{name!r} and run the command again")
    return key


def _running(home: Path, why: str) -> None:
    try:
        control.get(home, "/status")
    except NodeNotRunning:
        raise CloudCommandError(f"no node is running for {home}; {why}: start it "
                                f"(`islandnode --home {home} run`) and run this command "
                                "again once it runs") from None


def _share(home: Path, cloud: config.CloudSection) -> None:
    """Hand the key in ``cloud``'s variable (this shell's) to the running node."""
    key = _key_in_shell(cloud.name, cloud.api_key_env)
    _running(home, "it is the node that shares the key")
    control.post(home, "/cloud/sync-key", {"name": cloud.name, "key": key})
    print(f"the API key of {cloud.name!r} (from ${cloud.api_key_env}) is shared with your "
          "personal devices (never with friends); a device that lacks the variable uses it. "
          "If you later lose or revoke a device, rotate the key at the provider")


def cmd_list(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    clouds = config.load_config(home).cloud
    ledger, now = load_ledger(home), time.time()
    sources = _key_sources(home, clouds)
    rows = [_row(cloud, ledger, now) | {"key_source": sources[cloud.name]} for cloud in clouds]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no cloud islands; add one with `islandnode cloud add NAME --url URL --model M`")
    for row in rows:
        source = row["key_source"]
        key = source.upper() if source == "missing" else source
        key += f" (${row['api_key_env']})" if row["api_key_env"] else ""
        print(f"{row['name']}  {row['url']}  model={row['model']}  trust={row['trust']:g} "
              f"privacy={row['privacy']:g}  per 1M tokens: in {row['price_in']:g} "
              f"out {row['price_out']:g}")
        print(f"    key: {key}  today: {_of(row['spent_today'], row['daily_budget'])}  "
              f"this month: {_of(row['spent_month'], row['monthly_budget'])}")
    return 0


def _key_sources(home: Path, clouds: tuple[config.CloudSection, ...]) -> dict[str, str]:
    """Where each key comes from: as the running node sees it, else (no node, or a
    cloud the node has not loaded yet: it re-reads the config within a second) this
    shell and the stored group state (read only: only the node writes it)."""
    try:
        seen = dict(control.get(home, "/cloud/keys"))
    except NodeNotRunning:
        seen = {}
    unseen = tuple(c for c in clouds if c.name not in seen)
    if not unseen:
        return seen
    synced: set[str] = set()
    if state_path(home).exists():
        key = load_key(home)
        synced = synced_clouds(load_state(home, Identity(key=key, name="").device_id, key))
    return seen | key_sources(unseen, synced, os.environ)


def _row(cloud: config.CloudSection, ledger: BudgetLedger, now: float) -> dict[str, Any]:
    spend = ledger.spent(cloud.name, now)
    return asdict(cloud) | {
        "device_id": cloud.device_id,
        "spent_today": round(spend.day_spent, 6),
        "spent_month": round(spend.month_spent, 6),
    }


def _of(spent: float, ceiling: float | None) -> str:
    return f"{spent:.4f}" + (f" of {ceiling:g}" if ceiling is not None else " (no ceiling)")
