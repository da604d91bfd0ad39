"""One simulated run: a scenario, a policy, a fault and a seed in; every request's fate out.

What it is: :func:`simulate` builds the world (every group of the scenario, paired
within itself), draws the workload (prompts, origins and Poisson arrival times, all
from the seed), schedules the fault, drives each request through the policy as its
own task on the event loop, and stops when every request has finished or
:data:`GRACE_S` after the last arrival, whichever is first (requests still running
then count as failures).

Determinism: every random choice comes from ``random.Random`` instances seeded
with strings derived from ``seed`` (string seeds hash identically across runs and
platforms); the event loop breaks ties by scheduling order; nothing reads the real
clock. The one source of randomness inside the node's own code, the Dispatcher's
per-conversation placeholder numbering (``secrets.SystemRandom``), changes only
the digits inside placeholders, which no figure depends on.

Signature verification is memoised for the run (:func:`verified_bytes_cache`):
the same exact signed bytes verified once are not verified again. It returns what
re-verifying would (a failure is never cached), and without it 1,000 nodes would
spend most of their time re-checking the very same adverts.

What it is not: the figures (``metrics``) or the comparison across policies
(``compare``).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from islandrun.node.dispatch import RateLimited, Refused
from islandrun.protocol import envelope
from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError

from .faults import schedule
from .policies import NoIsland, Policy
from .scenarios import Scenario
from .world import Island, Job, World

#: Seconds after the last arrival that running requests get to finish.
GRACE_S = 300.0
#: The deadline each request carries (seconds from its arrival).
DEADLINE_S = 600.0


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    policy: str
    fault: str
    seed: int
    world: World
    jobs: tuple[Job, ...]
    duration_s: float


@contextlib.contextmanager
def verified_bytes_cache() -> Iterator[None]:
    """Memoise envelope signature checks by the exact bytes checked, for one run."""
    original = envelope._check_signature
    verified: set[tuple[object, ...]] = set()

    def check(env: envelope.Envelope) -> None:
        key = (env.public_key, env.signature, env.domain, env.payload_type, env.payload,
               env.seq, env.expires)
        if key in verified:
            return
        original(env)  # raises on a bad signature; failures are never remembered
        verified.add(key)

    envelope._check_signature = check  # type: ignore[assignment]
    try:
        yield
    finally:
        envelope._check_signature = original  # type: ignore[assignment]


def build(scenario: Scenario, seed: int, nodes: int | None) -> tuple[World, list[list[Island]]]:
    """The world of ``scenario``: its group repeated, each copy paired within itself."""
    world = World(seed)
    groups = []
    for index in range(scenario.groups_for(nodes)):
        group = [world.add(spec, index) for spec in scenario.group]
        for island in group:
            island.pair(group)
        groups.append(group)
    return world, groups


def workload(scenario: Scenario, seed: int, groups: list[list[Island]],
             span: float) -> list[Job]:
    """Every group's requests: prompts in the scenario's mix, Poisson arrivals over ``span``."""
    jobs = []
    for index, group in enumerate(groups):
        rng = random.Random(f"{seed}:workload:{index}")
        origins = [i for i in group if i.spec.origin]
        count = max(1, round(scenario.requests * span / scenario.span_s))
        times = sorted(rng.uniform(0.0, span) for _ in range(count))
        for n, (at, prompt) in enumerate(zip(times, scenario.mix.draw(rng, count), strict=False)):
            origin = rng.choice(origins)
            jobs.append(Job(request_id=f"g{index}-r{n}", origin=origin.device_id, at=at,
                            prompt=prompt))
    return jobs


def _request(world: World, job: Job) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id=job.request_id,
        conversation_id=job.request_id,
        messages=(m.ChatMessage(role=m.Role.USER, content=job.prompt.text),),
        tier=job.prompt.tier,
        dataset=job.prompt.dataset,
        deadline=world.wall() + DEADLINE_S,
        max_tokens=job.prompt.max_tokens,
    )


def _start(world: World, policy: Policy, job: Job) -> None:
    origin = world.by_id[job.origin]
    if origin.crashed or origin.frozen:  # the device in the user's hand is off or hung
        job.status, job.finished = "failed", world.loop.now
        return

    def done(result: tuple[str, bool] | None, error: BaseException | None) -> None:
        job.finished = world.loop.now
        if error is None and result is not None:
            job.status, (job.island, job.sanitized) = "ok", result
        elif isinstance(error, IslandRunError):
            job.status = "refused" if _refusal(error) else "failed"
        else:
            raise error if error is not None else AssertionError("no outcome")

    world.loop.spawn(policy.route(world, origin, _request(world, job)), done)


def _refusal(error: IslandRunError) -> bool:
    """Turned away before running (not after islands failed)."""
    if isinstance(error, Refused):
        return not error.decision.failed
    return isinstance(error, RateLimited | NoIsland)


def simulate(scenario: Scenario, policy: Policy, *, fault: str = "none", seed: int = 0,
             nodes: int | None = None, span: float | None = None) -> RunResult:
    """Run ``scenario`` under ``policy`` and ``fault``; exactly reproducible from ``seed``."""
    span = scenario.span_s if span is None else span
    world, groups = build(scenario, seed, nodes)
    jobs = workload(scenario, seed, groups, span)
    schedule(world, fault, groups, span)
    for job in jobs:
        world.jobs[job.request_id] = job
        world.loop.at(job.at, _start, world, policy, job)
    with verified_bytes_cache():
        world.loop.run_until(span)
        while world.loop.now < span + GRACE_S and any(j.status == "pending" for j in jobs):
            world.loop.run_until(world.loop.now + 10.0)
    for job in jobs:
        if job.status == "pending":
            job.status = "failed"
    return RunResult(scenario.name, policy.name, fault, seed, world, tuple(jobs),
                     world.loop.now)
