"""Fault injection: which fault hits which island, and when, in a simulated run.

What it is: :func:`schedule` puts one named fault on the simulator's clock for every
group of a run. The *victim* is the group's first device that is neither held by the
user nor a cloud (the clinic's edge server, the home NAS, phone B, the firm server);
the battery fault hits the group's first battery-powered device instead. Times are
fractions of the workload's span, so every scenario sees the fault mid-run:

==============  ==============================================================
``crash``       the victim is killed (``kill -9``) at 30 % and stays down
``freeze``      the victim stops (``SIGSTOP``) from 30 % to 60 %
``partition``   the victim and the cloud are cut off from 30 % to 60 %
``loss``        half of all adverts are lost, on every link, all run long
``battery``     the battery device drains 0.2 points a second on top of its work
``lying-tide``  the victim's adverts claim an idle, willing device all run long
``flapping``    the victim is down 15 s of every 30 s from 20 % to 80 %
==============  ==============================================================

What it is not: the mechanics of a fault (those are :class:`World` methods, which
follow :mod:`islandrun.transports.memory`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from islandrun.node.waves_inputs import IslandKind
from islandrun.protocol.errors import IslandRunError

from .world import Island, World


class UnknownFault(IslandRunError):
    """The fault name is not one of :data:`FAULTS`."""


FLAP_PERIOD_S = 30.0
BATTERY_DRAIN_PCT_PER_S = 0.2
LOSS = 0.5


def victim(group: Sequence[Island]) -> Island:
    for island in group:
        if not island.spec.origin and island.spec.kind is not IslandKind.CLOUD:
            return island
    return group[0]


def _battery(group: Sequence[Island]) -> Island | None:
    return next((i for i in group if i.battery is not None and not i.spec.charging), None)


def _crash(world: World, group: Sequence[Island], span: float) -> None:
    world.loop.at(0.3 * span, world.crash, victim(group))


def _freeze(world: World, group: Sequence[Island], span: float) -> None:
    target = victim(group)
    world.loop.at(0.3 * span, world.freeze, target)
    world.loop.at(0.6 * span, world.thaw, target)


def _partition(world: World, group: Sequence[Island], span: float) -> None:
    cut = [victim(group), *(i for i in group if i.spec.kind is IslandKind.CLOUD)]
    world.loop.at(0.3 * span, world.partition, cut)
    world.loop.at(0.6 * span, world.heal)


def _loss(world: World, group: Sequence[Island], span: float) -> None:
    world.loss = LOSS


def _drain(world: World, group: Sequence[Island], span: float) -> None:
    target = _battery(group)
    if target is not None:
        target.extra_drain_pct_per_s = BATTERY_DRAIN_PCT_PER_S


def _lie(world: World, group: Sequence[Island], span: float) -> None:
    victim(group).lying = True


def _flap(world: World, group: Sequence[Island], span: float) -> None:
    target = victim(group)
    start = 0.2 * span
    while start < 0.8 * span:
        world.loop.at(start, world.crash, target)
        world.loop.at(start + FLAP_PERIOD_S / 2, world.restart, target)
        start += FLAP_PERIOD_S


Fault = Callable[[World, Sequence[Island], float], None]
FAULTS: dict[str, Fault | None] = {
    "none": None,
    "crash": _crash,
    "freeze": _freeze,
    "partition": _partition,
    "loss": _loss,
    "battery": _drain,
    "lying-tide": _lie,
    "flapping": _flap,
}


def schedule(world: World, fault: str, groups: Sequence[Sequence[Island]], span: float) -> None:
    """Arrange ``fault`` for every group of ``world`` over a workload of ``span`` seconds."""
    if fault not in FAULTS:
        raise UnknownFault(f"unknown fault {fault!r}; choose one of: {', '.join(FAULTS)}")
    apply = FAULTS[fault]
    if apply is None:
        return
    for group in groups:
        apply(world, group, span)
