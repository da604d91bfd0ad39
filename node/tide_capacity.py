"""TIDE's capacity model: pure maths from resource samples to a capacity report.

TIDE (paper §IX, "Temporal Island Demand Evaluator") says how much more work
this device can take on. This module is its pure core: it never reads a clock
or the system; samples and times come in as arguments. The sampler that reads
psutil / pynvml once a second lives in :mod:`islandrun.node.tide`.

Theory of operation
-------------------
1. *Available capacity* (paper Eq. 3) is ``1 - max(cpu, memory, gpu)``, each a
   utilisation in [0, 1]. In-flight requests count too: a device running two
   generations is not idle even if a sample lands between two tokens, so the
   utilisation is at least ``in_flight * per_request_load``.
2. The user's *buffer* (conservative 30 %, moderate 20 %, aggressive 10 %) is
   capacity held back for the owner. *Capacity* in a report is the headroom
   above the buffer, normalised to [0, 1]: ``(available - buffer) / (1 - buffer)``,
   so 1.0 means idle and 0.0 means "at the buffer or below", whatever the preset.
3. *Hysteresis* (§IX-C): the device stops accepting work when ``available``
   falls below the buffer and starts again only when it is ``recovery_margin``
   (10 points) above it, so load hovering at the threshold does not flap.
4. *Exhaustion prediction*: a least-squares line through the samples of the
   last ``trend_window_s`` seconds; if it reaches the buffer within
   ``horizon_s`` the device stops accepting now (proactive offloading).
5. *Willingness to serve others* depends on the battery: on mains or charging
   it is 1; on battery it falls linearly from 1 at ``comfortable_pct`` to 0 at
   the owner's ``serve_floor_pct``. It goes into the device's advert; it does
   not limit the owner's own requests.

What this is not: it does not decide where a request runs (that is WAVES) and
it does not sample anything (that is :mod:`islandrun.node.tide`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from islandrun.protocol.errors import IslandRunError


class TideConfigError(IslandRunError):
    """A TIDE setting is out of range; the message names the setting."""


class BufferPreset(enum.Enum):
    """The paper's buffer presets: the fraction of capacity kept for the owner."""

    CONSERVATIVE = 0.30  # offload early; the device stays responsive
    MODERATE = 0.20  # the default trade-off
    AGGRESSIVE = 0.10  # use the device hard; fewer paid cloud requests


