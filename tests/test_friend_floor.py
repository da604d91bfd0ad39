"""The friend battery floor and its config; `--fixed-battery`; `run --ble` with no radio."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.errors import ConfigError
from islandrun.node.friend_floor import refusal, tide_with_floor
from islandrun.node.tide import Tide
from islandrun.node.tide_capacity import CapacityReport, TideConfig, willingness
from islandrun.node.transports_setup import ble_choice
from islandrun.node.waves_inputs import IslandKind

from .mesh_procs import ISLANDNODE, NodeProc, wait_until


def report(battery_pct: float | None, charging: bool | None = False) -> CapacityReport:
    return CapacityReport(
        capacity=1.0, available=1.0, accepting=True, exhaustion_in_s=None, in_flight=0,
        willingness=1.0, battery_pct=battery_pct, charging=charging,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("battery", "charging", "kind", "refused"),
    [
        (25.0, False, IslandKind.FRIEND, True),
        (30.0, False, IslandKind.EDGE, True),  # at the floor: refused
        (31.0, False, IslandKind.FRIEND, False),
        (25.0, True, IslandKind.FRIEND, False),  # charging
        (None, None, IslandKind.FRIEND, False),  # mains power
        (5.0, False, IslandKind.PERSONAL, False),  # the owner's own device
        (25.0, False, None, True),  # no record at all: treated as a stranger
    ],
)
def test_friends_are_refused_at_or_below_the_floor_on_battery(
    battery: float | None, charging: bool | None, kind: IslandKind | None, refused: bool
) -> None:
    why = refusal(report(battery, charging), kind, 0.3)
    assert (why is not None) is refused
    if why is not None:
        assert f"{battery:.0f}%" in why and "30%" in why


@pytest.mark.parametrize("floor", [0.0, 0.2, 0.3, 0.55, 0.8])
def test_the_advert_stops_offering_service_at_the_floor_and_not_above_the_ramp(
    floor: float,
) -> None:
    cfg = tide_with_floor(TideConfig.moderate(), floor)
    assert cfg.serve_floor_pct == pytest.approx(floor * 100)
    at = willingness(floor * 100, False, cfg.serve_floor_pct, cfg.comfortable_pct)
    above = willingness(floor * 100 + 21, False, cfg.serve_floor_pct, cfg.comfortable_pct)
    assert at == 0.0
    assert above > 0.0


def test_config_reads_the_floor_and_the_ble_section(tmp_path: Path) -> None:
    text = '[node]\nname = "b"\nfriend_battery_floor = 0.3\n[ble]\nenabled = true\n'
    cfg = config.parse_config(text, tmp_path / "config.toml")
    assert cfg.node.friend_battery_floor == 0.3
    choice = ble_choice(cfg.ble, enabled=False, required=False)
    assert choice is not None and not choice.required
    default = config.parse_config('[node]\nname = "b"\n', tmp_path / "config.toml")
    assert ble_choice(default.ble, enabled=False, required=False) is None
    assert ble_choice(default.ble, enabled=False, required=True) is not None


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("[node]\nname = 'b'\nfriend_battery_floor = 0.95", "between 0 and 0.8"),
        ("[node]\nname = 'b'\n[ble]\nadapter = 'radio'", "bleak"),
        ("[node]\nname = 'b'\n[ble]\nenabled = 'yes'", "true or false"),
    ],
)
def test_bad_ble_settings_are_refused_with_the_line(
    tmp_path: Path, line: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as error:
        config.parse_config(line, tmp_path / "config.toml")
    assert "config.toml:" in str(error.value)


async def test_fixed_battery_reads_as_that_charge_not_charging() -> None:
    tide = Tide.for_this_device(TideConfig.moderate(), fixed_load=0.1, fixed_battery=0.15)
    await tide.sample_once()
    got = tide.report()
    assert (got.battery_pct, got.charging) == (15.0, False)
    assert got.willingness == 0.0  # below the default 20% floor


@pytest.mark.slow
def test_run_without_a_radio_warns_and_runs_on_the_lan_or_refuses_when_required(
    tmp_path: Path,
) -> None:
    node = NodeProc(tmp_path, "hiker")
    node.configure([])
    required = subprocess.run(
        [ISLANDNODE, "--home", str(node.home), "run", "--ble-required", "--api", "off"],
        capture_output=True, text=True, timeout=60,
    )
    assert required.returncode == 1
    assert "no Bluetooth adapter was found" in required.stderr
    assert "Traceback" not in required.stderr
    node.start("--ble", "--fixed-battery", "0.5")
    try:
        assert node.status()["battery_pct"] == 50.0
        log = wait_until(lambda: "Running on the LAN only" in node.log.read_text()
                         and node.log.read_text(), 30, "the no-radio warning")
        assert "no Bluetooth adapter was found" in log and "Traceback" not in log
        assert all(a.startswith("/ip4/") for a in node.status()["addresses"])
    finally:
        assert node.stop() == 0
