"""Parsing route snapshot files: strict, with errors that name the place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from islandrun.node.route_snapshot import Measure, SnapshotFileError, parse_snapshot
from islandrun.node.waves import Mode
from islandrun.node.waves_inputs import IslandKind, Tier

EXAMPLE = json.loads(
    (Path(__file__).parent.parent / "examples" / "route-snapshot.json").read_text()
)


def variant(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def test_example_parses_into_waves_inputs() -> None:
    snap = parse_snapshot(EXAMPLE)
    assert snap.request.request_id == "example-1"
    assert snap.request.tier is Tier.SECONDARY
    assert snap.request.datasets == frozenset({"notes"})
    assert snap.request.tokens == -(-len(snap.prompt) // 4)
    assert snap.islands is not None
    assert [i.kind for i in snap.islands][:2] == [IslandKind.PERSONAL, IslandKind.PERSONAL]
    assert snap.islands[4].metrics == {"carbon_g_per_kwh": 350}
    assert snap.local is not None and snap.local is not Measure.THIS_DEVICE
    assert snap.local.capacity == 0.35
    assert snap.policy.mode is Mode.WEIGHTED


def test_minimal_file_uses_defaults() -> None:
    snap = parse_snapshot({
        "islands": [{"device_id": "a", "kind": "cloud", "privacy": 0.3, "trust": 0.4}],
        "request": {"prompt": "hi", "tokens": 7},
    })
    assert snap.local is Measure.THIS_DEVICE
    assert snap.islands is not None and snap.islands[0].name == "a"
    assert snap.request.tokens == 7
    assert snap.cached_islands == ()


def test_null_islands_and_local_select_the_fallbacks() -> None:
    snap = parse_snapshot(variant(islands=None, local=None, cached_islands=EXAMPLE["islands"]))
    assert snap.islands is None
    assert snap.local is None
    assert len(snap.cached_islands) == 5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "snapshot: unknown key(s) extra"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.pop("request"), "request: missing"),
        (lambda d: d.pop("islands"), "islands: missing"),
        (lambda d: d["islands"][2].update(privacy=1.5), "islands[2]: island 'alex-phone': privacy"),
        (lambda d: d["islands"][1].update(kind="moon"), "islands[1].kind: must be one of"),
        (lambda d: d["islands"][1].pop("trust"), "islands[1]: missing trust"),
        (lambda d: d["islands"][1].update(models="llama"), "islands[1].models: must be a list"),
        (lambda d: d["islands"][1].update(privacy_score=1), "islands[1]: unknown key(s)"),
        (lambda d: d["islands"].append(d["islands"][0]), "'laptop' appears twice"),
        (lambda d: d["request"].pop("prompt"), "request.prompt: must be a string"),
        (lambda d: d["request"].update(tier="urgent"), "request.tier: must be one of primary"),
        (lambda d: d["request"].update(max_cost=-1), "request: max_cost"),
        (lambda d: d["policy"].update(mode="fast"), "policy.mode"),
        (lambda d: d["policy"].update(weights={"speed": 1}), "unknown objectives: speed"),
        (lambda d: d.update(local={"capacity": 2}), "local: needs capacity"),
        (lambda d: d.update(islands={}), "islands: must be a list"),
        (lambda d: d.update(request=[]), "request: must be a JSON object"),
    ],
)
def test_invalid_files_name_the_place(mutate: Any, message: str) -> None:
    data = copy.deepcopy(EXAMPLE)
    mutate(data)
    with pytest.raises(SnapshotFileError) as info:
        parse_snapshot(data)
    assert message in str(info.value)
    assert "diabetic" not in str(info.value)  # the prompt never appears in an error


def test_not_an_object_at_all() -> None:
    with pytest.raises(SnapshotFileError, match="snapshot: must be a JSON object"):
        parse_snapshot([1, 2])
