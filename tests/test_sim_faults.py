"""Every injected fault changes what happens, in the way the fault says."""

from __future__ import annotations

from functools import cache

from islandrun.simulations.faults import victim
from islandrun.simulations.metrics import figures
from islandrun.simulations.policies import BY_NAME
from islandrun.simulations.run import RunResult, simulate
from islandrun.simulations.scenarios import HEALTHCARE, HIKING
from islandrun.simulations.world import READ_TIMEOUT_S

SPAN = 600.0
SETTLE_S = 30.0  # LIGHTHOUSE suspects a silent island after 6 s (LAN); then some margin


@cache
def clinic(fault: str) -> RunResult:
    return simulate(HEALTHCARE, BY_NAME["islandrun"], fault=fault, seed=5, span=SPAN)


def _ran_on(run: RunResult, device_id: str, start: float, end: float) -> int:
    return sum(1 for j in run.jobs if j.island == device_id and start <= j.at < end)


def test_crash_takes_the_victim_out_for_good() -> None:
    run = clinic("crash")
    edge = victim(run.world.islands)
    assert edge.crashed
    assert _ran_on(run, edge.device_id, 0.3 * SPAN + READ_TIMEOUT_S, SPAN) == 0
    assert _ran_on(clinic("none"), edge.device_id, 0.3 * SPAN + READ_TIMEOUT_S, SPAN) > 0


def test_freeze_and_partition_stop_work_on_the_victim_only_while_they_last() -> None:
    for fault in ("freeze", "partition"):
        run = clinic(fault)
        edge = victim(run.world.islands)
        assert _ran_on(run, edge.device_id, 0.3 * SPAN + SETTLE_S, 0.6 * SPAN) == 0, fault
        assert _ran_on(run, edge.device_id, 0.6 * SPAN + SETTLE_S, SPAN) > 0, fault
        assert not edge.frozen and not edge.crashed


def test_message_loss_loses_adverts() -> None:
    lossy, clean = clinic("loss").world, clinic("none").world
    assert clean.adverts_heard / clean.adverts_sent > 0.95
    assert 0.3 < lossy.adverts_heard / lossy.adverts_sent < 0.7


def test_a_lying_tide_draws_more_work_than_its_honest_self() -> None:
    liar = victim(clinic("lying-tide").world.islands).device_id
    honest = victim(clinic("none").world.islands).device_id
    assert _ran_on(clinic("lying-tide"), liar, 0.0, SPAN) > _ran_on(clinic("none"), honest,
                                                                     0.0, SPAN)


def test_flapping_makes_requests_fail_over() -> None:
    assert clinic("flapping").world.island_failures > clinic("none").world.island_failures
    assert figures(clinic("flapping")) != figures(clinic("none"))


def test_battery_drain_flattens_the_phone() -> None:
    drained = simulate(HIKING, BY_NAME["islandrun"], fault="battery", seed=5, span=SPAN)
    normal = simulate(HIKING, BY_NAME["islandrun"], fault="none", seed=5, span=SPAN)
    phone = next(i for i in drained.world.islands if i.spec.name == "phone-b")
    assert phone.battery == 0.0 and phone.crashed
    assert figures(drained)["battery_drained"] > figures(normal)["battery_drained"] + 50
