"""Real `islandnode run` processes on loopback, for multi-process tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from islandrun.node import config, control, identity
from islandrun.node.errors import NodeError

ISLANDNODE = str(Path(sys.executable).parent / "islandnode")
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except NodeError:
            result = None  # type: ignore[assignment]
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class NodeProc:
    """One ``islandnode run`` process; ``prefix`` wraps its command line
    (e.g. ``ip netns exec NS`` to run it inside a network namespace)."""

    def __init__(self, root: Path, name: str, prefix: tuple[str, ...] = ()) -> None:
        self.name = name
        self.prefix = prefix
        self.home = root / name
        self.key = identity.create_key(self.home)
        self.device_id = identity.Identity(key=self.key, name=name).device_id
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / f"{name}.log"

    def configure(
        self, allow: list[str], listen: str = "/ip4/127.0.0.1/tcp/0", mdns: bool = False
    ) -> None:
        config.write_initial_config(
            self.home, self.name, listen=(listen,), mdns=mdns, allow=tuple(allow)
        )

    def start(self, *args: str) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                # A fixed TIDE load: routing must not depend on how busy the
                # machine running the tests is.
                [*self.prefix, ISLANDNODE, "--home", str(self.home), "run",
                 "--fixed-load", "0.1", "--api", "127.0.0.1:0", *args],
                stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(lambda: self.status(), 30, f"{self.name} to start")

    def status(self) -> dict[str, Any]:
        return control.get(self.home, "/status", timeout=2)

    def peers(self) -> dict[str, str]:
        """device id -> liveness, as this node sees the mesh."""
        return {p["device_id"]: p["liveness"] for p in control.get(self.home, "/peers", timeout=2)}

    def peers_json(self) -> list[dict[str, Any]]:
        """The mesh as ``islandnode peers --json`` prints it (run with ``prefix``)."""
        out = subprocess.run(
            [*self.prefix, ISLANDNODE, "--home", str(self.home), "peers", "--json"],
            capture_output=True, text=True, timeout=30,
        )
        if out.returncode != 0:
            raise NodeError(f"peers --json failed: {out.stderr.strip()}")
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    @property
    def address(self) -> str:
        return self.status()["addresses"][0]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        with_cont = [signal.SIGCONT, signal.SIGTERM]
        for sig in with_cont:
            self.signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def ask(
    node: NodeProc, prompt: str, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ISLANDNODE, "--home", str(node.home), "ask", prompt, *args],
        capture_output=True, text=True, timeout=timeout,
    )


@contextmanager
def mesh(root: Path, names: list[str], *run_args: str) -> Iterator[list[NodeProc]]:
    """Nodes that all allow each other, started and bootstrapped through the
    first -- unless ``run_args`` is ``("--defer",)``: then the caller starts them."""
    nodes = [NodeProc(root, n) for n in names]
    ids = [n.device_id for n in nodes]
    for n in nodes:
        n.configure(ids)
    try:
        if run_args != ("--defer",):
            nodes[0].start(*run_args)
            hub = nodes[0].address
            for n in nodes[1:]:
                n.start("--bootstrap", hub, *run_args)
        yield nodes
    finally:
        for n in nodes:
            n.stop()
