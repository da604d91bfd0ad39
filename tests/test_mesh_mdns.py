"""mDNS for real: two `islandnode run` processes in two network namespaces (issue 5).

The test makes two namespaces joined by a veth pair, with addresses only on
that pair (10.231.0.1/24 and 10.231.0.2/24), and removes them afterwards.
Each node listens on its namespace's address, so its zeroconf is pinned to
the veth: nothing multicasts on the machine's real interfaces, and nothing
outside the namespaces ever talks to those addresses (the test reaches the
nodes only through the Unix control socket in their homes). No
``--bootstrap``: the nodes can only find each other through mDNS.

Skipped, with the reason, only where ``ip netns add`` is not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.mesh_procs import NodeProc, wait_until

pytestmark = pytest.mark.slow

SUBNET_IPS = ("10.231.0.1", "10.231.0.2")


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed: {out.stderr.strip()}")


@contextmanager
def veth_namespaces() -> Iterator[tuple[str, str]]:
    """Two fresh namespaces joined by a veth pair; removed on exit."""
    tag = f"ir{os.getpid() % 100_000}"
    names = (f"{tag}a", f"{tag}b")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces unavailable: the `ip` command is not installed")
    made: list[str] = []
    try:
        for ns in names:
            out = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True,
                                 timeout=10)
            if out.returncode != 0:
                pytest.skip(f"`ip netns add` is not permitted here: {out.stderr.strip()}")
            made.append(ns)
        devs = (f"{tag}va", f"{tag}vb")
        _ip("link", "add", devs[0], "type", "veth", "peer", "name", devs[1])
        for ns, dev, addr in zip(names, devs, SUBNET_IPS, strict=True):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "multicast", "on")
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in made:  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def sees_alive(node: NodeProc, other: NodeProc) -> bool:
    """Whether ``node`` lists ``other`` alive (``peers --json`` run in its namespace)."""
    return any(p["device_id"] == other.device_id and p["liveness"] == "alive"
               for p in node.peers_json())


def test_nodes_in_two_namespaces_find_each_other_over_mdns(tmp_path: Path) -> None:
    with veth_namespaces() as namespaces:
        nodes = [NodeProc(tmp_path, name, ("ip", "netns", "exec", ns))
                 for name, ns in zip(("east", "west"), namespaces, strict=True)]
        ids = [n.device_id for n in nodes]
        try:
            for node, ip in zip(nodes, SUBNET_IPS, strict=True):
                node.configure(ids, mdns=True)
                node.start("--listen", f"/ip4/{ip}/tcp/0")
            east, west = nodes
            wait_until(lambda: sees_alive(east, west), 30, "east to find west over mDNS")
            wait_until(lambda: sees_alive(west, east), 30, "west to find east over mDNS")
            for node in nodes:
                assert node.proc is not None and node.proc.poll() is None
        finally:
            for node in nodes:
                node.stop()
    logs = "".join(n.log.read_text() for n in nodes)
    assert "found on the LAN" in logs  # connected through discovery, not by chance
    assert "Traceback" not in logs
