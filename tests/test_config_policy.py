"""The owner's ``[waves]`` and ``[tide]`` settings (node/config_policy.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.errors import ConfigError
from islandrun.node.tide_capacity import BufferPreset, TideConfig
from islandrun.node.waves import Mode, RoutePolicy, decide
from islandrun.node.waves_inputs import IslandKind, RouteRequest
from islandrun.node.waves_objectives import DEFAULT_OBJECTIVES

from .waves_helpers import IDLE, island, local

P = Path("config.toml")
NODE = '[node]\nname = "phone"\n'
FULL = NODE + """
[waves]
mode = "constraint"
constraint_objective = "cost"
latency_ref_ms = 500.0
cost_ref = 0.05
max_failover = 0
secondary_local_min = 0.4
burstable_local_min = 0.9

[waves.weights]
cost = 1.0
latency = 2
trust = 0.0
energy = 10.0

[tide]
buffer = "aggressive"
"""


def parse(text: str) -> config.NodeConfig:
    return config.parse_config(text, P)


def test_without_the_sections_the_node_runs_the_built_in_policy_and_buffer() -> None:
    cfg = parse(NODE)
    policy, built_in = cfg.waves.policy(), RoutePolicy()
    assert [w for _, w in policy.scorers] == [o.weight for o in DEFAULT_OBJECTIVES]
    fields = [f.name for f in dataclasses.fields(RoutePolicy) if f.init and f.name != "weights"]
    assert all(getattr(policy, f) == getattr(built_in, f) for f in fields)
    assert TideConfig.preset(cfg.tide.preset) == TideConfig()


def test_every_setting_reaches_the_policy_and_tide() -> None:
    cfg = parse(FULL)
    policy = cfg.waves.policy()
    assert dict(policy.weights) == {"cost": 1.0, "latency": 2.0, "trust": 0.0, "energy": 10.0}
    assert len(policy.scorers) == 3  # a zero weight leaves its objective out
    assert policy.mode is Mode.CONSTRAINT and policy.constraint_objective == "cost"
    assert (policy.latency_ref_ms, policy.cost_ref, policy.max_failover) == (500.0, 0.05, 0)
    assert (policy.secondary_local_min, policy.burstable_local_min) == (0.4, 0.9)
    assert cfg.tide.preset is BufferPreset.AGGRESSIVE
    assert TideConfig.preset(cfg.tide.preset).buffer == 0.10


# A phone at its serve floor (willingness 0) and a fully charged friend reached
# over a slow link (300 ms; the phone itself 50 ms): paper Scenario 2.
LOW_PHONE = local(willingness=0.0, battery_pct=15.0, charging=False)
CHARGED_FRIEND = island("friend", IslandKind.FRIEND, latency_ms=300.0, battery_pct=90.0)


def chosen(text: str, here: object = LOW_PHONE) -> str:
    d = decide(RouteRequest(request_id="r"), 0.0, [here, CHARGED_FRIEND],
               parse(text).waves.policy(), IDLE)
    assert d.island is not None
    return d.island.device_id


def test_the_shipped_weights_send_a_low_phones_request_to_a_charged_friend() -> None:
    assert chosen(NODE) == "friend"
    # Energy only ever weighs on a device on battery: plugged in, the phone keeps it.
    assert chosen(NODE, dataclasses.replace(LOW_PHONE, charging=True, willingness=1.0)) == "here"


def test_the_owners_weights_steer_waves() -> None:
    assert chosen(NODE + "[waves.weights]\nenergy = 0.0\n") == "here"
    assert chosen(NODE + "[waves]\nmode = \"constraint\"\n") == "here"  # lowest latency


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        ("[waves.weights]\ncarbon = 0.2\n", 4,
         "unknown key [waves.weights].carbon; remove it (known: ['cost', 'energy', 'latency'"),
        ("[waves.weights]\ncost = 30\n", 4, "[waves.weights].cost: must be between 0 and 10"),
        ("[waves.weights]\nenergy = -0.1\n", 4, "[waves.weights].energy: must be between 0"),
        ('[waves.weights]\ntrust = "high"\n', 4, "[waves.weights].trust: expected a number"),
        ("[waves]\nweights = 0.3\n", 4, "[waves.weights] must be a table"),
        ('[waves]\nmode = "fastest"\n', 4, "[waves].mode: must be one of 'weighted', 'constraint'"),
        ('[waves]\nconstraint_objective = "speed"\n', 4, "must be one of 'cost', 'latency'"),
        ("[waves]\nlatency_ref_ms = 0\n", 4, "[waves].latency_ref_ms: must be a positive number"),
        ("[waves]\nmax_failover = 17\n", 4, "[waves].max_failover: must be 0..16, got 17"),
        ("[waves]\nmax_failover = 1.5\n", 4, "[waves].max_failover: expected a whole number"),
        ("[waves]\nsecondary_local_min = 2\n", 4, "must be a number in [0, 1], got 2.0"),
        ('[tide]\nbuffer = "huge"\n', 4,
         "[tide].buffer: must be one of 'conservative', 'moderate', 'aggressive'"),
        ("[tide]\nbuffer = 0.2\n", 4, "[tide].buffer: expected a string"),
    ],
)
def test_bad_values_name_file_line_and_fix(extra: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(NODE + extra)
    assert f"config.toml:{line}:" in str(info.value)
    assert words in str(info.value)


def test_the_sections_round_trip_through_update_config(tmp_path: Path) -> None:
    config.write_initial_config(tmp_path, "phone")
    cfg = config.update_config(tmp_path, lambda data: data.update(
        waves={"weights": {"energy": 0.5}}, tide={"buffer": "conservative"}))
    assert config.load_config(tmp_path).waves == cfg.waves
    assert cfg.waves.weights.energy == 0.5 and cfg.tide.preset is BufferPreset.CONSERVATIVE
