"""The executor interface: what runs a request once it reaches its island.

SHORE (llama.cpp on this device) and HORIZON (a cloud API) are executors;
so is :class:`EchoExecutor`, which answers by echoing the prompt and exists
for tests, benchmarks and the simulator, where what matters is the path a
request takes, not what a model says.

An executor streams text through ``emit`` and returns token usage. It must
be cancellable: when the client goes away or the deadline passes, the
caller cancels it, and it stops generating.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from islandrun.protocol.messages import InferenceRequest, ModelInfo, Role

Emit = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


class Executor(Protocol):
    def models(self) -> tuple[ModelInfo, ...]:
        """The models this executor can run, for the advert."""
        ...

    async def run(self, request: InferenceRequest, emit: Emit) -> Usage:
        """Generate the answer, streaming it through ``emit``."""
        ...


class EchoExecutor:
    """Echoes the last user message back, one word per chunk.

    ``repeat`` multiplies the answer (for streaming benchmarks), ``delay``
    pauses between chunks (to model a slow device, or to be killed mid-way),
    and ``whole=True`` answers in one chunk, like a plain echo server.
    """

    def __init__(
        self, *, model: str = "echo", repeat: int = 1, delay: float = 0.0, whole: bool = False
    ) -> None:
        self._model = ModelInfo(name=model, context=1_000_000)
        self._repeat = repeat
        self._delay = delay
        self._whole = whole

    def models(self) -> tuple[ModelInfo, ...]:
        return (self._model,)

    async def run(self, request: InferenceRequest, emit: Emit) -> Usage:
        last = next((m.content for m in reversed(request.messages) if m.role is Role.USER), "")
        words = last.split(" ") * self._repeat
        if self._whole:
            await emit(" ".join(words))
        for i, word in enumerate(() if self._whole else words):
            if self._delay:
                await trio.sleep(self._delay)
            await emit(word if i == 0 else " " + word)
        prompt = sum(len(m.content.split()) for m in request.messages)
        return Usage(prompt_tokens=prompt, completion_tokens=len(words))
