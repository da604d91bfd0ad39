"""A seed fixes a simulated run completely; another seed gives another run."""

from __future__ import annotations

import json

from islandrun.simulations.policies import BY_NAME
from islandrun.simulations.report import compare
from islandrun.simulations.scenarios import HIKING, PERSONAL_GROUP

POLICIES = [BY_NAME[n] for n in ("islandrun", "latency-greedy", "no-LIGHTHOUSE")]


def _figures(seed: int, fault: str = "flapping") -> str:
    rows = compare(HIKING, seed=seed, nodes=None, fault=fault, policies=POLICIES)
    return json.dumps(rows, sort_keys=True)


def test_the_same_seed_gives_identical_figures() -> None:
    assert _figures(7) == _figures(7)


def test_another_seed_gives_other_figures() -> None:
    assert _figures(7) != _figures(8)


def test_the_same_seed_is_identical_with_several_groups_and_faults() -> None:
    def run() -> str:
        rows = compare(PERSONAL_GROUP, seed=2, nodes=15, fault="loss", policies=POLICIES[:1])
        return json.dumps(rows, sort_keys=True)

    first = run()
    assert json.loads(first)[0]["nodes"] == 15
    assert run() == first
