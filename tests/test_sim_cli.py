"""``islandnode simulate``: the table on stdout, figures.json and PNG plots on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from islandrun.node import cli
from islandrun.simulations.policies import POLICIES

PNG = b"\x89PNG\r\n\x1a\n"


def test_simulate_writes_figures_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "hike"
    assert cli.main(["simulate", "hiking", "--seed", "4", "--out", str(out)]) == 0
    rows = json.loads((out / "figures.json").read_text())
    assert [r["policy"] for r in rows] == [p.name for p in POLICIES]
    for row in rows:
        assert {"policy", "violations", "refusals", "cost", "latency_p50_ms", "latency_p99_ms",
                "failures"} <= row.keys()
    for name in ("privacy_cost.png", "latency.png"):
        assert (out / name).read_bytes().startswith(PNG)
    printed = capsys.readouterr().out
    assert "latency-greedy" in printed and "figures.json" in printed


def test_an_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["simulate", "moonbase", "--out", str(tmp_path)])
    assert exit_.value.code == 2
