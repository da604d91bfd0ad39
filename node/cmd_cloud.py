"""``islandnode cloud``: the cloud islands HORIZON may call, and what they cost.

``add NAME`` writes a ``[[cloud]]`` entry (URL, model, trust, privacy,
prices per 1M tokens, the *name* of the environment variable holding the API
key, spend ceilings); ``list`` shows them with today's and this month's
spend against the ceilings; ``remove NAME`` drops one (its spend history
stays in ``spend.json``).

Every change goes through :func:`~islandrun.node.config.update_config`:
validated before it is written, atomically, mode 0600. The API key itself is
never asked for, stored or printed; ``list`` only says whether the variable
is set in this shell. A running node applies a change within seconds and
shares it with the owner's other personal devices (``groupconfig``: the
variable's name travels, never its value).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from typing import Any

from . import config
from .cli import add_group
from .errors import NodeError
from .home import resolve_home
from .horizon_budget import BudgetLedger, load_ledger

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
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="remove a cloud island")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
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

    cfg = config.update_config(resolve_home(args.home), append)
    print(f"added cloud island {args.name!r} ({cfg.cloud[-1].device_id}); a running node "
          "routes to it within seconds, and your other personal devices get it too")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        print(f"note: ${args.api_key_env} is not set in this shell; the node needs it set "
              "when it runs")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    config.remove_entry(resolve_home(args.home), "cloud", args.name, "cloud island")
    print(f"removed cloud island {args.name!r}; a running node stops routing to it within "
          "seconds, on your other personal devices too")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    clouds = config.load_config(home).cloud
    ledger, now = load_ledger(home), time.time()
    rows = [_row(cloud, ledger, now) for cloud in clouds]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no cloud islands; add one with `islandnode cloud add NAME --url URL --model M`")
    for row in rows:
        key = (f"${row['api_key_env']} ({'set' if row['key_set'] else 'NOT SET'})"
               if row["api_key_env"] else "none")
        print(f"{row['name']}  {row['url']}  model={row['model']}  trust={row['trust']:g} "
              f"privacy={row['privacy']:g}  per 1M tokens: in {row['price_in']:g} "
              f"out {row['price_out']:g}")
        print(f"    key: {key}  today: {_of(row['spent_today'], row['daily_budget'])}  "
              f"this month: {_of(row['spent_month'], row['monthly_budget'])}")
    return 0


def _row(cloud: config.CloudSection, ledger: BudgetLedger, now: float) -> dict[str, Any]:
    spend = ledger.spent(cloud.name, now)
    return asdict(cloud) | {
        "device_id": cloud.device_id,
        "key_set": bool(cloud.api_key_env and os.environ.get(cloud.api_key_env)),
        "spent_today": round(spend.day_spent, 6),
        "spent_month": round(spend.month_spent, 6),
    }


def _of(spent: float, ceiling: float | None) -> str:
    return f"{spent:.4f}" + (f" of {ceiling:g}" if ceiling is not None else " (no ceiling)")
