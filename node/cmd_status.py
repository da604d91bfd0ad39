"""``islandnode status``: a live view of the local node and its islands.

One screen, refreshed in place: this node (capacity, in-flight work,
battery, models, datasets, API), every island it knows (tier from the
owner's pairing records, liveness, capacity, battery, models, datasets,
last seen), the cloud islands configured here, and the most recent routing
decisions from the audit log (level, entity *types*, island, whether MIST
sanitized, why). Prompt text never appears: the audit log does not hold it.

``--json`` prints one snapshot for scripts. The live view redraws every
``--interval`` seconds (at least 0.2) until Ctrl-C (exit 0) or ``--count``
refreshes; if the node stops meanwhile it says so and keeps looking.

The snapshot and the rendering are pure (:func:`snapshot`, :func:`render`,
time passed in); :func:`gather` does the I/O (the control API, the config
and the tail of ``audit.jsonl``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from islandrun.protocol.ids import short_id

from . import control
from .audit import AUDIT_FILE
from .config import load_config
from .errors import NodeNotRunning
from .home import resolve_home

#: Decisions shown (the newest ones).
RECENT = 8
#: Bytes read from the end of the audit log to find them (records are ~400 B).
AUDIT_TAIL_BYTES = 64 * 1024
#: The fields of an audit record the view shows; none holds text or values.
DECISION_FIELDS = ("time", "level", "entity_types", "island_name", "tier", "sanitized",
                   "refused", "queued", "reason", "fallbacks")
MIN_INTERVAL = 0.2


def recent_decisions(home: Path, limit: int = RECENT) -> list[dict[str, Any]]:
    """The last ``limit`` audit records (only :data:`DECISION_FIELDS`), oldest first."""
    try:
        with (home / AUDIT_FILE).open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - AUDIT_TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return []
    records = []
    for line in tail.splitlines()[-limit:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut
        if isinstance(record, dict):
            records.append({k: record.get(k) for k in DECISION_FIELDS})
    return records


def _tier(device_id: str, pairs: dict[str, dict[str, Any]], allow: Iterable[str]) -> str:
    record = pairs.get(device_id)
    if record is not None and not record.get("revoked_at"):
        return str(record["tier"])
    return "personal (allow)" if device_id in allow else "unpaired"


def snapshot(
    status: dict[str, Any],
    peers: list[dict[str, Any]],
    pairs: list[dict[str, Any]],
    *,
    allow: Iterable[str],
    clouds: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
) -> dict[str, Any]:
    """One status snapshot (what ``--json`` prints) from the node's answers."""
    by_id = {p["device_id"]: p for p in pairs}
    allowed = set(allow)
    islands = [p | {"tier": _tier(p["device_id"], by_id, allowed)} for p in peers]
    return {"node": status, "islands": islands, "clouds": clouds, "decisions": decisions}


def gather(home: Path) -> dict[str, Any]:
    """Ask the node running for ``home``; :class:`NodeNotRunning` if none does."""
    status = control.get(home, "/status", timeout=3)
    cfg = load_config(home)
    clouds = [{"name": c.name, "device_id": c.device_id, "model": c.model, "trust": c.trust,
               "privacy": c.privacy} for c in cfg.cloud]
    return snapshot(
        status, control.get(home, "/peers", timeout=3), control.get(home, "/pair/list", timeout=3),
        allow=cfg.mesh.allow, clouds=clouds, decisions=recent_decisions(home),
    )


def _battery(pct: float | None, charging: bool | None) -> str:
    if pct is None:
        return "mains"
    return f"{pct:.0f}%" + (" charging" if charging else "")


def age_text(seconds: float) -> str:
    """``"12s ago"`` / ``"3m ago"`` for an age in seconds (negative counts as 0)."""
    seconds = max(0.0, seconds)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _names(items: list[str]) -> str:
    return escape(", ".join(items)) or "-"


def _node_line(node: dict[str, Any]) -> Text:
    return Text.from_markup(
        f"[bold]{escape(node['name'])}[/bold] {short_id(node['device_id'])}  "
        f"v{escape(str(node.get('version', '?')))}  capacity {node['capacity']:.0%}  "
        f"in flight {node['in_flight']}  battery "
        f"{_battery(node['battery_pct'], node.get('charging'))}\n"
        f"models: {_names(node['models'])}  datasets: {_names(node.get('datasets', []))}  "
        f"API: {escape(str(node.get('api') or 'off'))}"
    )


def _islands_table(snap: dict[str, Any], now: float) -> Table:
    table = Table("island", "id", "tier", "liveness", "capacity", "battery", "models",
                  "datasets", "last seen", title="islands")
    for p in snap["islands"]:
        table.add_row(escape(p["name"]), short_id(p["device_id"]), escape(p["tier"]),
                      p["liveness"], f"{p['capacity']:.0%}",
                      _battery(p["battery_pct"], p["charging"]), _names(p["models"]),
                      _names(p["datasets"]), age_text(now - p["last_seen"]))
    for c in snap["clouds"]:
        table.add_row(escape(c["name"]), escape(c["device_id"]), "cloud", "configured", "-",
                      "-", escape(c["model"]), "-", "-")
    return table


def _decisions_table(decisions: list[dict[str, Any]]) -> Table:
    table = Table("time", "level", "entities", "island", "tier", "sanitized", "why",
                  title="recent decisions (audit log)")
    for d in decisions:
        where = "refused" if d["refused"] else escape(str(d["island_name"]))
        table.add_row(str(d["time"] or "")[11:19], escape(str(d["level"])),
                      _names(d["entity_types"] or []), where, escape(str(d["tier"])),
                      "yes" if d["sanitized"] else "no", escape(str(d["reason"] or "")))
    return table


def render(snap: dict[str, Any], now: float) -> RenderableType:
    """The live view of one snapshot; ``now`` (epoch seconds) ages the islands."""
    parts: list[RenderableType] = [_node_line(snap["node"])]
    if snap["islands"] or snap["clouds"]:
        parts.append(_islands_table(snap, now))
    else:
        parts.append(Text("no islands yet (pair devices: `islandnode pair invite`)"))
    parts.append(_decisions_table(snap["decisions"]) if snap["decisions"]
                 else Text("no routing decisions yet"))
    return Group(*parts)


def _view(home: Path) -> RenderableType:
    try:
        return render(gather(home), time.time())
    except NodeNotRunning as exc:
        return Text(f"{exc} (still looking; Ctrl-C quits)")


def run(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    first = gather(home)  # no node: NodeNotRunning says how to start one
    if args.json:
        print(json.dumps(first, indent=2))
        return 0
    interval = max(MIN_INTERVAL, args.interval)
    refreshes = range(args.count) if args.count else itertools.count()
    try:
        with Live(render(first, time.time()), console=Console(), auto_refresh=False) as live:
            for _ in refreshes:
                time.sleep(interval)
                live.update(_view(home), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status", help="live view of this node, its islands and recent decisions",
        description="A live view of the running node and its islands: liveness, tier, "
                    "capacity, battery, models, datasets and recent routing decisions "
                    "(from the audit log; never prompt text). Ctrl-C quits.",
    )
    p.add_argument("--json", action="store_true", help="print one snapshot as JSON and exit")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help=f"seconds between refreshes (default 1, at least {MIN_INTERVAL})")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="stop after N refreshes (default: until Ctrl-C)")
    p.set_defaults(func=run)
