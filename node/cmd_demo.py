"""``islandnode demo``: a local mesh of real nodes running the paper's healthcare workload.

The README's first command ends here. In a throwaway directory it:

1. generates the tiny GGUF model (once; kept in the per-user cache);
2. sets up four devices with the users' own commands -- a busy laptop, a
   phone on low battery, a home server holding a RAG index of clinic notes,
   and a friend's phone -- each a real ``islandnode run`` process on
   127.0.0.1 running the tiny model through llama.cpp, plus a cloud island
   played by a local OpenAI-compatible server (:mod:`.demo_cloud`);
3. pairs them with one-time invite codes (``pair invite`` / ``pair join``):
   laptop, phone and server as personal devices, the friend as a friend;
4. sends the healthcare workload (:mod:`.demo_workload`) through the
   laptop's OpenAI-compatible API and prints, per request, the island it
   ran on, WAVES's reason and what MIST sanitized (entity types and counts,
   never values), then a summary table and the privacy check: sensitive
   requests stayed on personal islands and no planted value reached the cloud;
5. stops every process and says whether all stopped cleanly.

``--short`` (or ``ISLANDRUN_DEMO_SHORT=1``) runs four requests, for CI.
``--dir`` keeps the homes, logs and what the cloud received; ``--report``
writes the rows as JSON. Exit 0 only if everything held and stopped cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import api, tinymodel
from .cmd_status import gather, render
from .demo_cloud import read_record
from .demo_mesh import CLOUD_NAME, DEVICES, PAIRINGS, DemoMesh
from .demo_workload import (
    CLOUD_MODEL,
    DATASET,
    DOCUMENTS,
    SHORT,
    WORKLOAD,
    DemoRequest,
    Outcome,
    outcome,
    privacy_problems,
    summary,
)

#: Answer length per request: the tiny model's words are gibberish anyway.
MAX_TOKENS = 24
REQUEST_TIMEOUT = 120.0
# Piped (CI), rich assumes 80 columns, too narrow for the tables.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console)


def tiny_model() -> Path:
    """The demo's model file, generated once into the per-user cache."""
    path = tinymodel.default_cache_dir() / "demo" / tinymodel.DEMO_MODEL_FILE
    if path.is_file():
        console.print(f"tiny model: {path} (cached)")
        return path
    with _progress() as progress:
        task = progress.add_task("generating the tiny model", total=2)
        vocab = tinymodel.ensure_vocab()
        progress.advance(task)
        tinymodel.build_tiny_model(vocab, path)
        progress.advance(task)
    return path


def set_up(mesh: DemoMesh, model: Path) -> None:
    """Homes, models, the server's index and the laptop's cloud island."""
    docs = mesh.root / "clinic-notes"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text)
    with _progress() as progress:
        task = progress.add_task("setting up 4 devices", total=len(DEVICES) * 2 + 2)
        for device in DEVICES:
            mesh.cli(device.name, "init", "--name", device.name)
            mesh.cli(device.name, "models", "add", str(model), "--name", "tiny")
            progress.advance(task, 2)
        progress.update(task, description="building the server's RAG index")
        mesh.cli("server", "index", "add", DATASET, str(docs))
        progress.advance(task)
        progress.update(task, description="starting the cloud island")
        url = mesh.start_cloud()
        mesh.cli("laptop", "cloud", "add", CLOUD_NAME, "--url", url, "--model", CLOUD_MODEL,
                 "--price-in", "0.15", "--price-out", "0.6")
        progress.update(task, description="devices set up", advance=1)


def start_and_pair(mesh: DemoMesh) -> None:
    with _progress() as progress:
        task = progress.add_task("starting the mesh", total=len(DEVICES) + len(PAIRINGS) + 1)
        for device in DEVICES:
            progress.update(task, description=f"starting {device.name}")
            mesh.start(device)
            progress.advance(task)
        for inviter, joiner, tier in PAIRINGS:
            progress.update(task, description=f"pairing {joiner} ({tier})")
            mesh.pair(inviter, joiner, tier)
            progress.advance(task)
        progress.update(task, description="waiting for signed adverts")
        mesh.wait_islands("laptop", len(DEVICES) - 1)
        progress.update(task, description="mesh up, paired", advance=1)
    for device in DEVICES:
        console.print(f"  [bold]{device.name:<7}[/bold] {device.role}")
    console.print(f"  [bold]{CLOUD_NAME}[/bold] a cloud island (local OpenAI-compatible "
                  "server; records everything it receives)")


