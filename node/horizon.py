"""HORIZON: cloud islands, reached over OpenAI-compatible HTTP.

The paper's HORIZON (Heterogeneous Offload and Remote Inference Zone Over
Network) is the far, unbounded tier: a cloud API with effectively infinite
capacity and low trust (0.3-0.5). The owner defines each one in a
``[[cloud]]`` entry (:class:`~islandrun.node.config.CloudSection`: URL,
model, trust, privacy, prices, the *name* of the environment variable that
holds the API key, spend ceilings). Any OpenAI-compatible server can be one:
a hosted API, vLLM, Ollama, llama-cpp-python's server.

- :func:`cloud_snapshots` shows them to WAVES as islands of kind CLOUD with
  device id ``cloud:NAME`` (``CloudSection.device_id``), a per-token price and what is left of their
  spend ceilings (``budget_left``), so WAVES keeps to the budgets.
- :class:`HorizonExecutor` runs one request on one cloud: ``POST
  {url}/chat/completions`` with ``stream: true``, deltas streamed to the
  caller as they arrive; timeouts; retries with exponential backoff and
  jitter on 429, 408, 5xx, timeouts and broken connections, bounded in
  attempts and total time and honouring ``Retry-After``, but never once part
  of the answer has been delivered (a retry would repeat it); the cost of
  the request from the ``usage`` the server reports (estimated from text
  length when it reports none), added to the :class:`BudgetLedger`.
- :class:`Horizon` holds all of this node's clouds, one HTTP client and the
  persisted ledger, and is what the runtime talks to.

MIST sanitisation happens before a request gets here (the dispatcher does it
for every island trusted below 1.0), so this module only ever sees
placeholders. The API key is read for each request from the environment,
else from the key the owner shared with their devices (``synced_key``,
``groupsecrets``), and goes only into the ``Authorization`` header: never into adverts, logs, error
messages, reprs or the audit log. Error messages never quote response
bodies either (providers echo prompts and partial keys in them).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType

import httpx
import trio

from islandrun.protocol import messages as m

from .config import CloudSection
from .executor import Emit, Usage
from .horizon_budget import (
    Budget,
    BudgetExceeded,
    BudgetLedger,
    encode_ledger,
    load_ledger,
    save_ledger,
)
from .horizon_wire import (
    MAX_BODY_BYTES,
    CloudError,
    CloudProtocolError,
    SSEDecoder,
    TokenUsage,
    chat_body,
    error_code,
    estimate_tokens,
    parse_chunk,
    parse_completion,
    retry_after,
)
from .waves_inputs import IslandKind, IslandSnapshot

log = logging.getLogger(__name__)

#: Expected time for a cloud API to answer one request (ms), for WAVES's
#: latency objective: a WAN round trip plus a loaded provider's queue.
CLOUD_LATENCY_MS = 800.0
#: Context window advertised for a cloud model (the API does not say).
ASSUMED_CONTEXT = 128_000
#: Largest error body read to find the provider's error code.
MAX_ERROR_BYTES = 64 << 10
#: Seconds a stream may stay open after its [DONE] before HORIZON stops reading.
DRAIN_S = 1.0
#: HTTP statuses worth retrying besides 5xx: timeout and rate limit.
RETRY_STATUSES = frozenset({408, 429})


#: A cloud's API key shared by the owner's other devices, by cloud name (or None).
SyncedKey = Callable[[str], str | None]


def _no_synced_key(_: str) -> str | None:
    return None


class CloudUnavailable(CloudError):
    """The cloud did not answer (timeouts, connection, 429 / 5xx after retries)."""


class CloudRejected(CloudError):
    """The cloud refused the request (bad key, unknown model); retrying will not help."""


class _Transient(CloudUnavailable):
    """One attempt failed in a way that a later attempt may not."""

    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.why, self.wait = why, wait


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard HORIZON tries one request before the island counts as failed."""

    #: Attempts in all (1: never retry).
    max_attempts: int = 4
    #: First backoff step (s); each retry doubles it, up to ``max_delay``.
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: No retry starts if its wait would end more than this long after the
    #: first attempt began (s); a ``Retry-After`` beyond it ends the request.
    max_total: float = 30.0

    def delay(self, attempt: int, rng: random.Random, asked: float | None) -> float:
        """Wait after failed attempt number ``attempt`` (from 1): the doubling
        step with equal jitter (half fixed, half random, so clients that failed
        together do not retry together), and at least what the server ``asked``."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = step / 2 + rng.uniform(0.0, step / 2)
        return wait if asked is None else max(wait, asked)


def budget_of(cloud: CloudSection) -> Budget:
    return Budget(daily=cloud.daily_budget, monthly=cloud.monthly_budget)


def request_cost(cloud: CloudSection, usage: Usage) -> float:
    """What one request cost, from its token usage and the per-1M-token prices."""
    return (usage.prompt_tokens * cloud.price_in + usage.completion_tokens * cloud.price_out) / 1e6


def cloud_snapshots(
    clouds: Sequence[CloudSection], ledger: BudgetLedger, now: float
) -> list[IslandSnapshot]:
    """WAVES's view of the owner's cloud islands at ``now`` (Unix seconds)."""
    return [
        IslandSnapshot(
            device_id=cloud.device_id,
            name=cloud.name,
            kind=IslandKind.CLOUD,
            privacy=cloud.privacy,
            trust=cloud.trust,
            models=frozenset({cloud.model}),
            # One price per token, as for adverts: WAVES estimates prompt and
            # answer together, so the mean of the two prices.
            price_per_token=(cloud.price_in + cloud.price_out) / 2e6,
            latency_ms=CLOUD_LATENCY_MS,
            budget_left=ledger.remaining(cloud.name, budget_of(cloud), now),
        )
        for cloud in clouds
    ]


class _Answer:
    """The caller's ``emit``, counting what has been delivered."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.chunks = 0
        self.chars = 0

    async def emit(self, text: str) -> None:
        self.chunks += 1
        self.chars += len(text)
        await self._emit(text)


