"""SHORE: runs requests on this device with llama.cpp (paper: the local island).

SHORE is the :class:`~islandrun.node.executor.Executor` for the GGUF models
listed under ``[[models]]`` in the node config. It

* loads a model lazily, on the first request that names it, and keeps the
  ``hot_models`` most recently used ones loaded (least recently used idle
  model goes first);
* runs one generation at a time per loaded model -- a llama.cpp context is
  not thread safe -- behind a trio lock, so requests for the same model
  queue while requests for different models run side by side;
* generates in a worker thread, so trio never blocks, and streams the text
  back as it is sampled (the first token at once; tokens that follow faster
  than the current gap, 25 ms growing to 50 ms, are joined, see
  :class:`ShoreConfig`);
* stops when cancelled: the caller's cancellation (client gone, deadline)
  sets a flag the worker checks after every token, and SHORE waits for the
  worker to stop before the model is free again -- so a cancelled
  generation ends within a token, never runs on in the background;
* enforces the request's deadline itself too (queueing for the model counts).

Threading design. The worker pushes each piece of text to trio with
``TrioToken.run_sync_soon`` (non-blocking: generation never waits on the
event loop) into a memory channel that trio reads; the worker's end comes
through the same channel, so text and the end arrive in order. The channel
is bounded by the request's ``max_tokens``: the worker delivers at most one
item per generated token, plus the end.

What this is not: no routing (WAVES) and no load sampling (TIDE, which the
runtime tells about each request it serves). Prompt text never appears in
our errors or logs.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import outcome
import trio

from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.messages import InferenceRequest, ModelInfo

from .config import ModelSection
from .executor import Emit, Usage
from .ggufinfo import quantization


@dataclass(frozen=True, slots=True, kw_only=True)
class ShoreConfig:
    #: Most models kept loaded at once. Each costs its file size in memory
    #: (plus its context's KV cache); 2 lets a chat model and a second one
    #: alternate without reloading. A model busy generating is never unloaded,
    #: so while all are busy one more may be loaded for a moment.
    hot_models: int = 2
    #: Shortest time between two pieces of streamed text (s). The first token
    #: goes out at once; after it, tokens that come faster than this are
    #: joined into one piece. Every piece costs the event loop a wake-up and,
    #: through the mesh, a sealed message (~1 ms of the island's event-loop
    #: CPU in py-libp2p), which a small model making 1,000 tokens/s would
    #: otherwise pay on every token, taking the GIL from generation itself
    #: (bench/inference.py, client and island then in one process: 10 ms gave
    #: 84% of direct speed, 25 ms 91%). A model slower than this sends every
    #: token at once, as before.
    stream_interval: float = 0.025
    #: Longest time between two pieces (s). Once an answer streams, the gap
    #: doubles after each piece, from ``stream_interval`` up to this: the
    #: first words arrive as fast as before, and a long fast answer costs 20
    #: messages a second instead of 40 -- still a smooth stream to a reader.
    stream_interval_max: float = 0.05

    def __post_init__(self) -> None:
        if self.hot_models < 1:
            raise ValueError("hot_models must be at least 1")
        if not 0 <= self.stream_interval <= self.stream_interval_max:
            raise ValueError("need 0 <= stream_interval <= stream_interval_max")


class ShoreError(IslandRunError):
    """SHORE could not run a request on this device."""


class UnknownModel(ShoreError):
    """The request names a model this island does not have."""


class ModelLoadFailed(ShoreError):
    """A configured model file is missing or llama.cpp cannot load it."""


class GenerationFailed(ShoreError):
    """llama.cpp refused the request (e.g. the prompt exceeds the context)."""


class DeadlinePassed(ShoreError):
    """The request's deadline passed while it queued or generated here."""


def load_llama(spec: ModelSection) -> Any:
    """Load a GGUF model with llama-cpp-python (blocking; call in a thread)."""
    import llama_cpp

    return llama_cpp.Llama(
        model_path=spec.path,
        n_ctx=spec.context,
        n_threads=spec.threads or None,
        n_threads_batch=spec.threads or None,
        n_gpu_layers=spec.gpu_layers,
        verbose=False,
    )


