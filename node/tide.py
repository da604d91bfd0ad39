"""TIDE's sampler: reads this device's load once a second without blocking trio.

TIDE (paper §IX) watches CPU, memory, GPU and battery and turns them into a
:class:`~islandrun.node.tide_capacity.CapacityReport` through the pure model in
:mod:`islandrun.node.tide_capacity`. This module is the I/O edge: the system
readers (psutil; pynvml where an NVIDIA GPU exists) and the trio task that
calls them in a worker thread every ``interval_s``.

Every reader sits behind one small interface, :class:`Source` (``read()``), so
tests inject fake readings — including a battery, which the machines these
tests run on do not have. Readers never raise for "this device has no GPU /
no battery": they return ``None``. A reader that fails for another reason
skips that sample; if samples stop arriving, :meth:`Tide.report` goes stale
and reports the device exhausted (fail closed, paper §IV-B).

What this is not: no routing (WAVES) and no adverts (LIGHTHOUSE); it only
knows this device.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import trio

from islandrun.node import tide_capacity as core
from islandrun.node.tide_capacity import CapacityReport, Sample, TideConfig, TideState

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Source(Protocol[T_co]):
    """Something that reads one kind of resource; ``read`` may block."""

    def read(self) -> T_co: ...


@dataclass(frozen=True, slots=True)
class Load:
    """CPU and memory utilisation, fractions in [0, 1]."""

    cpu: float
    memory: float


@dataclass(frozen=True, slots=True)
class Battery:
    """Battery charge in percent and whether it is charging (None: unknown)."""

    percent: float
    charging: bool | None


class PsutilLoad:
    """CPU and memory from psutil. CPU is the utilisation since the previous read."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # primes the counter; the first value is meaningless

    def read(self) -> Load:
        return Load(
            cpu=self._psutil.cpu_percent(interval=None) / 100.0,
            memory=self._psutil.virtual_memory().percent / 100.0,
        )


@dataclass(frozen=True, slots=True)
class FixedLoad:
    """A constant load reading, for tests and demos that must not depend on
    how busy the machine running them is (``islandnode run --fixed-load``)."""

    load: Load

    def read(self) -> Load:
        return self.load


class PsutilBattery:
    """Battery from psutil; ``None`` on a device without one."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil

    def read(self) -> Battery | None:
        sensors = getattr(self._psutil, "sensors_battery", None)
        info = sensors() if sensors is not None else None
        if info is None:
            return None
        return Battery(percent=float(info.percent), charging=info.power_plugged)


@dataclass(frozen=True, slots=True)
class FixedBattery:
    """A constant battery reading, for tests and demos on machines without a
    battery (``islandnode run --fixed-battery``); ``None`` reads as mains power."""

    battery: Battery | None

    def read(self) -> Battery | None:
        return self.battery


class NoGpu:
    """The GPU source of a device without a usable NVIDIA GPU."""

    def read(self) -> float | None:
        return None


class NvmlGpu:
    """Utilisation of the busiest NVIDIA GPU: max(compute, memory), in [0, 1]."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> NvmlGpu | NoGpu:
        """An NVML reader, or :class:`NoGpu` when pynvml, the driver or a GPU is missing."""
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:  # ImportError, NVMLError_LibraryNotFound, driver errors...
            return NoGpu()
        return cls(pynvml, handles) if handles else NoGpu()

    def read(self) -> float | None:
        busiest: float | None = None
        for handle in self._handles:
            try:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # a GPU that fell off the bus reads as no GPU, never a crash
                continue
            used = max(rates.gpu / 100.0, memory.used / memory.total if memory.total else 0.0)
            busiest = used if busiest is None else max(busiest, used)
        return busiest


Offload = Callable[[Callable[[], T]], Awaitable[T]]


async def _in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


class Tide:
    """This device's TIDE: samples on a schedule, reports capacity on demand.

    ``offload`` runs a blocking read; it is ``trio.to_thread.run_sync`` by
    default. Tests with fake, non-blocking sources may pass an inline runner
    so that virtual time under ``MockClock`` stays exact.
    """

    def __init__(
        self,
        config: TideConfig,
        *,
        load: Source[Load],
        gpu: Source[float | None],
        battery: Source[Battery | None],
        offload: Offload[Any] = _in_thread,
    ) -> None:
        self.config = config
        self._sources = (load, gpu, battery)
        self._offload = offload
        self._state = TideState()
        self.failed_reads = 0

    @classmethod
    def for_this_device(
        cls,
        config: TideConfig,
        *,
        fixed_load: float | None = None,
        fixed_battery: float | None = None,
    ) -> Tide:
        """A TIDE reading this machine through psutil and, if present, pynvml.

        ``fixed_load`` (a fraction; the GPU then counts as absent) and
        ``fixed_battery`` (a charge fraction, not charging) replace the
        readings, for tests and demos (``islandnode run --fixed-load``,
        ``--fixed-battery``).
        """
        if fixed_load is None:
            load: Source[Load] = PsutilLoad()
            gpu: Source[float | None] = NvmlGpu.open()
        else:
            load, gpu = FixedLoad(Load(cpu=fixed_load, memory=fixed_load)), NoGpu()
        battery: Source[Battery | None] = (
            PsutilBattery() if fixed_battery is None
            else FixedBattery(Battery(percent=fixed_battery * 100.0, charging=False))
        )  # fmt: skip
        return cls(config, load=load, gpu=gpu, battery=battery)

    @property
    def state(self) -> TideState:
        return self._state

    def _read_all(self) -> tuple[Load, float | None, Battery | None]:
        load, gpu, battery = self._sources
        return load.read(), gpu.read(), battery.read()

    async def sample_once(self) -> bool:
        """Take one sample now; False (and the sample skipped) if a reader failed."""
        try:
            load, gpu, battery = await self._offload(self._read_all)
        except Exception:
            self.failed_reads += 1
            return False
        sample = Sample(
            at=trio.current_time(),
            cpu=load.cpu,
            memory=load.memory,
            gpu=gpu,
            battery_pct=None if battery is None else battery.percent,
            charging=None if battery is None else battery.charging,
        )
        self._state = core.observe(self._state, sample, self.config)
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample every ``interval_s`` on a fixed grid, forever; started once a sample exists."""
        start = trio.current_time()
        await self.sample_once()
        task_status.started()
        for tick in itertools.count(1):
            await trio.sleep_until(start + tick * self.config.interval_s)
            await self.sample_once()

    def report(self) -> CapacityReport:
        """The capacity report now (trio time); exhausted if samples are stale."""
        return core.assess(self._state, trio.current_time(), self.config)

    def begin_request(self) -> None:
        """Count a request this device starts running (pair with :meth:`end_request`)."""
        self._state = core.begin_request(self._state)

    def end_request(self) -> None:
        self._state = core.end_request(self._state)