class _Stream:
    """What the events of one streamed answer have said so far."""

    def __init__(self, answer: _Answer) -> None:
        self.answer = answer
        self.usage: TokenUsage | None = None
        self.finish: str | None = None
        self.done = False  # [DONE] seen; later events are ignored

    async def take(self, data: str) -> None:
        if self.done:
            return
        if data == "[DONE]":
            self.done = True
            return
        piece = parse_chunk(data)
        if piece.text:
            await self.answer.emit(piece.text)
        self.finish = piece.finish_reason or self.finish
        self.usage = piece.usage or self.usage


class HorizonExecutor:
    """Runs requests on one cloud island (the :class:`Executor` protocol)."""

    def __init__(
        self,
        cloud: CloudSection,
        client: httpx.AsyncClient,
        ledger: BudgetLedger,
        *,
        wall_clock: Callable[[], float] = time.time,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        env: Mapping[str, str] = os.environ,
        synced_key: SyncedKey = _no_synced_key,
        on_spend: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.cloud, self.ledger = cloud, ledger
        self._client, self._clock, self._retry = client, wall_clock, retry
        self._rng = rng or random.Random()
        self._sleep, self._env, self._on_spend = sleep, env, on_spend
        self._synced_key = synced_key
        self._url = cloud.url + "/chat/completions"
        self._timeout = httpx.Timeout(cloud.timeout)

    def __repr__(self) -> str:
        return f"HorizonExecutor({self.cloud.name!r}, {self.cloud.url!r})"

    def models(self) -> tuple[m.ModelInfo, ...]:
        return (m.ModelInfo(name=self.cloud.model, context=ASSUMED_CONTEXT),)

    async def run(self, request: m.InferenceRequest, emit: Emit) -> Usage:
        """Send ``request`` (already sanitised) and stream the answer into ``emit``."""
        name = self.cloud.name
        now = self._clock()
        self.ledger.check(name, budget_of(self.cloud), now)
        headers = self._headers()
        answer = _Answer(emit)
        try:
            with trio.fail_after(max(0.0, request.deadline - now)):
                usage = await self._attempts(request, headers, answer)
        except trio.TooSlowError:
            await self._charge_partial(request, answer)
            raise CloudUnavailable(
                f"cloud {name!r}: no complete answer before the request's deadline"
            ) from None
        except CloudError:
            await self._charge_partial(request, answer)
            raise
        await self._charge(usage)
        return usage

    def _headers(self) -> dict[str, str]:
        # This device's own variable first, then a key the owner shared (groupsecrets).
        var = self.cloud.api_key_env
        key = (self._env.get(var, "") if var else "") or self._synced_key(self.cloud.name)
        if key:
            return {"Authorization": f"Bearer {key}"}
        if not var:
            return {}
        raise CloudRejected(
            f"cloud {self.cloud.name!r} needs its API key in ${var}; set it in the "
            "environment the node runs in, or share it from a device that has it "
            f"(`islandnode cloud sync-key {self.cloud.name}`)"
        )

    async def _attempts(
        self, request: m.InferenceRequest, headers: dict[str, str], answer: _Answer
    ) -> Usage:
        retry, started, attempt = self._retry, trio.current_time(), 0
        while True:
            attempt += 1
            try:
                return await self._attempt(request, headers, answer)
            except _Transient as exc:
                wait = retry.delay(attempt, self._rng, exc.wait)
                late = trio.current_time() - started + wait > retry.max_total
                if attempt >= retry.max_attempts or late:
                    asked = f" (it asks to wait {exc.wait:.0f} s)" if late and exc.wait else ""
                    raise CloudUnavailable(f"cloud {self.cloud.name!r}: {exc.why}; gave up "
                                           f"after {attempt} attempt(s){asked}") from None
                log.info("cloud %s: %s; retry %d of %d in %.2f s", self.cloud.name, exc.why,
                         attempt, retry.max_attempts - 1, wait)
                await self._sleep(wait)

    async def _attempt(
        self, request: m.InferenceRequest, headers: dict[str, str], answer: _Answer
    ) -> Usage:
        body = chat_body(request, self.cloud.model)
        try:
            async with self._client.stream(
                "POST", self._url, json=body, headers=headers, timeout=self._timeout
            ) as response:
                await self._check_status(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    return await self._whole(request, response, answer)
                return await self._streamed(request, response, answer)
        except httpx.TimeoutException:
            raise self._broken(answer, "timed out") from None
        except httpx.TransportError as exc:
            raise self._broken(answer, f"connection failed ({type(exc).__name__})") from None

    def _broken(self, answer: _Answer, why: str) -> CloudUnavailable:
        if answer.chunks:
            return CloudUnavailable(
                f"cloud {self.cloud.name!r}: {why} after {answer.chunks} chunk(s) of the answer"
            )
        return _Transient(why)

    async def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in RETRY_STATUSES or status >= 500:
            wait = retry_after(response.headers.get("retry-after"), self._clock())
            raise _Transient(f"HTTP {status}", wait)
        code = error_code(await _read(response, MAX_ERROR_BYTES))
        name, var = self.cloud.name, self.cloud.api_key_env
        if status in (401, 403):
            fix = f"check the key in ${var}" if var else "it needs an API key: set api_key_env"
            raise CloudRejected(f"cloud {name!r} refused the credentials (HTTP {status}{code}); "
                                f"{fix}")
        raise CloudRejected(f"cloud {name!r} rejected the request (HTTP {status}{code}); check "
                            f"its url and model in the [[cloud]] entry")

    async def _whole(
        self, request: m.InferenceRequest, response: httpx.Response, answer: _Answer
    ) -> Usage:
        """A server that ignored ``stream`` and sent one JSON completion."""
        piece = parse_completion(await _read(response, MAX_BODY_BYTES))
        if piece.text:
            await answer.emit(piece.text)
        return self._usage(request, answer, piece.usage, piece.finish_reason or "stop")

    async def _streamed(
        self, request: m.InferenceRequest, response: httpx.Response, answer: _Answer
    ) -> Usage:
        decoder, stream = SSEDecoder(), _Stream(answer)
        # After [DONE] the stream is read to its end rather than left: servers
        # end it at once, and abandoning httpx's body iterators half-read
        # leaves async generators for the garbage collector. A server that
        # keeps it open gets DRAIN_S.
        with trio.CancelScope() as drain:
            async for chunk in response.aiter_bytes():
                for data in decoder.feed(chunk):
                    await stream.take(data)
                if stream.done:
                    drain.deadline = min(drain.deadline, trio.current_time() + DRAIN_S)
        for data in decoder.close():
            await stream.take(data)
        if not (stream.done or stream.finish):
            raise self._broken(answer, "the answer stream ended early")
        return self._usage(request, answer, stream.usage, stream.finish or "stop")

    @staticmethod
    def _usage(request: m.InferenceRequest, answer: _Answer, reported: TokenUsage | None,
               finish: str) -> Usage:
        if reported is not None:
            return Usage(reported.prompt_tokens, reported.completion_tokens, finish)
        prompt = estimate_tokens(sum(len(msg.content) for msg in request.messages))
        return Usage(prompt, estimate_tokens(answer.chars), finish)

    async def _charge(self, usage: Usage) -> None:
        self.ledger.record(self.cloud.name, request_cost(self.cloud, usage), self._clock())
        if self._on_spend is not None:
            await self._on_spend()

    async def _charge_partial(self, request: m.InferenceRequest, answer: _Answer) -> None:
        """Part of an answer was generated and billed: charge what it likely cost."""
        if answer.chunks:
            await self._charge(self._usage(request, answer, None, "error"))


async def _read(response: httpx.Response, limit: int) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise CloudProtocolError(f"response body larger than {limit} bytes")
    return body


class Horizon:
    """This node's cloud islands: their WAVES snapshots, executors and spend ledger.

    Use as ``async with Horizon(cfg.cloud, home) as horizon:`` (it owns an
    HTTP client). The ledger is loaded from ``home`` and saved after each
    charged request; ``home=None`` keeps it in memory (tests).
    """

    def __init__(
        self,
        clouds: Sequence[CloudSection],
        home: Path | None,
        *,
        client: httpx.AsyncClient | None = None,
        wall_clock: Callable[[], float] = time.time,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        env: Mapping[str, str] = os.environ,
        synced_key: SyncedKey = _no_synced_key,
        ledger: Callable[[BudgetLedger], BudgetLedger] | None = None,
    ) -> None:
        own = load_ledger(home) if home is not None else BudgetLedger()
        # ``ledger`` may wrap this device's ledger, e.g. to count the personal group's spend.
        self.ledger = ledger(own) if ledger is not None else own
        self._home, self._clock = home, wall_clock
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._save_lock = trio.Lock()
        self._executor_for = partial(
            HorizonExecutor, client=self._client, ledger=self.ledger, wall_clock=wall_clock,
            retry=retry, rng=rng or random.Random(), sleep=sleep, env=env, synced_key=synced_key,
            on_spend=self._save,
        )
        self.set_clouds(clouds)

    def set_clouds(self, clouds: Sequence[CloudSection]) -> None:
        """Route to these clouds from now on (a request under way keeps its own)."""
        self.clouds = tuple(clouds)
        self._executors = {cloud.device_id: self._executor_for(cloud) for cloud in self.clouds}

    async def __aenter__(self) -> Horizon:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    def owns(self, island: str) -> bool:
        """Whether ``island`` (a device id) is one of these cloud islands."""
        return island in self._executors

    def snapshots(self) -> list[IslandSnapshot]:
        """The cloud islands for WAVES, with their budgets as of now."""
        return cloud_snapshots(self.clouds, self.ledger, self._clock())

    def executor(self, island: str) -> HorizonExecutor:
        try:
            return self._executors[island]
        except KeyError:
            raise CloudRejected(f"{island!r} is not a configured cloud island") from None

    async def ship(
        self, island: str, request: m.InferenceRequest, emit: Emit
    ) -> m.ResponseEnd:
        """Run ``request`` on cloud ``island`` for the dispatcher: any failure is
        an :class:`IslandFailed`, so WAVES fails over to the next eligible island."""
        from .shipping import IslandFailed

        try:
            usage = await self.executor(island).run(request, emit)
        except (CloudError, BudgetExceeded) as exc:
            log.warning("%s", exc)
            raise IslandFailed(str(exc)) from None
        return m.ResponseEnd(
            request_id=request.request_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            finish_reason=usage.finish_reason,
        )

    async def _save(self) -> None:
        if self._home is None:
            return
        async with self._save_lock:  # one write at a time, each of the latest totals
            data = encode_ledger(self.ledger)  # here, not in the thread: the ledger may change
            await trio.to_thread.run_sync(save_ledger, self._home, data)
