"""The LIGHTHOUSE config: presets are valid and consistent, nonsense is refused."""

from __future__ import annotations

import dataclasses
import math

import pytest

from islandrun.node.errors import ConfigError
from islandrun.node.lighthouse_config import BLE, LAN, TEST, LighthouseConfig


@pytest.mark.parametrize("preset", [LAN, BLE, TEST], ids=["LAN", "BLE", "TEST"])
def test_presets_are_consistent(preset: LighthouseConfig) -> None:
    # An advert outlives the silence after which its sender would be suspected.
    assert preset.advert_ttl > preset.suspect_after
    # Heartbeats are not throttled by the rate limit.
    assert preset.heartbeat_interval >= preset.min_publish_gap


def test_lan_derived_times() -> None:
    assert (LAN.suspect_after, LAN.dead_after, LAN.min_publish_gap) == (6.0, 30.0, 0.5)


@pytest.mark.parametrize(
    "change",
    [
        {"heartbeat_interval": 0.0},
        {"missed_heartbeats": 0},
        {"suspicion_min": 9.0},  # above suspicion_max
        {"suspicion_max": math.inf},
        {"reap_after": -1.0},
        {"advert_ttl": 1.0},  # not longer than the heartbeat
        {"max_adverts_per_s": math.nan},
        {"confirmations": -1},
    ],
)
def test_invalid_configs_are_refused(change: dict) -> None:
    with pytest.raises(ConfigError, match="lighthouse"):
        dataclasses.replace(TEST, **change)
