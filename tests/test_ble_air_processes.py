"""Real ``islandnode`` processes talking Bluetooth LE over the shared radio model.

No radio exists here, so the air is ``python -m islandrun.transports.ble_air``
(the radio model of ``ble_radio_memory`` behind a Unix socket in the test's
tmp dir), and each node runs ``islandnode run --ble-adapter sim:PATH``. The
LAN carries nothing: every node listens on loopback but knows no other node
(no bootstrap, mDNS off), so adverts, requests and answers can only travel
over the air. What this does not show: anything on Bluetooth hardware.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from islandrun.node import config
from islandrun.node.pairing_store import PairingRecord, PairingStore
from islandrun.protocol import messages as m
from islandrun.transports.ble_air import read_statistics
from tests.mesh_procs import NodeProc, ask, wait_until

pytestmark = pytest.mark.slow


@contextmanager
def air(root: Path, topology: str) -> Iterator[Path]:
    """The shared air, as its own process, for the block."""
    path = root / "air.sock"
    with open(root / "air.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "islandrun.transports.ble_air", "--socket", str(path),
             "--topology", topology, "--scan-window", "0.2"],
            stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
    try:
        wait_until(path.exists, 20, "the air to listen")
        yield path
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "bytes_on_air" in json.loads(out)


def phones(root: Path, names: list[str]) -> list[NodeProc]:
    """Nodes on no LAN: loopback only, no mDNS, nobody to bootstrap from; each
    on the air at its own name."""
    nodes = [NodeProc(root, name) for name in names]
    for node in nodes:
        node.configure([])
        config.update_config(node.home, lambda d, n=node: d.setdefault("ble", {}).update(
            address=n.name))
    return nodes


def befriend(nodes: list[NodeProc]) -> None:
    """Pair every two nodes as friends (both sides pin each other)."""
    for a in nodes:
        store = PairingStore(a.home)
        for b in nodes:
            if a is not b:
                store.add(PairingRecord(device_id=b.device_id, name=b.name,
                                        tier=m.TrustTier.FRIEND, paired_at=time.time(),
                                        via="invite"))


@contextmanager
def running(nodes: list[NodeProc], path: Path, batteries: list[float]) -> Iterator[None]:
    try:
        for node, battery in zip(nodes, batteries, strict=True):
            node.start("--ble-adapter", f"sim:{path}", "--fixed-battery", str(battery))
        yield
    finally:
        for node in nodes:
            node.stop()


def on_air(path: Path) -> int:
    return trio.run(read_statistics, path)["bytes_on_air"]


def test_two_processes_find_each_other_and_answer_over_the_air(tmp_path: Path) -> None:
    a, b = phones(tmp_path, ["a", "b"])
    befriend([a, b])
    with air(tmp_path, "a<>b") as path, running([a, b], path, [0.15, 0.9]):
        assert "ble/a" in a.status()["addresses"]
        wait_until(lambda: a.peers().get(b.device_id) == "alive", 60, "b's advert over BLE")
        wait_until(lambda: b.peers().get(a.device_id) == "alive", 60, "a's advert over BLE")
        prompt = "how far is the hut from the lake? " * 40
        before = on_air(path)
        answer = ask(a, prompt, "--peer", b.device_id, timeout=90)
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.strip() == prompt.strip()
        assert "[b " in answer.stderr  # b's island answered
        assert on_air(path) - before > 2 * len(prompt)  # the request and answer flew


def test_a_low_phone_runs_on_a_full_friend_two_hops_away(tmp_path: Path) -> None:
    # A (15%) hears only B; B (10%, under its floor: it serves nobody) hears C (100%).
    a, b, c = phones(tmp_path, ["a", "b", "c"])
    befriend([a, b, c])
    with air(tmp_path, "a<>b,b<>c") as path, running([a, b, c], path, [0.15, 0.1, 1.0]):
        wait_until(lambda: a.peers().get(c.device_id) == "alive", 90, "c's advert via b")
        wait_until(lambda: a.peers().get(b.device_id) == "alive", 90, "b's advert")
        answer = ask(a, "which way to the hut?", timeout=90)
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.strip() == "which way to the hut?"
        assert "[c " in answer.stderr  # not A itself (low), not B (below its floor)
