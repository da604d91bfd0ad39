"""The routing policies compared: IslandRun, the paper's baselines and its ablations.

What it is: one :class:`Policy` per row of the comparison table, each an async
``route(world, origin, request)`` returning where the request ran and whether it was
sanitized. All of them move the request through the same modelled network and
executors (:meth:`World.execute`), so only the routing differs.

* ``islandrun`` — the node's real :class:`~islandrun.node.dispatch.Dispatcher`
  (rate limit, MIST, WAVES, sanitize, run or ship, failover, restore, audit) over
  the islands LIGHTHOUSE knows and this device's TIDE report.
* Baselines (paper §XI-A), which neither score nor sanitize and never fail over:
  ``cloud-only`` (always the cloud), ``local-only`` (always this device, whatever
  its load), ``latency-greedy`` (the alive island with the lowest expected latency,
  from the same measured round trips WAVES uses), ``privacy-only`` (the alive island
  with the highest privacy score, ties to the faster). A request that needs a dataset
  the chosen island lacks takes its documents with it ("data to compute").
* Ablations (paper §XI-D), each IslandRun minus one agent: ``no-MIST`` (WAVES and
  failover exactly as the Dispatcher runs them, but nothing scores the text: WAVES
  sees only the caller's own floor, ``request.sensitivity``, which no workload here
  sets, so 0; and nothing is sanitized — an absent MIST, unlike a *failed* one, which
  WAVES treats as 1.0); ``no-TIDE`` (the
  real Dispatcher, but every island, this one included, reads as idle: no capacity,
  in-flight or battery information); ``no-LIGHTHOUSE`` (the real Dispatcher, but no
  membership table: each request first re-discovers the islands in reach, a
  :data:`DISCOVERY_S` query window, then routes on what answered).

What it is not: a new router. WAVES is the only one with constraints; the baselines
are deliberately the simple strategies the paper describes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from islandrun.node import waves
from islandrun.node.dispatch import Dispatcher, Refused, island_snapshots
from islandrun.node.lighthouse import IslandView, Liveness
from islandrun.node.ratelimit import RateLimitConfig, RateLimiter
from islandrun.node.shipping import IslandFailed
from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves_inputs import IslandSnapshot, RouteRequest, Tier
from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError

from .engine import sleep
from .world import Island, World

#: How long a request without LIGHTHOUSE waits for islands to answer a discovery query
#: (an mDNS-style query window: responders answer within 20-120 ms, queriers collect
#: answers for about a second).
DISCOVERY_S = 1.0

#: Clinics and households send bursts: a generous per-client bucket, so the limiter
#: only turns away floods (it is the same RateLimiter the node uses).
RATE_LIMIT = RateLimitConfig(rate_per_s=20.0, burst=200.0)

#: TIDE's view of an idle device: what every island looks like without TIDE.
IDLE = CapacityReport(capacity=1.0, available=1.0, accepting=True, exhaustion_in_s=None,
                      in_flight=0, willingness=1.0, battery_pct=None, charging=None)


class NoIsland(IslandRunError):
    """A baseline found no island it is willing to use (e.g. no cloud configured)."""


Route = Callable[[World, Island, m.InferenceRequest], Awaitable[tuple[str, bool]]]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    family: str  # islandrun, baseline or ablation
    route: Route


async def _discard(_: str) -> None:
    return None


async def _no_audit(_: dict) -> None:
    return None


def _dispatcher(world: World, origin: Island) -> Dispatcher:
    """This origin's Dispatcher, made once per run (it keeps vaults and buckets)."""
    found = world.dispatchers.get(origin.device_id)
    if found is None:
        found = Dispatcher(policy=waves.RoutePolicy(), limiter=RateLimiter(RATE_LIMIT),
                           run_local=world.local_runner(origin), ship=world.shipper(origin),
                           audit=_no_audit, wall_clock=world.wall)
        world.dispatchers[origin.device_id] = found
    return found


async def _dispatch(world: World, origin: Island, request: m.InferenceRequest,
                    islands: list[IslandSnapshot], local: CapacityReport) -> tuple[str, bool]:
    outcome = await _dispatcher(world, origin).run(
        request, islands=islands, local=local, cached=(), client_id="local", on_chunk=_discard)
    assert outcome.decision.island is not None
    return outcome.decision.island.device_id, outcome.sanitized


