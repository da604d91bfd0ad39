"""LIGHTHOUSE at scale: how fast a signed advert reaches every node, beside Serf's model.

What it is: for N = 10, 100 and 1,000 nodes and 0 %, 10 % and 50 % message loss,
every node holds a real :class:`~islandrun.node.lighthouse.Membership` (all N
paired), and a few *subjects* publish one real signed advert each. Two ways of
spreading it are measured:

* ``relay`` — memberlist / Serf style epidemic gossip at Serf's LAN defaults: every
  round (``GOSSIP_INTERVAL_S`` = 0.2 s) each node that has accepted the advert
  forwards it to ``FANOUT`` = 3 peers chosen at random; each copy is lost with the
  loss probability; a node is converged for that subject once its ``Membership``
  accepted the advert (duplicates are ingested too, and rejected as stale, exactly
  as the node does). This is what libp2p gossipsub's relaying gives the real node.
* ``direct`` — what :mod:`islandrun.transports.memory` does: the subject sends to
  every peer itself (a full mesh, no relaying), and a lost advert is repaired only by
  its next heartbeat (the LAN preset's ``heartbeat_interval``).

Convergence time is when 99.99 % of the (observer, subject) pairs have accepted
(for small N that is every pair). The reference is the logistic model of Serf's
convergence simulator (``hashicorp/serf`` website, ``_simulator.js``):
``infected(x) = N / (1 + (N + 1) * exp(-c * N * x))`` after ``x`` rounds with
``c = fanout / N * (1 - loss) * 0.5``, read at whole rounds — 2.2 s to 99.99 % at
N = 1,000 without loss and 4.4 s at 50 % loss.

Signature checks are memoised per run (see :func:`.run.verified_bytes_cache`).

What it is not: failure detection (suspicion timing is LIGHTHOUSE's own tests) or a
model of bandwidth.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from rich.table import Table

from islandrun.node.lighthouse import Membership, seal_advert
from islandrun.node.lighthouse_config import LAN
from islandrun.protocol import messages as m
from islandrun.protocol.ids import device_id_from_public_key

from .run import verified_bytes_cache
from .world import EPOCH

GOSSIP_INTERVAL_S = 0.2
FANOUT = 3
TARGET = 0.9999
SUBJECTS = 3
MAX_S = 60.0
LINK_LATENCY_S = 0.004  # one LAN hop
SIZES = (10, 100, 1000)
LOSSES = (0.0, 0.1, 0.5)


def serf_model_s(nodes: int, loss: float, *, fanout: int = FANOUT,
                 interval: float = GOSSIP_INTERVAL_S, target: float = TARGET) -> float:
    """Seconds to ``target`` convergence in Serf's logistic model, at whole rounds."""
    contact = fanout / nodes * (1.0 - loss) * 0.5
    rounds = 0
    while 1.0 / (1.0 + (nodes + 1) * math.exp(-contact * nodes * rounds)) < target:
        rounds += 1
    return round(rounds * interval, 3)


class _Mesh:
    """N nodes, each with a real Membership that allows all the others."""

    def __init__(self, nodes: int, rng: random.Random) -> None:
        self.keys = [SigningKey(rng.randbytes(32)) for _ in range(nodes)]
        self.ids = [device_id_from_public_key(bytes(k.verify_key)) for k in self.keys]
        allowed = frozenset(self.ids).__contains__
        self.tables = [Membership(LAN, allowed) for _ in range(nodes)]
        self.messages = 0  # copies sent, lost ones included

    def advert(self, subject: int) -> bytes:
        advert = m.Advert(device_id=self.ids[subject], name=f"n{subject}", capacity=1.0)
        return seal_advert(self.keys[subject], advert, seq=1, expires=EPOCH + LAN.advert_ttl)

    def send(self, signed: bytes, subject: int, observer: int, now: float, lost: bool) -> bool:
        """One copy to ``observer``; whether its Membership accepted it (as news)."""
        self.messages += 1
        if lost:
            return False
        table = self.tables[observer]
        return table.ingest(signed, self.ids[subject], EPOCH + now).accepted


