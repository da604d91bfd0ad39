"""The demo's devices: real ``islandnode`` processes on loopback, set up with the users' commands.

Every step is the command a user would type on that device (``init``,
``models add``, ``index add``, ``cloud add``, ``run``, ``pair invite`` /
``pair join``), run as a subprocess against that device's own home in a
throwaway directory. The cloud island is :mod:`.demo_cloud` in its own
process, recording what it receives. Nothing listens beyond 127.0.0.1
(``--listen /ip4/127.0.0.1/tcp/0 --no-mdns --api 127.0.0.1:0``).

:class:`DemoMesh` always stops every process it started (SIGTERM, then a
bounded wait, then SIGKILL) and says whether they all stopped cleanly.

What this is not: a test harness (``tests/mesh_procs.py`` is) and not
the workload (:mod:`.demo_workload`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import control
from .errors import NodeError

ISLANDNODE = str(Path(sys.executable).parent / "islandnode")
#: Seconds to wait for a node to answer after start, and for adverts to spread.
START_TIMEOUT = 30.0
#: Seconds any one CLI step may take.
STEP_TIMEOUT = 60.0
CLOUD_NAME = "demo-cloud"


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    name: str
    #: What it stands for, shown to the user.
    role: str
    #: Extra ``islandnode run`` arguments (TIDE's test readings).
    run_args: tuple[str, ...]


#: The laptop is busy (as in the paper's motivating example), the phone low on battery,
#: the server half busy: so each kind of island gets work.
DEVICES = (
    Device(name="laptop", role="your laptop (busy: 70% load)", run_args=("--fixed-load", "0.7")),
    Device(name="phone", role="your phone (battery 15%)",
           run_args=("--fixed-load", "0.2", "--fixed-battery", "0.15")),
    Device(name="server", role="your home server (50% load; holds the clinic-notes index)",
           run_args=("--fixed-load", "0.5")),
    Device(name="friend", role="a friend's phone (friend tier)", run_args=("--fixed-load", "0.3")),
)
#: (inviter, joiner, tier): the laptop invites everyone, as a user would.
PAIRINGS = (("laptop", "phone", "personal"), ("laptop", "server", "personal"),
            ("laptop", "friend", "friend"))


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except NodeError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise NodeError(f"demo: timed out after {timeout:.0f} s waiting for {what}")


class DemoMesh:
    """The demo's node and cloud processes under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.cloud_record = root / "cloud-received.jsonl"

    def home(self, name: str) -> Path:
        return self.root / name

    def cli(self, name: str, *args: str) -> str:
        """Run ``islandnode --home <name's home> ARGS``; its stdout, or NodeError."""
        done = subprocess.run([ISLANDNODE, "--home", str(self.home(name)), *args],
                              capture_output=True, text=True, timeout=STEP_TIMEOUT)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise NodeError(f"demo: `islandnode {args[0]}` on {name} failed: {last}")
        return done.stdout

    def _spawn(self, label: str, command: list[str]) -> None:
        with open(self.root / f"{label}.log", "wb") as log:
            self.procs[label] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start_cloud(self) -> str:
        """Start the cloud island's server; its base URL."""
        ready = self.root / "cloud.url"
        self._spawn("cloud", [sys.executable, "-m", "islandrun.node.demo_cloud",
                              "--record", str(self.cloud_record), "--ready", str(ready)])
        return str(wait_for(lambda: ready.exists() and ready.read_text(), START_TIMEOUT,
                            "the cloud server"))

    def start(self, device: Device) -> dict[str, Any]:
        home = self.home(device.name)
        self._spawn(device.name, [ISLANDNODE, "--home", str(home), "run", "--listen",
                                  "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--api", "127.0.0.1:0",
                                  *device.run_args])
        return dict(wait_for(lambda: control.get(home, "/status", timeout=2), START_TIMEOUT,
                             f"{device.name} to start"))

    def pair(self, inviter: str, joiner: str, tier: str) -> str:
        """Pair with a one-time invite code, exactly as ``pair invite`` / ``pair join``."""
        code = json.loads(self.cli(inviter, "pair", "invite", "--tier", tier, "--json",
                                   "--no-qr"))["code"]
        return self.cli(joiner, "pair", "join", code).strip()

    def wait_islands(self, name: str, count: int) -> None:
        """Until ``name`` sees ``count`` live islands (verified adverts)."""
        def alive() -> bool:
            peers = control.get(self.home(name), "/peers", timeout=2)
            return sum(p["liveness"] == "alive" for p in peers) >= count

        wait_for(alive, START_TIMEOUT, f"{name} to see {count} islands")

    def stop(self) -> bool:
        """SIGTERM everything, wait (bounded), kill what is left; True if all exited 0."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        clean = True
        for proc in self.procs.values():
            try:
                clean &= proc.wait(15) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                clean = False
        return clean
