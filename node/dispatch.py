"""Dispatch: one request from the user's hand to an island and back.

This is where the agents meet, in the paper's order:

1. **rate limit** the client (paper Attack 4);
2. **MIST** scores the prompt (an error counts as sensitivity 1.0);
3. **WAVES** picks an island from this device (via TIDE's report) and the
   islands LIGHTHOUSE knows (via :func:`island_snapshots`), or refuses;
4. if the island is less trusted than this device, **MIST** sanitizes the
   whole history with the conversation's vault, and the streamed answer is
   restored before the user sees it;
5. the request runs here (the local executor) or is shipped sealed
   (``shipping``); an island that fails before answering is replaced by the
   next eligible one (``waves.failover``, bounded), never an ineligible one;
6. every decision is written to the audit log (no prompt text, no values).

With ``conversations`` (the personal group state), a request naming a
conversation gets its history and placeholder vault from there, and its new
turns and answer are recorded there, so any of the owner's devices can go on.

Trust and privacy of an island come from the owner's records
(:class:`TrustBook`), never from the island's advert.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.transports.base import LinkView

from . import mist, waves
from .audit import audit_record
from .executor import Usage
from .lighthouse import IslandView, Liveness
from .link_latency import link_latency_ms
from .mist_vault import Vault
from .ratelimit import RateLimiter
from .tide_capacity import CapacityReport
from .waves_inputs import IslandKind, IslandSnapshot, RouteRequest, Tier

#: Conversations whose placeholder vaults are kept in memory (LRU).
MAX_VAULTS = 1024


@dataclass(frozen=True, slots=True)
class TrustRecord:
    """The owner's word on a device: its tier and scores."""

    kind: IslandKind
    trust: float
    privacy: float


class TrustBook(Protocol):
    def lookup(self, device_id: str) -> TrustRecord | None:
        """The owner's record for ``device_id``, or None if it is not trusted at all."""
        ...


class Conversations(Protocol):
    """Where conversations live (the personal group state, ``groupnode``)."""

    def prepare(
        self, request: m.InferenceRequest
    ) -> tuple[m.InferenceRequest, tuple[m.ChatMessage, ...]]:
        """The request with the conversation's history, and its new turns."""
        ...

    def vault(self, conversation: str) -> Vault: ...

    def record(self, conversation: str, fresh: tuple[m.ChatMessage, ...], answer: str) -> None:
        ...


