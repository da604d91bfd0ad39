"""Request shipping: a sealed request out, sealed streamed chunks back.

One request uses one :class:`~islandrun.transports.base.MessageStream`.
Every message on it is sealed end to end (``protocol.sealing``) between the
requesting device and the island, so relays see only ciphertext::

    client -> island   InferenceRequest
    island -> client   Keepalive | ResponseChunk ...  then ResponseEnd or ErrorMessage
    client -> island   Cancel (optional; closing the stream means the same)

Failure detection. The island sends a :class:`Keepalive` whenever it has
had nothing to send for ``keepalive_interval``; the client puts a deadline
of ``read_timeout`` on every read. A dead or frozen island (kill -9,
SIGSTOP) therefore surfaces as :class:`IslandFailed` within ``read_timeout``
(3 s by default, inside the 5 s the node promises), however slowly its
model produces tokens, and WAVES can fail over to the next eligible island.

Cancellation. If the client goes away (it cancels, or its stream closes),
the island sees the stream end or a :class:`Cancel` and cancels the
executor, so the remote generation stops.

What this is not: it does not choose the island (WAVES) or sanitize text
(MIST). It trusts nothing it receives: every message is opened with the
expected sender's key and decoded with size limits.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import public_key_from_device_id
from islandrun.protocol.sealing import Sealer
from islandrun.transports.base import MessageStream, PeerUnavailable, StreamClosed

from .executor import Emit, Executor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShippingConfig:
    #: Longest silence from the island before it counts as failed (s).
    #: Must exceed ``keepalive_interval`` plus a network round trip.
    read_timeout: float = 3.0
    #: The island sends a keepalive after this much silence (s).
    keepalive_interval: float = 1.0


class IslandFailed(IslandRunError):
    """The island died, froze or broke the protocol; try another one."""


class RequestRefused(IslandRunError):
    """The island answered with an error (``code``), e.g. not paired, deadline."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"island refused the request ({code}): {message}")
        self.code = code


OnChunk = Callable[[str], Awaitable[None]]


async def ship_request(
    stream: MessageStream,
    sealer: Sealer,
    request: m.InferenceRequest,
    on_chunk: OnChunk,
    *,
    config: ShippingConfig = ShippingConfig(),
) -> m.ResponseEnd:
    """Send ``request`` over ``stream`` and stream the answer into ``on_chunk``."""
    island_key = public_key_from_device_id(stream.peer)
    try:
        await stream.send(sealer.seal(island_key, m.encode(request)))
        while True:
            with trio.fail_after(config.read_timeout):
                data = await stream.receive()
            _, payload = sealer.open(data, expected_sender=island_key)
            reply = m.decode(payload)
            if isinstance(reply, m.ResponseChunk):
                await on_chunk(reply.text)
            elif isinstance(reply, m.ResponseEnd):
                return reply
            elif isinstance(reply, m.ErrorMessage):
                raise RequestRefused(reply.code, reply.message)
            elif not isinstance(reply, m.Keepalive):
                raise IslandFailed(f"island sent an unexpected {type(reply).__name__}")
    except trio.TooSlowError:
        silent = f"island silent for {config.read_timeout:.0f} s (dead or frozen)"
        raise IslandFailed(silent) from None
    except (PeerUnavailable, StreamClosed) as exc:
        raise IslandFailed(f"island connection lost: {exc}") from None
    except RequestRefused:
        raise
    except IslandRunError as exc:  # undecodable or unsealable reply
        raise IslandFailed(f"island sent invalid data: {exc}") from None


class Session:
    """A sealed conversation with the peer at the other end of one stream.

    Every message is sealed to the peer's key (its device id) and opened with
    that key expected, so only that device can read what we send and
    anything else it sends is refused. Sends are serialised (chunks and
    keepalives come from different tasks); ``last_sent`` drives keepalives.
    """

    def __init__(self, stream: MessageStream, sealer: Sealer, config: ShippingConfig) -> None:
        self.stream, self._sealer, self._config = stream, sealer, config
        self.peer = stream.peer
        self.peer_key = public_key_from_device_id(stream.peer)
        self._lock = trio.Lock()
        self.last_sent = trio.current_time()

    async def send(self, message: m.Message) -> None:
        async with self._lock:
            await self.stream.send(self._sealer.seal(self.peer_key, m.encode(message)))
            self.last_sent = trio.current_time()

    async def receive(self) -> m.Message:
        """The next message, within the read deadline (``trio.TooSlowError``)."""
        with trio.fail_after(self._config.read_timeout):
            data = await self.stream.receive()
        _, payload = self._sealer.open(data, expected_sender=self.peer_key)
        return m.decode(payload)


#: Handles a stream whose first message is not an inference request.
OtherHandler = Callable[[Session, Any], Awaitable[None]]
#: Whether to run a paired sender's request now: None, or (code, message) to refuse.
Admit = Callable[[str], tuple[str, str] | None]


