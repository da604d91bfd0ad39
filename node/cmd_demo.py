"""``islandnode demo``: a local mesh of real nodes, shown step by step.

The README's first command ends here. It starts three real ``islandnode
run`` processes on loopback (a laptop, a phone and a home server, each
with its own key and home in a throwaway directory), waits for their signed
adverts to converge, shows what MIST would let leave the device for a
healthcare prompt, routes a few requests through WAVES and the mesh, and
shuts everything down. Nothing leaves 127.0.0.1.

It grows with the capabilities it shows (pairing, real models, a cloud
island); until SHORE lands, islands answer with the built-in echo executor.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from islandrun.protocol.ids import short_id

from . import config, control, identity, mist
from .errors import NodeError
from .mist_vault import Vault

ISLANDNODE = str(Path(sys.executable).parent / "islandnode")
#: name -> extra `run` arguments. The server alone offers the "big" model.
DEVICES = {
    "laptop": ("--fixed-load", "0.2"),
    "phone": ("--fixed-load", "0.6"),
    "server": ("--fixed-load", "0.1", "--echo-model", "big"),
}
PROMPT = (
    "Patient Maria Gonzalez (DOB 03/14/1962, MRN 4839201) reports chest pain; "
    "call her at +1 415-555-0134 or maria.g@example.com. Is metformin safe?"
)
console = Console()


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except NodeError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise NodeError(f"demo: timed out waiting for {what}")


class _Mesh:
    """The demo's node processes; always stopped on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ids: dict[str, str] = {}

    def create(self) -> None:
        for name in DEVICES:
            key = identity.create_key(self.root / name)
            self.ids[name] = identity.Identity(key=key, name=name).device_id
        for name in DEVICES:
            config.write_initial_config(
                self.root / name, name, listen=("/ip4/127.0.0.1/tcp/0",), mdns=False,
                allow=tuple(self.ids.values()),
            )

    def start(self, name: str, *extra: str) -> None:
        home = self.root / name
        with open(self.root / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                [ISLANDNODE, "--home", str(home), "run", "--api", "127.0.0.1:0",
                 *DEVICES[name], *extra],
                stdout=log, stderr=subprocess.STDOUT,
            )
        _wait(lambda: control.get(home, "/status", timeout=2), 30, f"{name} to start")

    def status(self, name: str) -> dict[str, Any]:
        return control.get(self.root / name, "/status", timeout=2)

    def stop(self) -> bool:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        clean = True
        for proc in self.procs.values():
            try:
                clean &= proc.wait(15) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                clean = False
        return clean


def _show_peers(mesh: _Mesh) -> None:
    table = Table("island", "id", "liveness", "capacity", "models", title="laptop's view")
    for p in control.get(mesh.root / "laptop", "/peers"):
        table.add_row(p["name"], short_id(p["device_id"]), p["liveness"],
                      f"{p['capacity']:.0%}", ", ".join(p["models"]))
    console.print(table)


def _show_mist() -> None:
    analysis = mist.analyze(PROMPT)
    sanitized = mist.sanitize(PROMPT, Vault(secrets.SystemRandom())).text
    reasons = ", ".join(f"{r.count} {r.type.value}" for r in analysis.reasons)
    console.print(f"[bold]MIST[/bold] sensitivity {analysis.sensitivity:.2f} "
                  f"({analysis.level.label}): {reasons}")
    console.print(f"  what a less-trusted island would see:\n  [cyan]{escape(sanitized)}[/cyan]")


def _ask(mesh: _Mesh, prompt: str, *args: str) -> None:
    result = subprocess.run(
        [ISLANDNODE, "--home", str(mesh.root / "laptop"), "ask", prompt, *args],
        capture_output=True, text=True, timeout=60,
    )
    answer = result.stdout.strip() or "-"
    console.print(f"  [green]{escape(repr(prompt[:48]))}[/green] {' '.join(args)}\n"
                  f"    answer: {escape(repr(answer[:60]))}\n    {escape(result.stderr.strip())}")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="islandrun-demo-") as tmp:
        mesh = _Mesh(Path(tmp))
        mesh.create()
        try:
            with console.status("starting three islandnode processes on 127.0.0.1 ..."):
                mesh.start("laptop")
                hub = mesh.status("laptop")["addresses"][0]
                for name in ("phone", "server"):
                    mesh.start(name, "--bootstrap", hub)
                _wait(lambda: mesh.status("laptop")["islands"] >= 2, 30, "adverts to converge")
            console.print(f"[bold]mesh up[/bold]: {len(mesh.procs)} nodes, signed adverts "
                          "verified by each (logs in the demo dir)")
            _show_peers(mesh)
            _show_mist()
            console.print("[bold]WAVES[/bold] routes requests from the laptop:")
            _ask(mesh, "Summarise today's calendar")
            _ask(mesh, "Draft a reply about the project", "--model", "big")
            _ask(mesh, PROMPT, "--model", "big")
            _ask(mesh, "Translate this", "--model", "missing")
        finally:
            clean = mesh.stop()
        console.print("all nodes stopped cleanly" if clean else "[red]a node did not stop cleanly")
        if args.keep_logs:
            for log in Path(tmp).glob("*.log"):
                os.replace(log, Path.cwd() / f"islandrun-demo-{log.name}")
    return 0 if clean else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run a local demo mesh of real nodes on loopback")
    p.add_argument("--keep-logs", action="store_true", help="copy node logs to this directory")
    p.set_defaults(func=run)
