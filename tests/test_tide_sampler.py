"""TIDE's sampler: schedule under a mock clock, fake sources, real readers never raise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import trio
import trio.testing

from islandrun.node.tide import Battery, Load, NoGpu, NvmlGpu, PsutilBattery, PsutilLoad, Tide
from islandrun.node.tide_capacity import CapacityReport, TideConfig

T = TypeVar("T")


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def inline(fn: Callable[[], T]) -> T:
    """Runs a fake (non-blocking) read on the trio thread so virtual time stays exact."""
    return fn()


class Script:
    """A fake source that returns scripted readings, repeating the last one."""

    def __init__(self, *values: object) -> None:
        self._values: Iterator[object] = iter(values)
        self._last = values[-1]
        self.reads = 0

    def read(self) -> object:
        self.reads += 1
        self._last = next(self._values, self._last)
        if isinstance(self._last, Exception):
            raise self._last
        return self._last


def make_tide(load: Script, battery: Script | None = None, **config: float) -> Tide:
    return Tide(
        TideConfig(**config),  # type: ignore[arg-type]
        load=load,  # type: ignore[arg-type]
        gpu=NoGpu(),
        battery=battery or Script(None),  # type: ignore[arg-type]
        offload=inline,
    )


async def test_samples_every_interval_on_a_fixed_grid(clock: trio.testing.MockClock) -> None:
    load = Script(Load(cpu=0.1, memory=0.2))
    tide = make_tide(load)
    async with trio.open_nursery() as nursery:
        await nursery.start(tide.run)
        assert load.reads == 1
        await trio.sleep(5.5)
        assert load.reads == 6
        assert [t for t, _ in tide.state.history][-3:] == [3.0, 4.0, 5.0]
        nursery.cancel_scope.cancel()


async def test_report_follows_the_readings(clock: trio.testing.MockClock) -> None:
    load = Script(Load(cpu=0.1, memory=0.2), Load(cpu=0.95, memory=0.2))
    tide = make_tide(load)
    async with trio.open_nursery() as nursery:
        await nursery.start(tide.run)
        assert tide.report().accepting
        assert tide.report().available == pytest.approx(0.8)
        await trio.sleep(1.5)
        assert not tide.report().accepting
        nursery.cancel_scope.cancel()


async def test_fake_battery_reaches_the_report(clock: trio.testing.MockClock) -> None:
    tide = make_tide(
        Script(Load(cpu=0.0, memory=0.0)),
        battery=Script(Battery(percent=40.0, charging=False), Battery(percent=40.0, charging=True)),
        serve_floor_pct=20.0,
        comfortable_pct=60.0,
    )
    assert await tide.sample_once()
    assert tide.report().willingness == pytest.approx(0.5)
    assert (tide.report().battery_pct, tide.report().charging) == (40.0, False)
    assert await tide.sample_once()
    assert tide.report().willingness == 1.0


async def test_failing_reader_goes_stale_and_reports_exhausted(
    clock: trio.testing.MockClock,
) -> None:
    load = Script(Load(cpu=0.1, memory=0.1), OSError("sensor gone"))
    tide = make_tide(load, stale_after_s=3.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(tide.run)
        assert tide.report().accepting
        await trio.sleep(3.5)
        assert tide.failed_reads == 3
        assert tide.report() == CapacityReport.exhausted()
        nursery.cancel_scope.cancel()


async def test_in_flight_accounting(clock: trio.testing.MockClock) -> None:
    tide = make_tide(Script(Load(cpu=0.0, memory=0.0)), per_request_load=0.4)
    await tide.sample_once()
    tide.begin_request()
    tide.begin_request()
    report = tide.report()
    assert (report.in_flight, report.available) == (2, pytest.approx(0.2))
    tide.end_request()
    assert tide.report().in_flight == 1


async def test_blocking_reads_run_in_a_thread_without_blocking_trio() -> None:
    class Slow:
        def read(self) -> Load:
            time.sleep(0.3)
            return Load(cpu=0.0, memory=0.0)

    tide = Tide(TideConfig(), load=Slow(), gpu=NoGpu(), battery=PsutilBattery())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        assert await tide.sample_once()
        nursery.cancel_scope.cancel()
    assert ticks >= 5  # the event loop kept running while the read slept


def test_real_readers_return_clean_values() -> None:
    load = PsutilLoad().read()
    assert 0.0 <= load.cpu <= 1.0
    assert 0.0 <= load.memory <= 1.0
    battery = PsutilBattery().read()  # None on machines without a battery
    assert battery is None or 0.0 <= battery.percent <= 100.0
    gpu = NvmlGpu.open()  # NoGpu without an NVIDIA GPU; never raises
    reading = gpu.read()
    assert reading is None or 0.0 <= reading <= 1.0
    assert isinstance(gpu, NvmlGpu) or reading is None


async def test_for_this_device_samples_for_real() -> None:
    tide = Tide.for_this_device(TideConfig())
    assert await tide.sample_once()
    report = tide.report()
    assert 0.0 <= report.available <= 1.0
    assert 0.0 <= report.capacity <= 1.0