async def serve_request(
    stream: MessageStream,
    sealer: Sealer,
    executor: Executor,
    *,
    is_allowed: Callable[[str], bool],
    config: ShippingConfig = ShippingConfig(),
    wall_clock: Callable[[], float] = time.time,
    others: Mapping[type, OtherHandler] | None = None,
    admit: Admit | None = None,
) -> None:
    """Handle one inbound stream on the island side.

    The first (sealed) message says what the stream is for: an
    :class:`~m.InferenceRequest` runs on ``executor`` if its sender is paired;
    any other message type goes to its handler in ``others`` (pairing, which
    by nature comes from devices not paired yet). Never raises for anything
    the peer did: refusals go back as :class:`ErrorMessage`, a peer that
    vanishes just ends the handler. ``admit`` may refuse a paired sender's
    request for now (e.g. this device's battery is low).
    """
    session = Session(stream, sealer, config)
    try:
        message = await session.receive()
    except (trio.TooSlowError, PeerUnavailable, StreamClosed):
        return
    except IslandRunError as exc:
        await _try_send(session, m.ErrorMessage(code="bad_request", message=str(exc)[:512]))
        return
    if not isinstance(message, m.InferenceRequest):
        await _serve_other(session, message, others or {})
        return
    if not is_allowed(stream.peer):
        await _try_send(session, _error(message, "not_paired", "this device is not paired"))
        return
    refused = admit(stream.peer) if admit is not None else None
    if refused is not None:
        await _try_send(session, _error(message, *refused))
        return
    remaining = message.deadline - wall_clock()
    if remaining <= 0:
        await _try_send(session, _error(message, "deadline", "the request's deadline has passed"))
        return
    await _run(message, executor, session, stream, config, remaining)


async def _serve_other(
    session: Session, message: m.Message, others: Mapping[type, OtherHandler]
) -> None:
    handler = others.get(type(message))
    if handler is None:
        unexpected = f"unexpected {type(message).__name__}"
        await _try_send(session, m.ErrorMessage(code="bad_request", message=unexpected))
        return
    try:
        await handler(session, message)
    except (trio.TooSlowError, PeerUnavailable, StreamClosed):
        return
    except IslandRunError as exc:
        await _try_send(session, m.ErrorMessage(code="refused", message=str(exc)[:512]))


async def _run(
    request: m.InferenceRequest,
    executor: Executor,
    reply: Session,
    stream: MessageStream,
    config: ShippingConfig,
    remaining: float,
) -> None:
    # No exception leaves these nurseries (trio would wrap it in an
    # ExceptionGroup): each task turns "the client went away" into
    # cancelling the whole scope, which also stops the executor.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_keepalive, reply, request.request_id, config, nursery.cancel_scope)
        nursery.start_soon(_watch_client, stream, nursery.cancel_scope)
        chunks = _Coalescer(reply, request.request_id, nursery.cancel_scope)
        async with trio.open_nursery() as writer:
            writer.start_soon(chunks.run)
            outcome = await _generate(request, executor, chunks.emit, remaining)
            chunks.close()  # the writer flushes what is queued, then ends
        if outcome is not None:
            await _try_send(reply, outcome)
        nursery.cancel_scope.cancel()


class _Coalescer:
    """Sends the executor's chunks, batching those that queue up meanwhile.

    Each message on a libp2p stream costs a fixed ~0.5 ms (Yamux, Noise,
    trio), so one message per token caps a stream near 2,000 tokens/s. While
    one send is in flight, further chunks queue; the next send carries all
    of them (up to ``MAX_BATCH`` characters). Nothing waits on a timer, so a
    slow model's tokens still go out one by one, at once.
    """

    MAX_BATCH = 16 * 1024
    QUEUE = 1024

    def __init__(self, reply: Session, request_id: str, scope: trio.CancelScope) -> None:
        self._reply, self._request_id, self._scope = reply, request_id, scope
        self._send, self._receive = trio.open_memory_channel[str](self.QUEUE)
        self._index = 0

    async def emit(self, text: str) -> None:
        await self._send.send(text)

    def close(self) -> None:
        self._send.close()

    async def run(self) -> None:
        async for first in self._receive:
            # One scheduling round lets an executor that has more ready (a
            # fast model, a burst) queue it, so it joins this message.
            await trio.lowlevel.checkpoint()
            parts, size = [first], len(first)
            while size < self.MAX_BATCH:
                try:
                    part = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                parts.append(part)
                size += len(part)
            text = "".join(parts)
            chunk = m.ResponseChunk(request_id=self._request_id, index=self._index, text=text)
            self._index += 1
            if not await _try_send(self._reply, chunk):
                self._scope.cancel()  # the client went away
                return


async def _generate(
    request: m.InferenceRequest, executor: Executor, emit: Emit, remaining: float
) -> m.Message | None:
    """Run the executor; the final message to send, or None if the client left."""
    try:
        with trio.move_on_after(remaining) as deadline:
            usage = await executor.run(request, emit)
            return m.ResponseEnd(
                request_id=request.request_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                finish_reason=usage.finish_reason,
            )
    except (PeerUnavailable, StreamClosed):
        return None
    except IslandRunError as exc:
        return _error(request, "failed", str(exc)[:512])
    except Exception as exc:  # an executor bug must not take the node down
        log.error("executor failed with %s", type(exc).__name__)
        return _error(request, "internal", "the island failed to run the request")
    assert deadline.cancelled_caught
    return _error(request, "deadline", "the deadline passed during generation")


def _error(request: m.InferenceRequest, code: str, message: str) -> m.ErrorMessage:
    return m.ErrorMessage(request_id=request.request_id, code=code, message=message)


async def _try_send(reply: Session, message: m.Message) -> bool:
    try:
        await reply.send(message)
    except (PeerUnavailable, StreamClosed):
        return False
    return True


async def _keepalive(
    reply: Session, request_id: str, config: ShippingConfig, scope: trio.CancelScope
) -> None:
    while True:
        await trio.sleep_until(reply.last_sent + config.keepalive_interval)
        due = trio.current_time() >= reply.last_sent + config.keepalive_interval
        if due and not await _try_send(reply, m.Keepalive(request_id=request_id)):
            scope.cancel()
            return


async def _watch_client(stream: MessageStream, scope: trio.CancelScope) -> None:
    """Cancel the generation when the client cancels or goes away.

    The client sends nothing after its request except a :class:`Cancel`, so
    whatever arrives next -- a cancel or the end of the stream -- means stop.
    """
    with contextlib.suppress(PeerUnavailable, StreamClosed):
        await stream.receive()
    scope.cancel()
