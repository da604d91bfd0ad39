"""TIDE's pure capacity model: buffers, hysteresis, trend prediction, in-flight, battery."""

from __future__ import annotations

import dataclasses
import math

import pytest

from islandrun.node import tide_capacity as tc
from islandrun.node.tide_capacity import (
    BufferPreset,
    CapacityReport,
    Sample,
    TideConfig,
    TideConfigError,
    TideState,
)

STEADY = dataclasses.replace(TideConfig.moderate(), min_trend_samples=100)  # no prediction


def sample(at: float, cpu: float, **kw: object) -> Sample:
    return Sample(at=at, cpu=cpu, memory=kw.pop("memory", 0.1), **kw)  # type: ignore[arg-type]


def feed(
    cpus: list[float], config: TideConfig = STEADY, state: TideState | None = None
) -> TideState:
    state = state or TideState()
    start = state.latest.at + 1.0 if state.latest else 0.0
    for i, cpu in enumerate(cpus):
        state = tc.observe(state, sample(start + i, cpu), config)
    return state


@pytest.mark.parametrize(
    ("preset", "buffer"),
    [
        (BufferPreset.CONSERVATIVE, 0.30),
        (BufferPreset.MODERATE, 0.20),
        (BufferPreset.AGGRESSIVE, 0.10),
    ],
)
def test_presets_match_the_paper(preset: BufferPreset, buffer: float) -> None:
    assert TideConfig.preset(preset).buffer == buffer


def test_presets_named_constructors() -> None:
    assert TideConfig.conservative().buffer == 0.30
    assert TideConfig.moderate().buffer == 0.20
    assert TideConfig.aggressive().buffer == 0.10


@pytest.mark.parametrize(
    "bad",
    [
        {"buffer": 1.0},
        {"buffer": -0.1},
        {"buffer": math.nan},
        {"interval_s": 0.0},
        {"min_trend_samples": 1},
        {"serve_floor_pct": 70.0, "comfortable_pct": 60.0},
    ],
)
def test_bad_config_is_our_error(bad: dict[str, float]) -> None:
    with pytest.raises(TideConfigError):
        TideConfig(**bad)  # type: ignore[arg-type]


def test_available_is_one_minus_the_busiest_resource() -> None:
    s = Sample(at=0.0, cpu=0.3, memory=0.5, gpu=0.7)
    assert tc.available_capacity(s, 0, STEADY) == pytest.approx(0.3)
    no_gpu = Sample(at=0.0, cpu=0.3, memory=0.5, gpu=None)
    assert tc.available_capacity(no_gpu, 0, STEADY) == pytest.approx(0.5)


def test_garbage_utilisation_counts_as_full() -> None:
    s = Sample(at=0.0, cpu=math.nan, memory=0.1)
    assert tc.available_capacity(s, 0, STEADY) == 0.0


def test_in_flight_requests_make_an_idle_sample_busy() -> None:
    idle = Sample(at=0.0, cpu=0.0, memory=0.0)
    config = dataclasses.replace(STEADY, per_request_load=0.35)
    assert tc.available_capacity(idle, 0, config) == 1.0
    assert tc.available_capacity(idle, 2, config) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("available", "buffer", "expected"),
    [(1.0, 0.2, 1.0), (0.2, 0.2, 0.0), (0.1, 0.2, 0.0), (0.6, 0.2, 0.5), (0.65, 0.3, 0.5)],
)
def test_headroom_is_normalised_above_the_buffer(
    available: float, buffer: float, expected: float
) -> None:
    assert tc.headroom(available, buffer) == pytest.approx(expected)


def test_hysteresis_falls_back_below_and_recovers_ten_points_above() -> None:
    # buffer 0.20: stop below available 0.20 (cpu > 0.80), resume at >= 0.30 (cpu <= 0.70).
    state = feed([0.5, 0.85])
    assert not state.accepting
    accepting = []
    for cpu in (0.78, 0.75, 0.72, 0.69, 0.75):
        state = feed([cpu], state=state)
        accepting.append(state.accepting)
    # 0.78 / 0.75 / 0.72 are above the buffer but inside the dead zone: still fallen back;
    # 0.69 clears it.
    assert accepting == [False, False, False, True, True]


def test_report_reflects_hysteresis() -> None:
    state = feed([0.5, 0.85, 0.75])
    report = tc.assess(state, now=state.latest.at, config=STEADY)  # type: ignore[union-attr]
    assert not report.accepting
    assert report.capacity == 0.0
    assert report.available == pytest.approx(0.25)