class _Slot:
    """One configured model: its lock and, while hot, the loaded model."""

    def __init__(self, spec: ModelSection) -> None:
        self.spec = spec
        self.lock = trio.Lock()  # held for the whole of a load or generation
        self.llm: Any = None  # the llama_cpp.Llama while loaded
        self.last_used = 0  # SHORE's use counter at the last request (LRU order)


class Shore:
    """The llama.cpp executor over the configured models."""

    def __init__(
        self,
        models: Sequence[ModelSection],
        config: ShoreConfig = ShoreConfig(),
        *,
        loader: Callable[[ModelSection], Any] = load_llama,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._slots = {spec.name: _Slot(spec) for spec in models}
        self._config, self._loader, self._clock = config, loader, wall_clock
        self._uses = 0

    def models(self) -> tuple[ModelInfo, ...]:
        return tuple(
            ModelInfo(name=s.spec.name, context=s.spec.context,
                      quantization=quantization(s.spec.path))
            for s in self._slots.values()
        )

    def update_models(self, models: Sequence[ModelSection]) -> None:
        """Serve ``models`` from now on (``node.reload``). A model whose entry is
        unchanged keeps its slot (and stays loaded); a changed or removed one
        is dropped, and a generation running on it finishes first."""
        self._slots = {
            spec.name: slot if (slot := self._slots.get(spec.name)) and slot.spec == spec
            else _Slot(spec)
            for spec in models
        }

    def hot(self) -> tuple[str, ...]:
        """Names of the models loaded now, most recently used first."""
        loaded = [s for s in self._slots.values() if s.llm is not None]
        return tuple(s.spec.name for s in sorted(loaded, key=lambda s: -s.last_used))

    async def run(self, request: InferenceRequest, emit: Emit) -> Usage:
        slot = self._slot(request.model_hint)
        remaining = max(0.0, request.deadline - self._clock())
        try:
            with trio.fail_after(remaining):
                async with slot.lock:
                    self._uses += 1
                    slot.last_used = self._uses
                    llm = await self._ensure_loaded(slot)
                    return await _generate(llm, slot.spec.name, request, emit, self._config)
        except trio.TooSlowError:
            raise DeadlinePassed(
                f"the deadline passed while model {slot.spec.name!r} queued or generated"
            ) from None

    def _slot(self, name: str | None) -> _Slot:
        if name is None and self._slots:
            return next(iter(self._slots.values()))
        slot = self._slots.get(name) if name is not None else None
        if slot is None:
            have = ", ".join(self._slots) or "none (add one with `islandnode models add PATH`)"
            asked = f"model {name[:80]!r}" if name else "a request naming no model"
            raise UnknownModel(f"this island cannot run {asked}; its models: {have}")
        return slot

    async def _ensure_loaded(self, slot: _Slot) -> Any:
        if slot.llm is None:
            await self._make_room()
            slot.llm = await trio.to_thread.run_sync(self._load, slot.spec)
        return slot.llm

    def _load(self, spec: ModelSection) -> Any:
        if not Path(spec.path).is_file():
            raise ModelLoadFailed(
                f"model {spec.name!r}: {spec.path} does not exist; fix its [[models]] entry "
                f"or run `islandnode models remove {spec.name}`"
            )
        try:
            return self._loader(spec)
        except (ValueError, OSError, RuntimeError) as exc:
            raise ModelLoadFailed(
                f"llama.cpp cannot load model {spec.name!r} from {spec.path} ({exc}); "
                "is it a GGUF file this llama-cpp-python version supports?"
            ) from None

    async def _make_room(self) -> None:
        """Unload idle models, least recently used first, below ``hot_models``."""
        idle = sorted(
            (s for s in self._slots.values() if s.llm is not None and not s.lock.locked()),
            key=lambda s: s.last_used,
        )
        excess = len(self.hot()) - self._config.hot_models + 1
        for slot in idle[: max(0, excess)]:
            llm, slot.llm = slot.llm, None
            await trio.to_thread.run_sync(llm.close)


@dataclass(frozen=True, slots=True)
class _End:
    """The worker's last item: its finish reason, or the error it raised."""

    result: outcome.Outcome[str]


class _Steering:
    """A llama.cpp logits processor: called before every sampled token, it
    counts prompt and completion tokens, and once ``stop`` is set it leaves
    end-of-sequence as the only possible next token, so the generation ends.

    Checking here, not only between streamed chunks, matters: llama-cpp-python
    holds text back while it ends in an incomplete UTF-8 sequence, and a
    (random, or unlucky) model can generate many tokens without yielding.
    It must not raise: llama.cpp calls it through a C callback, which
    swallows exceptions.
    """

    def __init__(self, stop: threading.Event, eos: int) -> None:
        self.stop, self.eos = stop, eos
        self.prompt = 0
        self.completion = 0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.stop.is_set():
            scores[:] = -np.inf
            scores[self.eos] = 0.0
            return scores
        if self.completion == 0:
            self.prompt = len(input_ids)
        self.completion += 1
        return scores


async def _generate(
    llm: Any, name: str, request: InferenceRequest, emit: Emit, config: ShoreConfig
) -> Usage:
    """Stream one chat completion from ``llm`` into ``emit``; cancellable."""
    stop = threading.Event()
    counter = _Steering(stop, llm.token_eos())
    chunks = partial(
        llm.create_chat_completion,
        messages=[{"role": m.role.value, "content": m.content} for m in request.messages],
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        stream=True,
        logits_processor=[counter],
    )
    send, receive = trio.open_memory_channel[str | _End](request.max_tokens + 1)
    token = trio.lowlevel.current_trio_token()

    def deliver(item: str | _End) -> None:  # in the worker thread
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(send.send_nowait, item)

    work = partial(_worker, chunks, deliver, stop, request.max_tokens, config)
    trio.lowlevel.start_thread_soon(work, lambda result: deliver(_End(result)), name="shore")
    ended = False
    try:
        async for item in receive:
            if isinstance(item, _End):
                ended = True
                finish = _unwrap(item.result, name)
                return Usage(counter.prompt, counter.completion, finish_reason=finish)
            await emit(item)
    finally:
        if not ended:  # cancelled, or emit failed: stop the worker, wait for it
            stop.set()
            with trio.CancelScope(shield=True):
                async for item in receive:
                    if isinstance(item, _End):
                        break
    raise AssertionError("the worker always delivers its end")  # pragma: no cover


def _worker(
    chunks: Callable[[], Iterator[Any]],
    deliver: Callable[[str], None],
    stop: threading.Event,
    limit: int,
    config: ShoreConfig,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Runs in the worker thread: iterate the stream until done or stopped,
    delivering the first piece of text at once, then pieces at least ``gap``
    apart, the gap doubling from ``stream_interval`` to ``stream_interval_max``."""
    finish, pieces, last, gap = "stop", 0, -math.inf, config.stream_interval
    pending: list[str] = []
    stream = chunks()
    try:
        for chunk in stream:
            choice = chunk["choices"][0]
            if text := choice["delta"].get("content"):
                pending.append(text)
                pieces += 1
                if clock() - last >= gap:
                    deliver("".join(pending))
                    pending.clear()
                    if last > -math.inf:  # the first piece leaves the gap as it is
                        gap = min(2 * gap, config.stream_interval_max)
                    last = clock()
            finish = choice.get("finish_reason") or finish
            if stop.is_set() or pieces >= limit:
                break
    finally:
        stream.close()  # ends llama-cpp-python's generator: no further tokens
    if pending:
        deliver("".join(pending))
    return finish


def _unwrap(result: outcome.Outcome[str], name: str) -> str:
    try:
        return result.unwrap()
    except ValueError as exc:
        # llama-cpp-python's messages carry token counts, never prompt text.
        reason = str(exc)[:200]
        raise GenerationFailed(f"model {name!r} cannot run this request: {reason}") from None
