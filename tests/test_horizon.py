"""HORIZON over real HTTP: a local OpenAI-compatible server plays the cloud island.

The fake server (:mod:`islandrun.node.demo_cloud`, also the demo's cloud
island) records the raw bytes of every request, so these tests assert what
actually left the node: sanitised text only, the API key only in the
Authorization header, nothing after a budget ceiling. Backoff waits go
through a recording ``sleep`` (no wall-clock sleeping); timeouts are real
but short.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from islandrun.node import config, waves
from islandrun.node.demo_cloud import FakeCloud, Reply
from islandrun.node.dispatch import Dispatcher, Refused, local_snapshot
from islandrun.node.executor import Usage
from islandrun.node.horizon import (
    CloudRejected,
    CloudUnavailable,
    Horizon,
    RetryPolicy,
    cloud_snapshots,
)
from islandrun.node.horizon_budget import BudgetExceeded, BudgetLedger, load_ledger
from islandrun.node.ratelimit import RateLimitConfig, RateLimiter
from islandrun.node.tide_capacity import CapacityReport
from islandrun.node.waves_inputs import IslandKind
from islandrun.protocol import messages as m

KEY = "sk-test-CANARYKEY-5f2b9c"
ENV = {"FAKE_CLOUD_KEY": KEY}
CLOUD = config.CloudSection(
    name="fake", url="http://127.0.0.1:9", model="fake-model", price_in=2.0, price_out=8.0,
    api_key_env="FAKE_CLOUD_KEY", timeout=5.0,
)
#: Cost of the fake's usage (1000 prompt, 500 answer tokens) at 2 / 8 per 1M tokens.
COST = (1000 * 2.0 + 500 * 8.0) / 1e6
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_total=5.0)


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeCloud:
    server = FakeCloud()
    await nursery.start(server.serve)
    return server


class Run:
    """One Horizon on the fake server, with recorded backoff waits and answer chunks."""

    def __init__(self, fake: FakeCloud, home: Path | None = None, env: dict[str, str] = ENV,
                 **cloud: object) -> None:
        fields = {"url": fake.url, **cloud}
        self.cloud = dataclasses.replace(CLOUD, **fields)  # type: ignore[arg-type]
        self.waits: list[float] = []
        self.chunks: list[str] = []
        self.horizon = Horizon([self.cloud], home, retry=FAST, rng=random.Random(7),
                               sleep=self._sleep, env=env)

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def _emit(self, text: str) -> None:
        self.chunks.append(text)

    async def ask(self, *texts: str, deadline_in: float = 60.0) -> Usage:
        executor = self.horizon.executor("cloud:" + self.cloud.name)
        return await executor.run(request(*texts, deadline_in=deadline_in), self._emit)


Runs = Callable[..., Run]


@pytest.fixture
async def runs(fake: FakeCloud) -> AsyncIterator[Runs]:
    """Makes :class:`Run` s on the fake server; closes their HTTP clients afterwards."""
    made: list[Run] = []

    def make(**fields: object) -> Run:
        made.append(Run(fake, **fields))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for run in made:
        await run.horizon.__aexit__(None, None, None)


def request(*texts: str, deadline_in: float = 60.0, **fields: object) -> m.InferenceRequest:
    roles = (m.Role.USER, m.Role.ASSISTANT)
    messages = tuple(m.ChatMessage(role=roles[i % 2], content=t) for i, t in enumerate(texts))
    return m.InferenceRequest(request_id="r1", messages=messages or (
        m.ChatMessage(role=m.Role.USER, content="hello"),), deadline=time.time() + deadline_in,
        **fields)  # type: ignore[arg-type]


async def test_streams_deltas_sends_key_and_charges_reported_usage(
    fake: FakeCloud, runs: Runs
) -> None:
    run = runs()
    usage = await run.ask("hello")
    assert run.chunks == ["Hello", " from", " the cloud"]
    assert usage == Usage(prompt_tokens=1000, completion_tokens=500, finish_reason="stop")
    [sent] = fake.received
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["model"] == "fake-model" and sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["messages"] == [{"role": "user", "content": "hello"}]
    assert run.horizon.ledger.spent("fake", time.time()).day_spent == pytest.approx(COST)


async def test_a_server_that_ignores_stream_answers_in_one_piece(
    fake: FakeCloud, runs: Runs
) -> None:
    fake.default = Reply(stream=False)
    run = runs()
    assert await run.ask() == Usage(1000, 500, "stop")
    assert run.chunks == ["Hello from the cloud"]


async def test_without_reported_usage_the_cost_is_estimated_from_text(
    fake: FakeCloud, runs: Runs
) -> None:
    fake.default = Reply(usage=None)
    run = runs()
    usage = await run.ask("x" * 40)
    assert usage == Usage(prompt_tokens=10, completion_tokens=5)  # 40 and 20 characters / 4
    spent = run.horizon.ledger.spent("fake", time.time()).day_spent
    assert spent == pytest.approx((10 * 2.0 + 5 * 8.0) / 1e6)


async def test_no_key_needed_when_no_env_var_is_named(fake: FakeCloud, runs: Runs) -> None:
    run = runs(api_key_env="", env={})
    await run.ask()
    assert "authorization" not in fake.received[0].headers


async def test_429_waits_as_asked_then_succeeds(fake: FakeCloud, runs: Runs) -> None:
    fake.script = [Reply(status=429, retry_after="2")]
    run = runs()
    await run.ask()
    assert run.waits == [2.0]  # Retry-After beats the 10 ms backoff
    assert len(fake.received) == 2 and run.chunks == ["Hello", " from", " the cloud"]


async def test_5xx_backs_off_exponentially_with_jitter(fake: FakeCloud, runs: Runs) -> None:
    fake.script = [Reply(status=503), Reply(status=502)]
    run = runs()
    await run.ask()
    first, second = run.waits
    assert 0.005 <= first <= 0.01 and 0.01 <= second <= 0.02  # half fixed, half jitter
    assert len(fake.received) == 3


async def test_5xx_until_attempts_run_out_is_a_clear_error(fake: FakeCloud, runs: Runs) -> None:
    fake.default = Reply(status=500)
    run = runs()
    with pytest.raises(CloudUnavailable, match=r"cloud 'fake': HTTP 500; gave up after 3 attempt"):
        await run.ask()
    assert len(fake.received) == 3 and len(run.waits) == 2
    assert run.horizon.ledger.spent("fake", time.time()).day_spent == 0.0


async def test_a_retry_after_beyond_the_total_time_ends_at_once(
    fake: FakeCloud, runs: Runs
) -> None:
    fake.default = Reply(status=429, retry_after="120")
    run = runs()
    with pytest.raises(CloudUnavailable, match=r"HTTP 429; gave up after 1 .*wait 120 s"):
        await run.ask()
    assert len(fake.received) == 1 and run.waits == []


async def test_client_errors_are_not_retried(fake: FakeCloud, runs: Runs) -> None:
    fake.default = Reply(status=401)
    run = runs()
    with pytest.raises(CloudRejected, match=r"HTTP 401 \(code test_error\)\); check the key in "
                                            r"\$FAKE_CLOUD_KEY"):
        await run.ask()
    assert len(fake.received) == 1


async def test_a_missing_key_is_named_and_nothing_is_sent(fake: FakeCloud, runs: Runs) -> None:
    run = runs(env={})
    with pytest.raises(CloudRejected, match=r"needs its API key in \$FAKE_CLOUD_KEY"):
        await run.ask()
    assert fake.received == []


@pytest.mark.parametrize(("env", "sent"), [({}, "sk-shared"), (ENV, KEY)])
async def test_a_key_shared_by_the_owners_devices_is_used_unless_the_variable_is_set(
    fake: FakeCloud, env: dict[str, str], sent: str,
) -> None:
    shared = {"fake": "sk-shared"}
    cloud = dataclasses.replace(CLOUD, url=fake.url)
    async with Horizon([cloud], None, env=env, synced_key=shared.get) as horizon:
        await horizon.executor("cloud:fake").run(request(), _no_emit)
        assert fake.received[0].headers["authorization"] == f"Bearer {sent}"
        shared.clear()  # unshared: the key is looked up per request
        if env:
            await horizon.executor("cloud:fake").run(request(), _no_emit)
            assert fake.received[1].headers["authorization"] == f"Bearer {KEY}"
        else:
            with pytest.raises(CloudRejected, match="`islandnode cloud sync-key fake`"):
                await horizon.executor("cloud:fake").run(request(), _no_emit)
            assert len(fake.received) == 1


async def _no_emit(_: str) -> None:
    pass


async def test_a_silent_server_times_out_after_bounded_retries(fake: FakeCloud, runs: Runs) -> None:
    fake.default = Reply(stall=True)
    run = runs(timeout=0.2)
    with pytest.raises(CloudUnavailable, match="timed out; gave up after 3 attempt"):
        await run.ask()
    assert len(fake.received) == 3


async def test_the_request_deadline_bounds_everything(fake: FakeCloud) -> None:
    fake.default = Reply(stall=True)
    run = Run(fake)  # 5 s per read, but the request has 0.3 s
    with pytest.raises(CloudUnavailable, match="before the request's deadline"):
        await run.ask(deadline_in=0.3)


async def test_a_refused_connection_is_retried_then_reported(runs: Runs) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    run = runs(url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(CloudUnavailable, match=r"connection failed \(ConnectError\); gave up"):
        await run.ask()
    assert len(run.waits) == 2


async def test_an_answer_cut_off_midway_is_not_retried_but_is_charged(
    fake: FakeCloud, runs: Runs
) -> None:
    fake.default = Reply(done=False)
    run = runs()
    with pytest.raises(CloudUnavailable, match=r"ended early after 3 chunk\(s\)"):
        await run.ask()
    assert len(fake.received) == 1  # a retry would repeat what the user already has
    assert run.horizon.ledger.spent("fake", time.time()).day_spent > 0.0


async def test_the_api_key_never_reaches_logs_errors_reprs_or_files(
    fake: FakeCloud, runs: Runs, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script = [Reply(status=429), Reply(), Reply(status=401), Reply(status=500)]
    fake.default = Reply(status=500)
    texts: list[str] = []
    for _ in range(3):
        run = runs(home=tmp_path)
        try:
            await run.ask()
        except Exception as exc:
            texts += [str(exc), repr(exc)]
        texts += [repr(run.horizon.executor("cloud:fake")), repr(run.cloud),
                  repr(run.horizon.snapshots())]
    assert len(texts) == 3 * 3 + 2 * 2  # two of the three runs failed
    assert fake.received[1].headers["authorization"] == f"Bearer {KEY}"  # the key was used
    assert caplog.records  # httpx and the retry logged something
    everything = [*texts, caplog.text, *(r.getMessage() for r in caplog.records),
                  *(p.read_text() for p in tmp_path.iterdir())]
    assert not [t for t in everything if "CANARYKEY" in t]


async def test_budget_ceiling_refuses_before_sending(
    fake: FakeCloud, runs: Runs, tmp_path: Path
) -> None:
    run = runs(home=tmp_path, daily_budget=COST * 1.5)
    await run.ask()  # spends COST: under the ceiling before, not after a second
    await run.ask()
    with pytest.raises(BudgetExceeded, match=r"cloud 'fake': daily budget 0\.009 reached"):
        await run.ask()
    assert len(fake.received) == 2
    persisted = load_ledger(tmp_path).spent("fake", time.time())
    assert persisted.day_spent == pytest.approx(2 * COST)
    assert (tmp_path / "spend.json").stat().st_mode & 0o777 == 0o600


def test_cloud_snapshots_for_waves() -> None:
    ledger = BudgetLedger()
    ledger.record("fake", 0.25, time.time())
    capped = dataclasses.replace(CLOUD, monthly_budget=1.0)
    free = dataclasses.replace(CLOUD, name="free", price_in=0.0, price_out=0.0)
    island, other = cloud_snapshots([capped, free], ledger, time.time())
    assert island.device_id == "cloud:fake" and island.kind is IslandKind.CLOUD
    assert (island.trust, island.privacy, island.models) == (0.4, 0.4, frozenset({"fake-model"}))
    assert island.price_per_token == pytest.approx(5.0 / 1e6)  # mean of 2 and 8 per 1M
    assert island.budget_left == pytest.approx(0.75) and island.alive
    assert (other.device_id, other.price_per_token, other.budget_left) == ("cloud:free", 0.0, None)


# --- through the dispatcher: MIST -> WAVES -> HORIZON -> restored answer --------------

CANARIES = ("Alice Johnson", "alice.johnson@example.com", "(415) 555-0134", "123-45-6789")
HISTORY = (
    "My name is Alice Johnson, email alice.johnson@example.com, phone (415) 555-0134, "
    "SSN 123-45-6789.",
    "Thanks Alice Johnson, I noted your email alice.johnson@example.com and SSN 123-45-6789.",
    "Please write a short letter to my bank with my name, phone (415) 555-0134 and SSN.",
)


def dispatcher(horizon: Horizon, audit: list[dict[str, object]]) -> Dispatcher:
    async def run_local(request: m.InferenceRequest, emit: object) -> Usage:
        raise AssertionError("this test routes to the cloud")

    async def record(entry: dict[str, object]) -> None:
        audit.append(entry)

    return Dispatcher(policy=waves.RoutePolicy(), limiter=RateLimiter(RateLimitConfig()),
                      run_local=run_local, ship=horizon.ship, audit=record)


async def route(horizon: Horizon, audit: list[dict[str, object]], chunks: list[str]) -> object:
    here = local_snapshot("here", "laptop", [m.ModelInfo(name="small", context=512)],
                          CapacityReport.exhausted())

    async def collect(text: str) -> None:
        chunks.append(text)

    return await dispatcher(horizon, audit).run(
        request(*HISTORY, conversation_id="c1", model_hint="fake-model"),
        islands=[here, *horizon.snapshots()], local=CapacityReport.exhausted(), cached=(),
        client_id="test", on_chunk=collect,
    )


async def test_cloud_receives_only_sanitized_history_and_client_gets_values_back(
    fake: FakeCloud,
) -> None:
    fake.default = Reply(echo=True)  # answers with the (sanitised) text it was sent
    cloud = dataclasses.replace(CLOUD, url=fake.url, privacy=1.0)  # trust stays 0.4
    audit: list[dict[str, object]] = []
    chunks: list[str] = []
    async with Horizon([cloud], None, retry=FAST, env=ENV) as horizon:
        outcome = await route(horizon, audit, chunks)
        assert horizon.owns("cloud:fake") and not horizon.owns("fake")
    assert outcome.sanitized and outcome.decision.island.device_id == "cloud:fake"  # type: ignore[attr-defined]
    [sent] = fake.received
    raw = sent.body + json.dumps(sent.headers).encode()
    assert [c for c in CANARIES if c.encode() in raw] == []
    for part in ("Alice", "Johnson", "alice.johnson", "555-0134", "6789"):
        assert part.encode() not in raw
    contents = [msg["content"] for msg in sent.json["messages"]]
    assert len(contents) == 3 and all("[PERSON_" in c for c in contents[:2])
    answer = "".join(chunks)
    assert answer == "\n".join(HISTORY)  # every placeholder restored, even split across chunks
    assert "CANARYKEY" not in json.dumps(audit) and "Alice" not in json.dumps(audit)


async def test_an_exhausted_budget_is_a_refusal_naming_it(fake: FakeCloud) -> None:
    cloud = dataclasses.replace(CLOUD, url=fake.url, privacy=1.0, daily_budget=0.01)
    async with Horizon([cloud], None, env=ENV) as horizon:
        horizon.ledger.record("fake", 0.01, time.time())
        with pytest.raises(Refused, match=r"spend budget: fake") as info:
            await route(horizon, [], [])
    assert "left of its daily / monthly spend ceiling" in "\n".join(info.value.decision.explain())
    assert fake.received == []


async def test_a_failing_cloud_fails_over_to_the_next(fake: FakeCloud) -> None:
    fake.script = [Reply(status=500)] * FAST.max_attempts
    first = dataclasses.replace(CLOUD, url=fake.url, privacy=1.0, name="a", price_in=1.0)
    second = dataclasses.replace(first, name="b", price_in=3.0)  # dearer: chosen second
    chunks: list[str] = []
    async with Horizon([first, second], None, retry=FAST, sleep=_no_wait, env=ENV) as horizon:
        outcome = await route(horizon, [], chunks)
    assert outcome.decision.island.device_id == "cloud:b"  # type: ignore[attr-defined]
    assert outcome.decision.failed == ("cloud:a",)  # type: ignore[attr-defined]
    assert "".join(chunks) == "Hello from the cloud"


async def _no_wait(seconds: float) -> None:
    return None