def test_trend_slope_of_a_line() -> None:
    assert tc.trend_slope([(0.0, 1.0), (1.0, 0.9), (2.0, 0.8)]) == pytest.approx(-0.1)
    assert tc.trend_slope([(0.0, 1.0)]) is None
    assert tc.trend_slope([(1.0, 1.0), (1.0, 0.5)]) is None


def test_exhaustion_predicted_from_a_falling_trend() -> None:
    points = [(0.0, 0.9), (1.0, 0.85), (2.0, 0.8)]  # falling 0.05/s, 0.6 above a 0.2 buffer
    assert tc.seconds_to_exhaustion(points, 0.2, 3) == pytest.approx(12.0)
    assert tc.seconds_to_exhaustion(points[:2], 0.2, 3) is None  # too few samples
    assert tc.seconds_to_exhaustion([(0.0, 0.5), (1.0, 0.6), (2.0, 0.7)], 0.2, 3) is None
    assert tc.seconds_to_exhaustion([(0.0, 0.5), (1.0, 0.1)], 0.2, 3) == 0.0


def test_predicted_exhaustion_stops_accepting_before_the_buffer_is_hit() -> None:
    config = dataclasses.replace(TideConfig.moderate(), horizon_s=10.0, trend_window_s=15.0)
    # cpu climbing 0.05/s from 0.30: at t=3 available is 0.55 and falling -> buffer in 7 s.
    state = feed([0.30, 0.35, 0.40, 0.45], config=config)
    assert state.latest is not None
    report = tc.assess(state, now=state.latest.at, config=config)
    assert report.available == pytest.approx(0.55)
    assert report.exhaustion_in_s == pytest.approx(7.0)
    assert not report.accepting
    # The same load, flat, is fine.
    flat = feed([0.45, 0.45, 0.45, 0.45], config=config)
    assert tc.assess(flat, now=3.0, config=config).accepting


def test_trend_window_forgets_old_samples() -> None:
    config = dataclasses.replace(TideConfig.moderate(), trend_window_s=3.0)
    state = feed([0.1] * 10, config=config)
    assert [t for t, _ in state.history] == [6.0, 7.0, 8.0, 9.0]


def test_in_flight_counts_immediately_and_never_goes_negative() -> None:
    config = dataclasses.replace(STEADY, per_request_load=0.35)
    state = feed([0.0], config=config)
    state = tc.begin_request(tc.begin_request(state))
    report = tc.assess(state, now=0.0, config=config)
    assert report.in_flight == 2
    assert report.available == pytest.approx(0.3)
    assert report.capacity == pytest.approx(0.125)
    state = tc.end_request(tc.end_request(tc.end_request(state)))
    assert state.in_flight == 0


def test_stale_or_missing_samples_report_exhausted() -> None:
    assert tc.assess(TideState(), now=0.0, config=STEADY) == CapacityReport.exhausted()
    state = feed([0.1])
    assert tc.assess(state, now=0.0 + STEADY.stale_after_s, config=STEADY).accepting
    assert tc.assess(state, now=0.1 + STEADY.stale_after_s, config=STEADY) == (
        CapacityReport.exhausted()
    )


@pytest.mark.parametrize(
    ("pct", "charging", "expected"),
    [
        (None, None, 1.0),  # mains power
        (5.0, True, 1.0),  # charging: lend freely
        (90.0, False, 1.0),
        (60.0, False, 1.0),
        (40.0, False, 0.5),
        (20.0, False, 0.0),  # at the floor
        (10.0, False, 0.0),
        (math.nan, False, 0.0),
        (30.0, None, 0.25),  # unknown charging state counts as not charging
    ],
)
def test_willingness_falls_with_battery_when_not_charging(
    pct: float | None, charging: bool | None, expected: float
) -> None:
    assert tc.willingness(pct, charging, floor_pct=20.0, comfortable_pct=60.0) == pytest.approx(
        expected
    )


def test_report_carries_battery_and_willingness() -> None:
    config = dataclasses.replace(STEADY, serve_floor_pct=30.0, comfortable_pct=50.0)
    state = tc.observe(TideState(), sample(0.0, 0.1, battery_pct=40.0, charging=False), config)
    report = tc.assess(state, now=0.0, config=config)
    assert (report.battery_pct, report.charging) == (40.0, False)
    assert report.willingness == pytest.approx(0.5)