def _relay(mesh: _Mesh, subject: int, loss: float, rng: random.Random) -> list[float]:
    """Times at which each other node accepted ``subject``'s advert (epidemic gossip)."""
    n, signed = len(mesh.ids), mesh.advert(subject)
    have, times = [subject], []
    known = {subject}
    now = 0.0
    while len(known) < n and now < MAX_S:
        now += GOSSIP_INTERVAL_S
        fresh = []
        for sender in have:
            for _ in range(FANOUT):
                peer = rng.randrange(n)
                if peer == sender:
                    continue
                arrival = now + LINK_LATENCY_S
                if mesh.send(signed, subject, peer, arrival, rng.random() < loss):
                    known.add(peer)
                    fresh.append(peer)
                    times.append(arrival)
        have += fresh
    return times


def _direct(mesh: _Mesh, subject: int, loss: float, rng: random.Random) -> list[float]:
    """Times for the memory transport's full mesh, repaired by heartbeats."""
    n, signed = len(mesh.ids), mesh.advert(subject)
    missing = [i for i in range(n) if i != subject]
    times: list[float] = []
    now = 0.0
    while missing and now < MAX_S:
        left = []
        for peer in missing:
            if mesh.send(signed, subject, peer, now + LINK_LATENCY_S, rng.random() < loss):
                times.append(now + LINK_LATENCY_S)
            else:
                left.append(peer)
        missing = left
        now += LAN.heartbeat_interval
    return times


def _converged_at(times: list[float], pairs: int) -> float | None:
    need = math.ceil(TARGET * pairs)
    if len(times) < need:
        return None
    return round(sorted(times)[need - 1], 3)


def measure(nodes: int, loss: float, mode: str, seed: int) -> dict[str, Any]:
    """One cell of the experiment: ``mode`` is ``relay`` or ``direct``."""
    rng = random.Random(f"{seed}:convergence:{nodes}:{loss}:{mode}")
    spread = _relay if mode == "relay" else _direct
    with verified_bytes_cache():
        mesh = _Mesh(nodes, rng)
        times: list[float] = []
        for subject in range(min(SUBJECTS, nodes)):
            times += spread(mesh, subject, loss, rng)
    pairs = min(SUBJECTS, nodes) * (nodes - 1)
    return {"nodes": nodes, "loss": loss, "mode": mode,
            "converged_s": _converged_at(times, pairs),
            "serf_model_s": serf_model_s(nodes, loss), "messages": mesh.messages}


def experiment(seed: int = 0, sizes: tuple[int, ...] = SIZES,
               losses: tuple[float, ...] = LOSSES) -> list[dict[str, Any]]:
    return [measure(n, loss, mode, seed)
            for n in sizes for loss in losses for mode in ("relay", "direct")]


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="LIGHTHOUSE convergence to 99.99 % (seconds of virtual time)")
    for header in ("nodes", "loss", "mode", "measured s", "Serf model s", "messages"):
        out.add_column(header, justify="right")
    for r in rows:
        measured = "-" if r["converged_s"] is None else f"{r['converged_s']:.2f}"
        out.add_row(str(r["nodes"]), f"{r['loss']:.0%}", r["mode"], measured,
                    f"{r['serf_model_s']:.1f}", str(r["messages"]))
    return out


def plot(out: Path, rows: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for mode, marker in (("relay", "o"), ("direct", "s")):
        for loss in sorted({r["loss"] for r in rows}):
            cells = [r for r in rows if r["mode"] == mode and r["loss"] == loss]
            ax.plot([r["nodes"] for r in cells], [r["converged_s"] or MAX_S for r in cells],
                    marker=marker, label=f"{mode}, {loss:.0%} loss")
    for loss in sorted({r["loss"] for r in rows}):
        cells = [r for r in rows if r["mode"] == "relay" and r["loss"] == loss]
        ax.plot([r["nodes"] for r in cells], [r["serf_model_s"] for r in cells], "k:",
                alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds to 99.99 % (dotted: Serf model)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "convergence.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