class Refused(IslandRunError):
    """WAVES found no eligible island; the message says which constraint removed which."""

    def __init__(self, decision: waves.Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class RateLimited(IslandRunError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many requests; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: waves.Decision
    usage: Usage
    sanitized: bool


OnChunk = Callable[[str], Awaitable[None]]
#: Runs ``request`` on a remote island, streaming into the callback.
Ship = Callable[[str, m.InferenceRequest, OnChunk], Awaitable[m.ResponseEnd]]
RunLocal = Callable[[m.InferenceRequest, OnChunk], Awaitable[Usage]]


#: Expected latency of a remote island never measured yet (ms): a LAN hop
#: plus queueing; measured round trips replace it (:class:`LatencyBook`).
UNMEASURED_LATENCY_MS = 50.0


class LatencyBook:
    """Round trips this node measured to each island (EWMA, ms), net of the
    link's estimated time (``link_latency``), which is added back per decision."""

    ALPHA = 0.3

    def __init__(self) -> None:
        self._ms: dict[str, float] = {}

    def observe(self, device_id: str, ms: float) -> None:
        old = self._ms.get(device_id)
        self._ms[device_id] = ms if old is None else old + self.ALPHA * (ms - old)

    def expected(self, device_id: str) -> float:
        return self._ms.get(device_id, UNMEASURED_LATENCY_MS)


def island_snapshots(
    views: Sequence[IslandView],
    book: TrustBook,
    only: str | None = None,
    latency: LatencyBook | None = None,
    links: Callable[[str], LinkView | None] | None = None,
) -> list[IslandSnapshot]:
    """WAVES's view of the islands LIGHTHOUSE knows and the owner trusts.

    ``links`` (the transport's ``link``) says how each island is reached now;
    a BLE road adds its estimated time to the island's latency (``link_latency``).
    """
    out = []
    for view in views:
        record = book.lookup(view.device_id)
        if record is None or (only is not None and view.device_id != only):
            continue
        a = view.advert
        out.append(
            IslandSnapshot(
                device_id=view.device_id,
                name=view.name,
                kind=record.kind,
                privacy=record.privacy,
                trust=record.trust,
                models=frozenset(x.name for x in a.models),
                datasets=frozenset(d.name for d in a.datasets),
                capacity=a.capacity,
                in_flight=a.in_flight,
                willingness=a.serve_others,
                battery_pct=a.battery_pct,
                charging=a.charging,
                price_per_token=(a.cost.price_in + a.cost.price_out) / 2e6,
                latency_ms=(latency or _NO_MEASUREMENTS).expected(view.device_id)
                + link_latency_ms(links(view.device_id) if links else None),
                alive=view.liveness is Liveness.ALIVE,
            )
        )
    return out


_NO_MEASUREMENTS = LatencyBook()


def local_snapshot(
    device_id: str,
    name: str,
    models: Sequence[m.ModelInfo],
    report: CapacityReport | None,
    datasets: Sequence[m.DatasetInfo] = (),
) -> IslandSnapshot:
    """This device as an island (trust and privacy 1.0: it holds the data)."""
    return IslandSnapshot(
        device_id=device_id,
        name=name,
        kind=IslandKind.PERSONAL,
        privacy=1.0,
        trust=1.0,
        models=frozenset(x.name for x in models),
        datasets=frozenset(d.name for d in datasets),
        capacity=report.capacity if report else 0.0,
        in_flight=report.in_flight if report else 0,
        # Its battery weighs on the energy objective (a low phone offloads to
        # a friend's full one) but never removes it: its own requests may run here.
        willingness=report.willingness if report else 1.0,
        battery_pct=report.battery_pct if report else None,
        charging=report.charging if report else None,
        is_local=True,
    )


class Dispatcher:
    """Runs requests through MIST, WAVES and an island; keeps conversation vaults."""

    def __init__(
        self,
        *,
        policy: waves.RoutePolicy,
        limiter: RateLimiter,
        run_local: RunLocal,
        ship: Ship,
        audit: Callable[[dict], Awaitable[None]],
        wall_clock: Callable[[], float] = time.time,
        conversations: Conversations | None = None,
    ) -> None:
        self.policy, self.limiter = policy, limiter
        self._run_local, self._ship, self._audit = run_local, ship, audit
        self._clock = wall_clock
        self._vaults: OrderedDict[str, Vault] = OrderedDict()
        self._conversations = conversations

    def vault(self, conversation: str) -> Vault:
        if self._conversations is not None:  # history and vaults shared by the group
            return self._conversations.vault(conversation)
        vault = self._vaults.pop(conversation, None) or Vault(secrets.SystemRandom())
        self._vaults[conversation] = vault
        while len(self._vaults) > MAX_VAULTS:
            self._vaults.popitem(last=False)
        return vault

    async def run(
        self,
        request: m.InferenceRequest,
        *,
        islands: list[IslandSnapshot] | None,
        local: CapacityReport | None,
        cached: Sequence[IslandSnapshot],
        client_id: str,
        on_chunk: OnChunk,
        on_island: Callable[[waves.Decision], None] | None = None,
    ) -> Outcome:
        """Route and run ``request``; ``None`` islands/local mean LIGHTHOUSE/TIDE failed.

        ``on_island`` is told each decision just before its island is tried
        (the first, then any failover), e.g. to label a streamed response.
        """
        verdict = self.limiter.admit(client_id, self._clock())
        if not verdict.allowed:
            raise RateLimited(verdict.retry_after_s)
        books = self._conversations if request.conversation_id else None
        if books is not None:
            request, fresh = books.prepare(request)
        analysis = _analyze(request)
        route = RouteRequest(
            request_id=request.request_id,
            client_id=client_id,
            model=request.model_hint,
            datasets=frozenset({request.dataset} if request.dataset else ()),
            tier=Tier(request.tier.value),
            max_latency_ms=request.latency_budget_ms,
            tokens=sum(len(x.content) for x in request.messages) // 4 + request.max_tokens,
        )
        floor = request.sensitivity  # the caller may know more than MIST
        sensitivity = None if analysis is None else max(analysis.sensitivity, floor)
        decision = waves.decide(
            route, sensitivity, islands, self.policy, local, cached_islands=cached
        )
        await self._record(decision, analysis)
        answer: list[str] = []

        async def collect(text: str) -> None:
            answer.append(text)
            await on_chunk(text)

        outcome = await self._attempt(decision, request, collect, on_island or _ignore)
        if books is not None:
            books.record(request.conversation_id, fresh, "".join(answer))
        return outcome

    async def _attempt(
        self,
        decision: waves.Decision,
        request: m.InferenceRequest,
        on_chunk: OnChunk,
        on_island: Callable[[waves.Decision], None],
    ) -> Outcome:
        from .shipping import IslandFailed  # shipping imports transports; keep agents clean

        while decision.island is not None:
            island = decision.island
            on_island(decision)
            prepared, emit, finish = self._prepare(decision, request, on_chunk)
            delivered = 0

            async def counted(text: str, emit: OnChunk = emit) -> None:
                nonlocal delivered
                delivered += 1
                await emit(text)

            try:
                if island.is_local:
                    usage = await self._run_local(prepared, counted)
                else:
                    end = await self._ship(island.device_id, prepared, counted)
                    usage = Usage(end.prompt_tokens, end.completion_tokens, end.finish_reason)
            except IslandFailed as exc:
                if delivered:
                    # Part of the answer already reached the user; another
                    # island would start over and duplicate it.
                    raise IslandFailed(
                        f"island {island.name!r} failed mid-answer after {delivered} chunks "
                        f"({exc}); ask again"
                    ) from None
                decision = waves.failover(decision, island.device_id)
                await self._record(decision, None)
                continue
            await finish()
            return Outcome(decision=decision, usage=usage, sanitized=decision.sanitize)
        raise Refused(decision)

    def _prepare(
        self, decision: waves.Decision, request: m.InferenceRequest, on_chunk: OnChunk
    ) -> tuple[m.InferenceRequest, OnChunk, Callable[[], Awaitable[None]]]:
        """Sanitize for a less-trusted island; the restoring chunk sink and its flush."""

        async def nothing() -> None:
            return None

        if not decision.sanitize:
            return request, on_chunk, nothing
        vault = self.vault(request.conversation_id or request.request_id)
        sanitized = tuple(
            replace(msg, content=mist.sanitize(msg.content, vault).text) for msg in request.messages
        )
        restorer = mist.StreamRestorer(vault)

        async def restored(text: str) -> None:
            out = restorer.feed(text)
            if out:
                await on_chunk(out)

        async def flush() -> None:
            rest = restorer.close()
            if rest:
                await on_chunk(rest)

        return replace(request, messages=sanitized), restored, flush

    async def _record(self, decision: waves.Decision, analysis: mist.Analysis | None) -> None:
        level = "restricted" if analysis is None else analysis.level.label
        types = () if analysis is None else {e.type.value for e in analysis.entities}
        await self._audit(audit_record(decision, at=self._clock(), level=level, entity_types=types))


def _ignore(_: waves.Decision) -> None:
    return None


def _analyze(request: m.InferenceRequest) -> mist.Analysis | None:
    """MIST over the whole history; None (=> sensitivity 1.0) if MIST fails."""
    text = "\n".join(x.content for x in request.messages)
    try:
        return mist.analyze(text)
    except Exception:  # any MIST failure fails closed, by design
        return None