async def islandrun(world: World, origin: Island, request: m.InferenceRequest) -> tuple[str, bool]:
    return await _dispatch(world, origin, request, origin.islands(), origin.report())


async def no_tide(world: World, origin: Island, request: m.InferenceRequest) -> tuple[str, bool]:
    blind = [dataclasses.replace(i, capacity=1.0, in_flight=0, willingness=1.0)
             for i in origin.islands()]
    return await _dispatch(world, origin, request, blind, IDLE)


async def no_lighthouse(world: World, origin: Island,
                        request: m.InferenceRequest) -> tuple[str, bool]:
    await sleep(DISCOVERY_S)
    wall = world.wall()
    views = [IslandView(device_id=p.device_id, name=p.spec.name, liveness=Liveness.ALIVE,
                        last_seen=wall, since=wall, advert=p.advert(p.report()))
             for p in origin.peers if p not in origin.clouds and world.reachable(origin, p)]
    islands = island_snapshots(views, origin.book, latency=origin.latency)
    islands += [*origin.cloud_islands(), origin.local()]
    return await _dispatch(world, origin, request, islands, origin.report())


async def no_mist(world: World, origin: Island, request: m.InferenceRequest) -> tuple[str, bool]:
    route = RouteRequest(
        request_id=request.request_id, client_id="local", model=request.model_hint,
        datasets=frozenset({request.dataset} if request.dataset else ()),
        tier=Tier(request.tier.value), max_latency_ms=request.latency_budget_ms,
        tokens=sum(len(x.content) for x in request.messages) // 4 + request.max_tokens)
    floor = request.sensitivity  # what the Dispatcher's WAVES sees when MIST adds nothing
    decision = waves.decide(route, floor, origin.islands(), waves.RoutePolicy(), origin.report())
    while decision.island is not None:
        try:
            return await _run_on(world, origin, request, decision.island.device_id)
        except IslandFailed:
            decision = waves.failover(decision, decision.island.device_id)
    raise Refused(decision)


async def _run_on(world: World, origin: Island, request: m.InferenceRequest,
                  device_id: str) -> tuple[str, bool]:
    """Run ``request`` unsanitized on ``device_id``, taking any dataset it lacks along."""
    target = world.by_id[device_id]
    job = world.jobs[request.request_id]
    if request.dataset and request.dataset not in target.spec.datasets:
        last = request.messages[-1]
        moved = dataclasses.replace(last, content=last.content + job.prompt.excerpts)
        request = dataclasses.replace(request, messages=(*request.messages[:-1], moved))
    if target is origin:
        await world.local_runner(origin)(request, _discard)
    else:
        await world.shipper(origin)(device_id, request, _discard)
    return device_id, False


def _alive(origin: Island) -> list[IslandSnapshot]:
    return [i for i in origin.islands() if i.alive]


async def cloud_only(world: World, origin: Island, request: m.InferenceRequest) -> tuple[str, bool]:
    clouds = sorted(p.device_id for p in origin.clouds)
    if not clouds:
        raise NoIsland("no cloud island configured")
    return await _run_on(world, origin, request, clouds[0])


async def local_only(world: World, origin: Island, request: m.InferenceRequest) -> tuple[str, bool]:
    return await _run_on(world, origin, request, origin.device_id)


async def latency_greedy(world: World, origin: Island,
                         request: m.InferenceRequest) -> tuple[str, bool]:
    best = min(_alive(origin), key=lambda i: (i.expected_latency_ms, i.device_id))
    return await _run_on(world, origin, request, best.device_id)


async def privacy_only(world: World, origin: Island,
                       request: m.InferenceRequest) -> tuple[str, bool]:
    best = min(_alive(origin), key=lambda i: (-i.privacy, i.expected_latency_ms, i.device_id))
    return await _run_on(world, origin, request, best.device_id)


POLICIES: tuple[Policy, ...] = (
    Policy("islandrun", "islandrun", islandrun),
    Policy("cloud-only", "baseline", cloud_only),
    Policy("local-only", "baseline", local_only),
    Policy("latency-greedy", "baseline", latency_greedy),
    Policy("privacy-only", "baseline", privacy_only),
    Policy("no-MIST", "ablation", no_mist),
    Policy("no-TIDE", "ablation", no_tide),
    Policy("no-LIGHTHOUSE", "ablation", no_lighthouse),
)
BY_NAME = {p.name: p for p in POLICIES}
