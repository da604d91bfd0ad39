"""Advert pacing (TEST preset: heartbeat 1 s, at most 10 adverts/s, bands of
0.1 capacity and 10 battery points)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from islandrun.node.advertiser import Advertiser, material_change
from islandrun.node.lighthouse_config import TEST
from islandrun.protocol.messages import DatasetInfo, ModelInfo
from tests.lighthouse_helpers import ALICE, NOW, advert

BASE = advert(ALICE, capacity=0.5, battery_pct=50.0, charging=False, serve_others=1.0)


@pytest.mark.parametrize(
    ("change", "material"),
    [
        ({"capacity": 0.59}, False),
        ({"capacity": 0.6}, True),  # exactly one band, despite 0.6 - 0.5 < 0.1 in floats
        ({"capacity": 0.35}, True),
        ({"battery_pct": 41.0}, False),
        ({"battery_pct": 40.0}, True),
        ({"battery_pct": None}, True),  # unplugged from a battery-less view, or the reverse
        ({"charging": True}, True),
        ({"serve_others": 0.5}, True),
        ({"serve_others": 0.95}, False),
        ({"models": ()}, True),
        ({"models": (ModelInfo(name="m", context=4096),)}, True),
        ({"datasets": (DatasetInfo(name="notes"),)}, True),
        ({"name": "renamed"}, True),
        ({"addresses": ("/ip4/10.0.0.2/tcp/4001",)}, True),
        ({"in_flight": 7}, False),
        ({"link_quality": 0.2}, False),
    ],
)
def test_material_changes(change: dict, material: bool) -> None:
    new = replace(BASE, **change)
    assert material_change(BASE, new, TEST) is material
    assert material_change(new, BASE, TEST) is material


def _published(at: float = NOW) -> Advertiser:
    pacer = Advertiser(TEST)
    pacer.published(BASE, at)
    return pacer


def test_the_first_advert_is_due_at_once() -> None:
    assert Advertiser(TEST).due(BASE, NOW)


def test_an_unchanged_advert_waits_for_the_heartbeat() -> None:
    pacer = _published()
    assert pacer.due_at(BASE, NOW + 0.5) == NOW + 1
    assert not pacer.due(BASE, NOW + 0.999)
    assert pacer.due(BASE, NOW + 1)


def test_a_material_change_goes_out_at_once_after_the_gap() -> None:
    pacer = _published()
    changed = replace(BASE, capacity=0.9)
    assert pacer.due_at(changed, NOW + 0.01) == NOW + 0.1  # rate limit
    assert pacer.due(changed, NOW + 0.3)
    assert pacer.due_at(changed, NOW + 0.3) == NOW + 0.3


def test_a_slow_drift_is_published_once_it_adds_up() -> None:
    pacer = _published()
    assert not pacer.due(replace(BASE, capacity=0.55), NOW + 0.5)
    assert pacer.due(replace(BASE, capacity=0.6), NOW + 0.5)


def test_never_more_than_the_rate_limit() -> None:
    pacer = Advertiser(TEST)
    times = []
    for step in range(300):  # a material change every 10 ms for 3 s
        now = NOW + step * 0.01
        current = advert(ALICE, capacity=(step % 2) * 0.9)
        if pacer.due(current, now):
            pacer.published(current, now)
            times.append(now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= TEST.min_publish_gap - 1e-9
    assert 25 <= len(times) <= 31


def test_heartbeats_keep_coming_when_nothing_changes() -> None:
    pacer = Advertiser(TEST)
    times = []
    for step in range(100):  # 5 s in 50 ms steps
        now = NOW + step * 0.05
        if pacer.due(BASE, now):
            pacer.published(BASE, now)
            times.append(now)
    assert times == pytest.approx([NOW + s for s in range(5)])


def test_a_clock_stepping_back_makes_the_advert_due() -> None:
    pacer = _published()
    assert pacer.due(BASE, NOW - 60)
