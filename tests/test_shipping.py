"""Request shipping over the in-memory network, in virtual time."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from nacl.signing import SigningKey

from islandrun.node.executor import EchoExecutor, Emit, Usage
from islandrun.node.shipping import (
    IslandFailed,
    RequestRefused,
    ShippingConfig,
    serve_request,
    ship_request,
)
from islandrun.protocol import messages as m
from islandrun.protocol.errors import LocalProtocolError
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.sealing import Sealer
from islandrun.transports.memory import MemoryNetwork, MemoryTransport

CLIENT_KEY, ISLAND_KEY = SigningKey(b"\x01" * 32), SigningKey(b"\x02" * 32)
CLIENT = device_id_from_public_key(bytes(CLIENT_KEY.verify_key))
ISLAND = device_id_from_public_key(bytes(ISLAND_KEY.verify_key))
CONFIG = ShippingConfig(read_timeout=3.0, keepalive_interval=1.0)
T0 = 1_800_000_000.0


def request(
    text: str = "hello brave new world", *, deadline: float = T0 + 60
) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r1",
        messages=(m.ChatMessage(role=m.Role.USER, content=text),),
        deadline=deadline,
    )


class SlowExecutor(EchoExecutor):
    """Echo with a pause per word; records whether it was cancelled."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay=delay)
        self.cancelled = False
        self.finished = False

    async def run(self, req: m.InferenceRequest, emit: Emit) -> Usage:
        try:
            usage = await super().run(req, emit)
        except trio.Cancelled:
            self.cancelled = True
            raise
        self.finished = True
        return usage


class Failing(EchoExecutor):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    async def run(self, req: m.InferenceRequest, emit: Emit) -> Usage:
        raise self.exc


@asynccontextmanager
async def mesh(
    executor: object,
    *,
    allowed: Callable[[str], bool] = lambda _: True,
) -> AsyncIterator[tuple[MemoryNetwork, MemoryTransport]]:
    """An island serving ``executor`` and a client; wall clock starts at T0."""
    net = MemoryNetwork(rng=random.Random(1))
    start = trio.current_time()

    def clock() -> float:
        return T0 + trio.current_time() - start

    island_sealer = Sealer(ISLAND_KEY)

    async def handler(stream):  # type: ignore[no-untyped-def]
        await serve_request(
            stream, island_sealer, executor, is_allowed=allowed,  # type: ignore[arg-type]
            config=CONFIG, wall_clock=clock,
        )

    async with net.node(ISLAND, is_allowed=lambda _: True) as island:
        island.serve(handler)
        async with net.node(CLIENT, is_allowed=lambda _: True) as client:
            yield net, client


async def ask(client: MemoryTransport, req: m.InferenceRequest) -> tuple[str, m.ResponseEnd]:
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    async with client.open_stream(ISLAND) as stream:
        end = await ship_request(stream, Sealer(CLIENT_KEY), req, on_chunk, config=CONFIG)
    return "".join(chunks), end


async def test_round_trip_streams_chunks() -> None:
    async with mesh(EchoExecutor()) as (_, client):
        text, end = await ask(client, request())
    assert text == "hello brave new world"
    assert end.completion_tokens == 4 and end.request_id == "r1"


async def test_slow_model_is_kept_alive(autojump_clock: trio.testing.MockClock) -> None:
    slow = SlowExecutor(delay=2.5)  # slower than the read timeout, but alive
    async with mesh(slow) as (_, client):
        text, _ = await ask(client, request("a b c"))
    assert text == "a b c" and slow.finished


async def test_frozen_island_detected_within_read_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with mesh(SlowExecutor(delay=0.5)) as (net, client):
        start = trio.current_time()

        async def freeze_soon() -> None:
            await trio.sleep(1.2)
            net.freeze(ISLAND)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(freeze_soon)
            with pytest.raises(IslandFailed, match="dead or frozen"):
                await ask(client, request("one two three four five six seven eight"))
        assert trio.current_time() - start <= 1.2 + CONFIG.read_timeout + 0.1
        net.thaw(ISLAND)


async def test_crashed_island_fails_over_quickly(autojump_clock: trio.testing.MockClock) -> None:
    async with mesh(SlowExecutor(delay=0.5)) as (net, client):
        start = trio.current_time()

        async def crash_soon() -> None:
            await trio.sleep(1.0)
            net.crash(ISLAND)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(crash_soon)
            with pytest.raises(IslandFailed):
                await ask(client, request("one two three four five six seven eight"))
        assert trio.current_time() - start < 5.0


async def test_client_going_away_stops_remote_generation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = SlowExecutor(delay=1.0)
    async with mesh(slow) as (_, client):
        with trio.move_on_after(2.5):
            await ask(client, request("w " * 50))
        await trio.sleep(3)  # give the island time to notice
    assert slow.cancelled and not slow.finished


@pytest.mark.parametrize(
    ("executor", "code"),
    [
        (Failing(LocalProtocolError("model not loaded")), "failed"),
        (Failing(RuntimeError("secret prompt text")), "internal"),
    ],
)
async def test_executor_errors_become_refusals(executor: EchoExecutor, code: str) -> None:
    async with mesh(executor) as (_, client):
        with pytest.raises(RequestRefused) as info:
            await ask(client, request())
    assert info.value.code == code
    assert "secret prompt text" not in str(info.value)


async def test_unpaired_client_is_refused() -> None:
    async with mesh(EchoExecutor(), allowed=lambda peer: peer != CLIENT) as (_, client):
        with pytest.raises(RequestRefused) as info:
            await ask(client, request())
    assert info.value.code == "not_paired"


async def test_past_deadline_is_refused() -> None:
    async with mesh(EchoExecutor()) as (_, client):
        with pytest.raises(RequestRefused) as info:
            await ask(client, request(deadline=T0 - 1))
    assert info.value.code == "deadline"


async def test_deadline_during_generation(autojump_clock: trio.testing.MockClock) -> None:
    async with mesh(SlowExecutor(delay=1.0)) as (_, client):
        with pytest.raises(RequestRefused) as info:
            await ask(client, request("w " * 20, deadline=T0 + 3.5))
    assert info.value.code == "deadline"


async def test_garbage_request_gets_an_error_and_island_keeps_serving() -> None:
    async with mesh(EchoExecutor()) as (_, client):
        async with client.open_stream(ISLAND) as stream:
            await stream.send(b"\x00garbage")
            reply = await stream.receive()
            _, payload = Sealer(CLIENT_KEY).open(reply)
            error = m.decode(payload)
        assert isinstance(error, m.ErrorMessage) and error.code == "bad_request"
        text, _ = await ask(client, request("still here"))
    assert text == "still here"


