"""``islandnode route``: where would this request run, and why? (a dry run of WAVES)

What it is: the command-line way to test a routing policy before trusting it.
It reads a route snapshot file (format: ``docs/route-snapshot.md``), scores the
request's prompt with MIST, takes this device's capacity from the file or from
TIDE, and runs WAVES exactly as the node does — the same pure functions, the
same fallbacks when an agent fails — then prints the decision and its
explanation (``--json`` for machines).

What it is not: it sends nothing and writes no audit record. The prompt is never
printed; only its sensitivity, level and the types of entities MIST found.

Exit codes: 0 an island was chosen (or the request queued locally), 3 WAVES
refused the request, 1 the file or the installation is unusable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import trio

from islandrun.node.route_snapshot import Measure, RouteSnapshot, SnapshotFileError, parse_snapshot
from islandrun.node.tide import Tide
from islandrun.node.tide_capacity import CapacityReport, TideConfig
from islandrun.node.waves import Decision, decide
from islandrun.protocol.errors import IslandRunError

NAME = "route"
REFUSED = 3


class RouteCommandError(IslandRunError):
    """The route command cannot run in this installation."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        NAME,
        help="show which island WAVES would pick for a request, and why",
        description=(
            "Read a route snapshot (islands, this device's capacity, a policy and one "
            "request with its prompt), score the prompt with MIST and run WAVES as the "
            "node would. Prints the chosen island or the refusal, and for every island "
            "the constraint that removed it or its score. Sends nothing. "
            "Exit status 3 means WAVES refused the request."
        ),
    )
    parser.add_argument(
        "--snapshot", type=Path, required=True, metavar="FILE",
        help="route snapshot JSON file (see docs/route-snapshot.md)",
    )
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    snapshot = parse_snapshot(read_snapshot_file(args.snapshot))
    return execute(snapshot, sys.stdout, as_json=args.json)


def read_snapshot_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SnapshotFileError(f"{path}: cannot read the snapshot file ({err.__class__.__name__})"
                                ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SnapshotFileError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None


@dataclass(frozen=True, slots=True)
class MistView:
    """What the command shows of MIST's analysis: never the text or the values."""

    sensitivity: float | None  # None: MIST failed, WAVES falls back to 1.0
    level: str
    entity_types: tuple[str, ...]
    failure: str | None


def _mist() -> ModuleType:
    try:
        return importlib.import_module("islandrun.node.mist")
    except ImportError as err:
        raise RouteCommandError(
            f"MIST (islandrun.node.mist) cannot be imported: {err}. Reinstall islandrun; "
            "the route command needs MIST to score the prompt."
        ) from None


def analyse(prompt: str) -> MistView:
    """MIST's view of the prompt; a failing MIST becomes the fallback, as in the node."""
    mist = _mist()
    try:
        analysis = mist.analyze(prompt)
    except Exception as err:  # the node treats any MIST failure as "everything sensitive"
        return MistView(None, "unknown", (), err.__class__.__name__)
    types = tuple(sorted({entity.type.value for entity in analysis.entities}))
    return MistView(analysis.sensitivity, analysis.level.label, types, None)


async def _measure_this_device() -> CapacityReport:
    config = TideConfig()
    tide = Tide.for_this_device(config)
    await tide.sample_once()
    await trio.sleep(config.interval_s)  # CPU utilisation is measured between two samples
    await tide.sample_once()
    return tide.report()


def _local_report(snapshot: RouteSnapshot) -> CapacityReport | None:
    if snapshot.local is Measure.THIS_DEVICE:
        return trio.run(_measure_this_device)
    return snapshot.local


def route(snapshot: RouteSnapshot, view: MistView, local: CapacityReport | None) -> Decision:
    """The node's decision for the snapshot's request."""
    return decide(
        snapshot.request,
        view.sensitivity,
        snapshot.islands,
        snapshot.policy,
        local,
        cached_islands=snapshot.cached_islands,
    )


def execute(snapshot: RouteSnapshot, out: TextIO, *, as_json: bool) -> int:
    view = analyse(snapshot.prompt)
    decision = route(snapshot, view, _local_report(snapshot))
    if as_json:
        mist_part = {
            "sensitivity": view.sensitivity,
            "level": view.level,
            "entity_types": list(view.entity_types),
            "failure": view.failure,
        }
        out.write(json.dumps({"mist": mist_part, "decision": decision.to_dict()}) + "\n")
    else:
        out.write(_mist_line(view) + "\n")
        out.write("\n".join(decision.explain()) + "\n")
    return REFUSED if decision.refused else 0


def _mist_line(view: MistView) -> str:
    if view.sensitivity is None:
        return f"MIST failed ({view.failure}); WAVES treats the request as sensitivity 1.0"
    types = ", ".join(view.entity_types) or "none"
    return f"MIST: sensitivity {view.sensitivity:.2f} ({view.level}); entity types: {types}"
