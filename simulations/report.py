"""Comparing policies on one scenario, and writing what ``islandnode simulate`` shows.

What it is: :func:`compare` runs every policy on the same scenario, fault and seed
(so each sees the very same devices, prompts, arrival times and faults);
:func:`table` renders the figures as a rich table; :func:`write` saves
``figures.json`` (one entry per policy) and two PNG plots (matplotlib, Agg backend,
no display needed).

What it is not: the simulation itself (:mod:`.run`) or the CLI
(:mod:`islandrun.node.cmd_simulate`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from .metrics import figures
from .policies import POLICIES, Policy
from .run import simulate
from .scenarios import Scenario

Figures = list[dict[str, Any]]


def compare(scenario: Scenario, *, seed: int, nodes: int | None, fault: str,
            policies: Sequence[Policy] = POLICIES) -> Figures:
    """Each policy's figures on the same scenario, fault and seed."""
    return [figures(simulate(scenario, p, fault=fault, seed=seed, nodes=nodes))
            for p in policies]


#: (figures key, column header, format of a number)
COLUMNS = (("policy", "policy", "{}"), ("violations", "violations", "{}"),
           ("refusals", "refused", "{}"), ("failures", "failed", "{}"),
           ("cost", "cost $", "{:.4f}"), ("latency_p50_ms", "p50 ms", "{:,.0f}"),
           ("latency_p99_ms", "p99 ms", "{:,.0f}"), ("local_utilisation", "local util.", "{:.0%}"),
           ("battery_drained", "battery pts", "{:.1f}"))


def table(title: str, rows: Figures) -> Table:
    out = Table(title=title)
    for _, header, _ in COLUMNS:
        out.add_column(header, justify="left" if header == "policy" else "right", no_wrap=True)
    for row in rows:
        out.add_row(*("-" if row[key] is None else form.format(row[key])
                      for key, _, form in COLUMNS))
    return out


def write(out: Path, rows: Figures) -> list[Path]:
    """``figures.json`` and the plots under ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "figures.json"
    path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    return [path, *_plots(out, rows)]


def _plots(out: Path, rows: Figures) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [r["policy"] for r in rows]
    x = range(len(rows))
    written = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key, label in zip(axes, ("violations", "failures", "cost"),
                              ("privacy violations", "refusals + failures", "cost (US$)"),
                              strict=True):
        values = [r[key] + (r["refusals"] if key == "failures" else 0) for r in rows]
        ax.bar(x, values, color=["#2a7" if r["policy"] == "islandrun" else "#789" for r in rows])
        ax.set_title(label)
        ax.set_xticks(list(x), names, rotation=45, ha="right")
    fig.tight_layout()
    written.append(out / "privacy_cost.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.4
    for offset, key in ((-width / 2, "latency_p50_ms"), (width / 2, "latency_p99_ms")):
        ax.bar([i + offset for i in x], [(r[key] or 0.0) / 1000.0 for r in rows], width,
               label=key.split("_")[1])
    ax.set_ylabel("seconds, arrival to answer")
    ax.set_xticks(list(x), names, rotation=45, ha="right")
    ax.legend()
    fig.tight_layout()
    written.append(out / "latency.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written