def _require_fraction(name: str, value: float, *, below_one: bool = False) -> None:
    top_ok = value < 1.0 if below_one else value <= 1.0
    if not (math.isfinite(value) and value >= 0.0 and top_ok):
        bound = "[0, 1)" if below_one else "[0, 1]"
        raise TideConfigError(f"{name} must be a number in {bound}, got {value!r}")


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise TideConfigError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TideConfig:
    """TIDE's settings. Presets: :meth:`conservative`, :meth:`moderate`, :meth:`aggressive`."""

    # Fraction of capacity kept for the owner (paper §IX-A); in [0, 1).
    buffer: float = BufferPreset.MODERATE.value
    # Hysteresis dead zone (§IX-C): recover only when available >= buffer + this.
    recovery_margin: float = 0.10
    # Seconds between samples; the paper samples every second.
    interval_s: float = 1.0
    # Seconds of samples the exhaustion trend is fitted over. Longer is steadier
    # but reacts later to a sudden load.
    trend_window_s: float = 15.0
    # Seconds ahead the trend is projected; hitting the buffer within it means
    # "stop accepting now".
    horizon_s: float = 10.0
    # Minimum number of samples before a trend is trusted.
    min_trend_samples: int = 3
    # Utilisation each in-flight generation is assumed to cause at least.
    per_request_load: float = 0.35
    # Samples older than this make the report "exhausted" (fail closed).
    stale_after_s: float = 5.0
    # On battery and not charging: willingness is 0 at or below this percentage...
    serve_floor_pct: float = 20.0
    # ...and 1 at or above this one, linear in between.
    comfortable_pct: float = 60.0

    def __post_init__(self) -> None:
        _require_fraction("buffer", self.buffer, below_one=True)
        _require_fraction("recovery_margin", self.recovery_margin)
        _require_fraction("per_request_load", self.per_request_load)
        for name in ("interval_s", "trend_window_s", "horizon_s", "stale_after_s"):
            _require_positive(name, getattr(self, name))
        if self.min_trend_samples < 2:
            raise TideConfigError("min_trend_samples must be at least 2 (a line needs two points)")
        if not 0.0 <= self.serve_floor_pct < self.comfortable_pct <= 100.0:
            raise TideConfigError(
                "need 0 <= serve_floor_pct < comfortable_pct <= 100, got "
                f"{self.serve_floor_pct!r} and {self.comfortable_pct!r}"
            )

    @classmethod
    def preset(cls, preset: BufferPreset) -> TideConfig:
        """The config for a buffer preset (change other fields with ``dataclasses.replace``)."""
        return cls(buffer=preset.value)

    @classmethod
    def conservative(cls) -> TideConfig:
        return cls.preset(BufferPreset.CONSERVATIVE)

    @classmethod
    def moderate(cls) -> TideConfig:
        return cls.preset(BufferPreset.MODERATE)

    @classmethod
    def aggressive(cls) -> TideConfig:
        return cls.preset(BufferPreset.AGGRESSIVE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One reading of this device. Utilisations are fractions in [0, 1]."""

    at: float  # seconds, on the caller's clock
    cpu: float
    memory: float
    gpu: float | None = None  # None: no GPU on this device
    battery_pct: float | None = None  # None: no battery (mains power)
    charging: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityReport:
    """What TIDE tells WAVES and the advert about this device right now."""

    capacity: float  # headroom above the buffer, normalised to [0, 1]
    available: float  # 1 - utilisation, before the buffer, in [0, 1]
    accepting: bool  # hysteresis and prediction: may this device take new work?
    exhaustion_in_s: float | None  # predicted seconds until the buffer is hit
    in_flight: int
    willingness: float  # to serve other people's requests, in [0, 1]
    battery_pct: float | None
    charging: bool | None

    @classmethod
    def exhausted(cls) -> CapacityReport:
        """The fail-closed report: used when TIDE has no fresh sample or has failed."""
        return cls(
            capacity=0.0,
            available=0.0,
            accepting=False,
            exhaustion_in_s=0.0,
            in_flight=0,
            willingness=0.0,
            battery_pct=None,
            charging=None,
        )


@dataclass(frozen=True, slots=True)
class TideState:
    """TIDE's memory between samples.

    Invariant: ``history`` holds ``(at, available)`` pairs, oldest first, all
    within ``trend_window_s`` of the newest; ``latest`` is the newest sample.
    """

    history: tuple[tuple[float, float], ...] = ()
    latest: Sample | None = None
    accepting: bool = True
    in_flight: int = 0


def _unit(value: float | None) -> float:
    """A utilisation clamped to [0, 1]; a missing or non-finite one counts as full."""
    if value is None or not math.isfinite(value):
        return 1.0
    return min(1.0, max(0.0, value))


def available_capacity(sample: Sample, in_flight: int, config: TideConfig) -> float:
    """Paper Eq. 3 with in-flight accounting: ``1 - max(utilisations)``."""
    gpu = 0.0 if sample.gpu is None else _unit(sample.gpu)
    busy = max(_unit(sample.cpu), _unit(sample.memory), gpu, in_flight * config.per_request_load)
    return 1.0 - min(1.0, busy)


def headroom(available: float, buffer: float) -> float:
    """Capacity above the buffer, normalised so that 1.0 is an idle device."""
    return max(0.0, (available - buffer) / (1.0 - buffer))


def trend_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope (per second) of ``(t, value)`` points; None if undefined."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0.0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def seconds_to_exhaustion(
    points: Sequence[tuple[float, float]], buffer: float, min_samples: int
) -> float | None:
    """Seconds until the fitted trend of ``available`` reaches ``buffer``.

    0.0 when the newest point is already at or below the buffer; None when
    there are too few points or the trend is flat or rising.
    """
    if not points:
        return None
    current = points[-1][1]
    if current <= buffer:
        return 0.0
    slope = trend_slope(points) if len(points) >= min_samples else None
    if slope is None or slope >= 0.0:
        return None
    return (current - buffer) / -slope


def willingness(
    battery_pct: float | None, charging: bool | None, floor_pct: float, comfortable_pct: float
) -> float:
    """How willing a device is to serve others, from its battery, in [0, 1].

    Mains power (no battery) or charging: 1.0. On battery: 0 at or below
    ``floor_pct``, 1 at or above ``comfortable_pct``, linear in between. A
    non-finite battery reading counts as empty (fail closed).
    """
    if battery_pct is None or charging:
        return 1.0
    if not math.isfinite(battery_pct) or battery_pct <= floor_pct:
        return 0.0
    return min(1.0, (battery_pct - floor_pct) / (comfortable_pct - floor_pct))


def observe(state: TideState, sample: Sample, config: TideConfig) -> TideState:
    """Fold one sample into the state: trend window and hysteresis."""
    available = available_capacity(sample, state.in_flight, config)
    horizon_start = sample.at - config.trend_window_s
    kept = tuple(p for p in state.history if horizon_start <= p[0] < sample.at)
    history = (*kept, (sample.at, available))
    eta = seconds_to_exhaustion(history, config.buffer, config.min_trend_samples)
    threatened = eta is not None and eta <= config.horizon_s
    if state.accepting:
        accepting = available >= config.buffer and not threatened
    else:
        accepting = available >= config.buffer + config.recovery_margin and not threatened
    return TideState(history=history, latest=sample, accepting=accepting, in_flight=state.in_flight)


def begin_request(state: TideState) -> TideState:
    """Count one more in-flight request on this device."""
    return dataclasses.replace(state, in_flight=state.in_flight + 1)


def end_request(state: TideState) -> TideState:
    """Count one in-flight request as finished (never below zero)."""
    return dataclasses.replace(state, in_flight=max(0, state.in_flight - 1))


def assess(state: TideState, now: float, config: TideConfig) -> CapacityReport:
    """The capacity report at ``now``; exhausted when the newest sample is stale."""
    sample = state.latest
    if sample is None or not state.history or now - sample.at > config.stale_after_s:
        return CapacityReport.exhausted()
    # In-flight requests admitted since the last sample count immediately.
    available = min(state.history[-1][1], available_capacity(sample, state.in_flight, config))
    accepting = state.accepting and available >= config.buffer
    return CapacityReport(
        capacity=headroom(available, config.buffer) if accepting else 0.0,
        available=available,
        accepting=accepting,
        exhaustion_in_s=seconds_to_exhaustion(
            state.history, config.buffer, config.min_trend_samples
        ),
        in_flight=state.in_flight,
        willingness=willingness(
            sample.battery_pct, sample.charging, config.serve_floor_pct, config.comfortable_pct
        ),
        battery_pct=sample.battery_pct,
        charging=sample.charging,
    )
