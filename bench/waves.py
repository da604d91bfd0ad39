"""WAVES decision latency at 10 / 100 / 1,000 islands; prints one JSON line.

Targets (issue 4): p50 <= 0.1 / 0.3 / 3 ms and p99 <= 1 ms at 100 islands.
The islands are a seeded mix of personal devices, friends, edge servers and
clouds. Requests alternate between sensitivities 0.3, 0.6 and 0.75, so a third
to two thirds of the islands are removed by some constraint (privacy, model,
dataset, latency, liveness) and the rest are scored. Each timing includes
building the decision's explanation (always built), not rendering it to text.

Run: ``python bench/waves.py``
"""

from __future__ import annotations

import json
import random
import statistics
import time

from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves import RoutePolicy, decide
from islandrun.node.waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier

ROUNDS = {10: 4000, 100: 2000, 1000: 300}
KINDS = list(IslandKind)


def fleet(size: int, rng: random.Random) -> list[IslandSnapshot]:
    islands = []
    for index in range(size):
        kind = rng.choice(KINDS)
        trust = {"personal": 1.0, "friend": 0.7, "edge": 0.8, "cloud": 0.4}[kind.value]
        islands.append(
            IslandSnapshot(
                device_id=f"device-{index:05d}",
                name=f"island {index}",
                kind=kind,
                privacy=trust,
                trust=trust,
                models=frozenset({"llama-3-8b" if rng.random() < 0.9 else "qwen-7b", "gpt-4o"}),
                datasets=frozenset({"notes"}) if rng.random() < 0.9 else frozenset(),
                capacity=rng.random(),
                in_flight=rng.randrange(2),
                willingness=rng.random(),
                latency_ms=rng.uniform(20.0, 800.0),
                price_per_token=1e-6 if kind is IslandKind.CLOUD else 0.0,
                alive=rng.random() < 0.95,
                is_local=index == 0,
            )
        )
    return islands


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(size: int, rounds: int, rng: random.Random) -> list[float]:
    islands = fleet(size, rng)
    policy = RoutePolicy()
    local = CapacityReport(capacity=0.4, available=0.52, accepting=True, exhaustion_in_s=None,
                           in_flight=1, willingness=1.0, battery_pct=None, charging=None)
    request = RouteRequest(request_id="bench", model="llama-3-8b", datasets=frozenset({"notes"}),
                           tier=Tier.SECONDARY, max_latency_ms=1200.0, tokens=800)
    timings = []
    for i in range(rounds):
        sensitivity = (0.3, 0.6, 0.75)[i % 3]
        start = time.perf_counter_ns()
        decide(request, sensitivity, islands, policy, local)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return timings


def main() -> None:
    rng = random.Random(4)
    results = {size: measure(size, rounds, rng) for size, rounds in ROUNDS.items()}
    print(json.dumps({
        "p50_ms_10": round(statistics.median(results[10]), 4),
        "p50_ms_100": round(statistics.median(results[100]), 4),
        "p99_ms_100": round(percentile(results[100], 0.99), 4),
        "p50_ms_1000": round(statistics.median(results[1000]), 4),
    }))


if __name__ == "__main__":
    main()
