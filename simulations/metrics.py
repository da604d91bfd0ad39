"""The figures of one simulated run: what the comparison table and figures.json show.

What it is: :func:`figures` reduces a :class:`~islandrun.simulations.run.RunResult`
to plain numbers:

* ``violations`` — requests whose planted secrets reached an island with too low a
  privacy score (definition in :mod:`islandrun.simulations.workload`);
* ``refusals`` — requests turned away before running (WAVES found no eligible
  island, the rate limiter, a baseline with no island to use);
* ``failures`` — requests that ran out of islands, overloaded one with no fallback,
  or had not finished when the run ended;
* ``cost`` — US dollars paid to priced islands (tokens x the island's prices);
* ``latency_p50_ms`` / ``latency_p99_ms`` — arrival to answer, completed requests
  only, nearest-rank percentiles;
* ``local_utilisation`` — busy slot-seconds of the users' own devices (personal
  islands and the devices requests start on) over their slot-seconds in the run;
* ``battery_drained`` — percentage points of battery used, summed over devices.

What it is not: a statistics package (no confidence intervals; run more seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from islandrun.node.waves_inputs import IslandKind

from .run import RunResult

FIELDS = ("policy", "violations", "refusals", "cost", "latency_p50_ms", "latency_p99_ms",
          "failures", "requests", "local_utilisation", "battery_drained")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def figures(result: RunResult) -> dict[str, Any]:
    """The run's figures, JSON-ready, in :data:`FIELDS` order plus the run's identity."""
    jobs = result.jobs
    latencies = [j.latency_s for j in jobs if j.status == "ok" and j.latency_s is not None]
    personal = [i for i in result.world.islands
                if i.spec.kind is IslandKind.PERSONAL or i.spec.origin]
    capacity = sum(i.spec.slots for i in personal) * result.duration_s
    busy = sum(i.executor.busy_seconds for i in personal)
    drained = sum((i.spec.battery_pct or 0.0) - (i.battery or 0.0) for i in result.world.islands)
    return {
        "policy": result.policy,
        "violations": sum(j.violation for j in jobs),
        "refusals": sum(j.status == "refused" for j in jobs),
        "cost": round(sum(j.cost for j in jobs), 4),
        "latency_p50_ms": _ms(percentile(latencies, 50)),
        "latency_p99_ms": _ms(percentile(latencies, 99)),
        "failures": sum(j.status == "failed" for j in jobs),
        "requests": len(jobs),
        "local_utilisation": round(busy / capacity, 4) if capacity else 0.0,
        "battery_drained": round(drained, 2),
        "sanitized": sum(j.sanitized for j in jobs),
        "scenario": result.scenario,
        "fault": result.fault,
        "seed": result.seed,
        "nodes": len(result.world.islands),
    }
