"""The simulator at scale, and privacy over >= 100,000 requests; prints one JSON line.

Targets (issue 9): 1,000 nodes for 60 s of virtual time in <= 120 s of wall time on
one core (``wall_s_1000_nodes``: the clinic scenario repeated into 333 clinics, each
a workstation, an edge server and a configured cloud; arrivals over 60 virtual
seconds, the run going on until the requests in flight finish, ``virtual_s``); zero
privacy violations for IslandRun across every scenario and fault over at least
100,000 requests (``requests``, ``violations_islandrun``), while the latency-greedy
baseline shows them (``violations_latency_greedy``, one run per scenario and fault).

The 1,000-node run is timed alone, in this process. The privacy sweep (every
scenario x every fault, then further clinic days with new seeds until IslandRun
has served 100,000 requests) is spread over a process pool with one worker per
core, since it measures a count, not a speed. Convergence figures for 1,000 nodes
(relay gossip and the memory transport's direct broadcast, 0 % and 50 % loss) come
with the Serf model's.

Run: ``python bench/simulate.py`` (about four minutes on two cores).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

from islandrun.simulations import convergence
from islandrun.simulations.faults import FAULTS
from islandrun.simulations.metrics import figures
from islandrun.simulations.policies import BY_NAME
from islandrun.simulations.run import simulate
from islandrun.simulations.scenarios import HEALTHCARE, SCENARIOS

TARGET_REQUESTS = 100_000
Job = tuple[str, str, str, int]  # scenario, policy, fault, seed


def _figures(job: Job) -> dict:
    scenario, policy, fault, seed = job
    return figures(simulate(SCENARIOS[scenario], BY_NAME[policy], fault=fault, seed=seed))


def _sweep() -> list[Job]:
    jobs: list[Job] = [(s, p, f, 0) for s in SCENARIOS for f in FAULTS
                       for p in ("islandrun", "latency-greedy")]
    per_pass = sum(SCENARIOS[s].requests for s in SCENARIOS) * len(FAULTS)
    served, seed = per_pass, 1
    while served < TARGET_REQUESTS:  # more clinic days, each fault in turn
        for fault in FAULTS:
            jobs.append((HEALTHCARE.name, "islandrun", fault, seed))
            served += HEALTHCARE.requests
        seed += 1
    return jobs


def main() -> None:
    start = time.perf_counter()
    big = simulate(HEALTHCARE, BY_NAME["islandrun"], seed=0, nodes=1000, span=60.0)
    wall_1000 = time.perf_counter() - start
    scale = figures(big)

    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(_figures, _sweep()))
    sweep_wall = time.perf_counter() - start
    ours = [r for r in rows if r["policy"] == "islandrun"]
    greedy = [r for r in rows if r["policy"] == "latency-greedy"]

    cells = {(n, loss, mode): convergence.measure(n, loss, mode, seed=0)
             for n in (1000,) for loss in (0.0, 0.5) for mode in ("relay", "direct")}
    print(json.dumps({
        "wall_s_1000_nodes": round(wall_1000, 1),
        "nodes": scale["nodes"],
        "virtual_s": big.duration_s,
        "requests_1000_nodes": scale["requests"],
        "violations_1000_nodes": scale["violations"],
        "requests": sum(r["requests"] for r in ours) + scale["requests"],
        "violations_islandrun": sum(r["violations"] for r in ours) + scale["violations"],
        "refusals_islandrun": sum(r["refusals"] for r in ours),
        "failures_islandrun": sum(r["failures"] for r in ours),
        "requests_latency_greedy": sum(r["requests"] for r in greedy),
        "violations_latency_greedy": sum(r["violations"] for r in greedy),
        "runs": len(rows) + 1,
        "sweep_wall_s": round(sweep_wall, 1),
        "convergence_s_1000_relay_0": cells[(1000, 0.0, "relay")]["converged_s"],
        "convergence_s_1000_relay_50": cells[(1000, 0.5, "relay")]["converged_s"],
        "convergence_s_1000_direct_0": cells[(1000, 0.0, "direct")]["converged_s"],
        "convergence_s_1000_direct_50": cells[(1000, 0.5, "direct")]["converged_s"],
        "serf_model_s_1000_0": convergence.serf_model_s(1000, 0.0),
        "serf_model_s_1000_50": convergence.serf_model_s(1000, 0.5),
    }))


if __name__ == "__main__":
    main()
