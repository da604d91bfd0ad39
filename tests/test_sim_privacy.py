"""Privacy in simulation: IslandRun never leaks; the latency-greedy baseline does."""

from __future__ import annotations

import pytest

from islandrun.simulations.metrics import figures
from islandrun.simulations.policies import BY_NAME
from islandrun.simulations.run import simulate
from islandrun.simulations.scenarios import HEALTHCARE, HIKING, LEGAL
from islandrun.simulations.workload import (
    HIGH,
    LOW,
    MODERATE,
    Mix,
    health_tip,
    leaked,
    literature_search,
    patient_case,
)

SPAN = 600.0  # a sixth of the clinic's day: about 170 requests


@pytest.fixture(scope="module")
def healthcare() -> dict[str, dict]:
    return {name: figures(simulate(HEALTHCARE, BY_NAME[name], seed=3, span=SPAN))
            for name in ("islandrun", "latency-greedy", "cloud-only", "privacy-only")}


def test_islandrun_has_no_violations_while_latency_greedy_has_some(healthcare: dict) -> None:
    assert healthcare["islandrun"]["requests"] > 100
    assert healthcare["islandrun"]["violations"] == 0
    assert healthcare["latency-greedy"]["violations"] > 0


def test_cloud_only_leaks_every_sensitive_request_and_privacy_only_none(healthcare: dict) -> None:
    run = simulate(HEALTHCARE, BY_NAME["cloud-only"], seed=3, span=SPAN)
    sensitive = sum(1 for j in run.jobs if j.prompt.secrets)
    assert healthcare["cloud-only"]["violations"] == sensitive > 0
    assert healthcare["privacy-only"]["violations"] == 0


def test_islandrun_sanitizes_what_it_sends_to_less_trusted_islands() -> None:
    run = simulate(HEALTHCARE, BY_NAME["islandrun"], seed=3, span=SPAN)
    remote = [j for j in run.jobs if j.status == "ok" and j.island != j.origin]
    assert remote and all(j.sanitized for j in remote)


def test_data_locality_runs_case_law_queries_only_where_the_index_is() -> None:
    run = simulate(LEGAL, BY_NAME["islandrun"], seed=3, span=300.0)
    holders = {i.device_id for i in run.world.islands if "caselaw" in i.spec.datasets}
    ran = [j for j in run.jobs if j.prompt.dataset and j.status == "ok"]
    assert ran and all(j.island in holders for j in ran)


def test_the_generator_plants_what_it_declares() -> None:
    import random

    rng = random.Random(1)
    prompts = Mix((patient_case, literature_search, health_tip), (2, 5, 3)).draw(rng, 100)
    assert [p.required_privacy for p in prompts].count(HIGH) == 20
    assert [p.required_privacy for p in prompts].count(MODERATE) == 50
    assert [p.required_privacy for p in prompts].count(LOW) == 30
    assert all(leaked(p.text, p.secrets) for p in prompts if p.secrets)
    assert "MRN" not in repr(prompts[0]) and "Patient" not in repr(prompts[0])


def test_mist_detects_every_condition_the_clinic_workload_uses() -> None:
    """The simulator found "major depressive disorder" undetected (and leaked); pin it."""
    from islandrun.node import mist
    from islandrun.simulations.workload import CONDITIONS

    for condition in CONDITIONS:
        found = mist.analyze(f"For a patient of ours with {condition}, what next?").entities
        assert [e.type.value for e in found] == ["MEDICAL_CONDITION"], condition


def test_without_mist_nothing_is_sanitized_and_sensitive_text_leaks() -> None:
    """The no-MIST ablation routes on the caller's floor alone and sends text raw."""
    ours = simulate(HIKING, BY_NAME["islandrun"], seed=0)
    ablated = simulate(HIKING, BY_NAME["no-MIST"], seed=0)
    assert any(j.sanitized for j in ours.jobs)
    assert not any(j.sanitized for j in ablated.jobs)
    assert figures(ours)["violations"] == 0 < figures(ablated)["violations"]