def ask(mesh: DemoMesh, request: DemoRequest, me: str, tiers: dict[str, str]) -> Outcome:
    """Send one request through the laptop's API, as any OpenAI client would."""
    home = mesh.home("laptop")
    status = gather(home)["node"]
    extension: dict[str, Any] = {"tier": request.tier}
    if request.dataset:
        extension["dataset"] = request.dataset
    response = httpx.post(
        f"{status['api']}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api.load_token(home)}"},
        json={"model": request.model, "max_tokens": MAX_TOKENS, "islandrun": extension,
              "messages": [{"role": "user", "content": request.prompt}]},
        timeout=REQUEST_TIMEOUT,
    )
    return outcome(request, response.json(), me, tiers)


def _what_left(result: Outcome) -> str:
    if result.island_tier == "refused":
        return "nothing left the laptop"
    if not result.sanitized:
        return "sent as is (a personal island)"
    return f"sanitized: {result.entities}" if result.entities != "-" else "sanitized: nothing found"


def _show(result: Outcome) -> None:
    where = result.island if result.island_tier == "refused" else (
        f"{result.island} ({result.island_tier})")
    sanitized = _what_left(result)
    console.print(f"  [bold]{result.kind:<9}[/bold] {result.sensitivity:.2f}  "
                  f"-> [cyan]{escape(where):<24}[/cyan] {escape(sanitized)}\n"
                  f"            why: {escape(result.reason)}")


def run_workload(mesh: DemoMesh, workload: tuple[DemoRequest, ...]) -> list[Outcome]:
    laptop = mesh.home("laptop")
    me = gather(laptop)["node"]["device_id"]
    tiers = {p["device_id"]: p["tier"] for p in json.loads(mesh.cli("laptop", "pair", "list",
                                                                       "--json"))}
    console.print(f"[bold]the laptop's API receives {len(workload)} requests[/bold] "
                  "(kind, MIST sensitivity, island, what left the device):")
    results = []
    for request in workload:
        results.append(ask(mesh, request, me, tiers))
        _show(results[-1])
    return results


def report(results: list[Outcome], cloud_bodies: list[dict[str, Any]]) -> list[str]:
    table = Table("island", "tier", "requests", "sensitive", "sanitized", title="summary")
    for island, tier, total, sensitive, sanitized in summary(results):
        table.add_row(island, tier, str(total), str(sensitive), str(sanitized))
    console.print(table)
    problems = privacy_problems(results, cloud_bodies)
    console.print(f"the cloud island received {len(cloud_bodies)} request(s), for example:")
    for body in cloud_bodies[:2]:
        console.print(f"  [cyan]{escape(repr(body['messages'][-1]['content']))}[/cyan]")
    for problem in problems:
        console.print(f"[red]PRIVACY PROBLEM: {escape(problem)}[/red]")
    if not problems:
        console.print("[green]privacy held:[/green] sensitive requests stayed on personal "
                      "islands; no planted personal data reached the cloud")
    return problems


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="islandrun-demo-") as tmp:
        yield Path(tmp)


def run(args: argparse.Namespace) -> int:
    short = args.short or os.environ.get("ISLANDRUN_DEMO_SHORT", "") not in ("", "0")
    model = tiny_model()
    with _workdir(args.dir) as root:
        mesh = DemoMesh(root)
        try:
            set_up(mesh, model)
            start_and_pair(mesh)
            console.print(render(gather(mesh.home("laptop")), time.time()))
            results = run_workload(mesh, SHORT if short else WORKLOAD)
        finally:
            clean = mesh.stop()
        problems = report(results, read_record(mesh.cloud_record))
        if args.report:
            args.report.write_text(json.dumps({"rows": [r.row() for r in results],
                                               "problems": problems, "clean": clean}, indent=2))
    console.print("all processes stopped cleanly" if clean
                  else "[red]a process did not stop cleanly (see the logs with --dir)[/red]")
    return 0 if clean and not problems else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run the healthcare demo on a local mesh of real nodes",
        description="Starts a laptop, a phone, a home server, a friend's phone and a cloud "
                    "island as real processes on 127.0.0.1, pairs them with invite codes, "
                    "routes a healthcare workload and shows where each request ran and why.",
    )
    p.add_argument("--short", action="store_true",
                   help="four requests instead of the full mix (also ISLANDRUN_DEMO_SHORT=1)")
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help="work in DIR and keep it (homes, logs, what the cloud received)")
    p.add_argument("--report", type=Path, metavar="FILE", help="write the rows as JSON")
    p.set_defaults(func=run)
