"""Real inference through the mesh vs direct llama-cpp-python. Prints ONE JSON line.

Both sides run the tiny random-weight llama (``node/tinymodel.py``, built
here from seed 0) from the same file with the same settings (``THREADS``
threads, greedy sampling, ``MAX_TOKENS`` per answer), interleaved in one run
(who goes first alternates):

* **direct** -- in this process, ``llama_cpp.Llama.create_chat_completion(
  stream=True)`` iterated in one thread, as an application using
  llama-cpp-python would (a worker thread, so this process's idle event loop
  still answers the island's health pings) (a one-line counting logits processor, the same one
  SHORE uses, so both sides count sampled tokens the same way);
* **mesh** -- the node's path between two processes: an **island process**
  (this script run with ``--island MODEL``: a libp2p transport, and
  ``serve_request`` with SHORE as its executor, exactly as a node serves a
  request) and this process as the **client** (its own libp2p transport,
  ``ship_request``), on loopback: the sealed request over a real libp2p
  stream, the answer streamed back sealed, arrival times taken here.

Why two processes: the client is another device in real use. In one process
the client's receive work (Yamux, Noise, unsealing, decoding) would compete
with generation for the GIL and charge the island for work it never does;
in two, the island pays only its own costs (its event loop's share of the
GIL next to the llama.cpp worker thread), as a node does. The island starts
once per model, before the rounds, and stops when this process closes its
stdin (killed after 10 s if it has not).

Figures (medians over ``rounds``, after 3 warm-up rounds that include the
island's model load):

* ``tokens_per_s_ratio`` -- mesh tokens/s over direct tokens/s (target >= 0.95).
  Tokens/s is the streaming rate once the answer has started: the tokens
  after the first over the time from the first token's arrival to the whole
  answer's (the mesh: ``ResponseEnd`` at the client), so the fixed start-up
  cost is counted once, in the next figure, and not again here;
* ``ttft_overhead_ms`` -- mesh time to first token minus direct (target <= 5):
  the request's trip to the island (a spare stream, sealing) and the first
  token's trip back;
* ``direct_tokens_per_s``, ``mesh_tokens_per_s``, ``direct_ttft_ms``,
  ``mesh_ttft_ms``, ``load_s`` (llama.cpp load of the ~17 MB model),
  ``tokens`` (per answer), ``rounds``.
* ``wider_*`` -- the first four figures again on a wider random model that
  runs ~10x slower, like a real small model on a CPU (a third of the rounds).

Why the two models differ: the island's event loop spends ~1 ms of CPU per
streamed message (py-libp2p's Yamux and Noise, our sealing), taken from
generation through the GIL. The tiny model makes a token every ~0.8 ms,
mostly in llama-cpp-python's Python code, so that cost shows (SHORE joins
tokens into pieces 25 ms apart, the gap growing to 50 ms, to bound it); a
model whose tokens take tens of milliseconds in llama.cpp's C code, with the
GIL released, hardly notices it. Both sides use one core each while the
mesh answers (island and client), the direct side one: on a machine busy
with other work the mesh side loses more, so measure on a quiet one.
Time to first token adds the request's trip: the sealed request on a libp2p
stream opened after the previous answer (a spare, see
``transports/spares.py``; opening one costs ~4 ms), and the first token's
way back. ``PAUSE_S`` before each answer, either side, leaves the spare
time to open, as a user's next request would.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import PIPE
from typing import Any

import numpy as np
import trio
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from islandrun.node.config import ModelSection
from islandrun.node.shipping import serve_request, ship_request
from islandrun.node.shore import Shore, load_llama
from islandrun.node.tinymodel import TinyShape, build_tiny_model, ensure_vocab
from islandrun.protocol import messages as m
from islandrun.protocol.sealing import Sealer
from islandrun.transports.libp2p import open_libp2p_transport

THREADS = 1
MAX_TOKENS = 200
CONTEXT = 1024
PROMPT = "Tell me a long story about islands in the sea."
#: A wider random model (~180 MB) that generates at the speed of a real
#: small model on a laptop CPU (~100 tokens/s here), for the ``wider_`` figures.
WIDER = TinyShape(embedding=768, blocks=6, heads=12, feed_forward=2048)
#: Pause before each answer, either side: a user's next request does not
#: come within a millisecond of the last answer, and the mesh opens its next
#: request stream in the background after an answer (``transports.spares``).
PAUSE_S = 0.05
WIDER_KEYS = ("tokens_per_s_ratio", "ttft_overhead_ms", "direct_tokens_per_s", "direct_ttft_ms")


class Run:
    """Times one answer from its creation: first token, then the end."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first = 0.0

    def token(self) -> None:
        if not self.first:
            self.first = time.perf_counter() - self.start

    def done(self, tokens: int) -> tuple[float, float]:
        """(tokens per second after the first, time to first token in seconds)."""
        elapsed = time.perf_counter() - self.start
        return (tokens - 1) / (elapsed - self.first), self.first


def direct(llm: Any) -> tuple[float, float]:
    count = [0]

    def counter(_: np.ndarray, scores: np.ndarray) -> np.ndarray:
        count[0] += 1
        return scores

    run = Run()
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS,
        temperature=0.0, stream=True, logits_processor=[counter],
    ):
        if chunk["choices"][0]["delta"].get("content"):
            run.token()
    return run.done(count[0])


def request() -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="bench", messages=(m.ChatMessage(role=m.Role.USER, content=PROMPT),),
        deadline=time.time() + 300, max_tokens=MAX_TOKENS, temperature=0.0,
    )


ISLAND_KEY = SigningKey(bytes([2]) * 32)
CLIENT_KEY = SigningKey(bytes([1]) * 32)
#: Longest wait for the island process to start and print its address.
ISLAND_START_S = 60.0


def model_spec(model: Path) -> ModelSection:
    return ModelSection(name="tiny", path=str(model), context=CONTEXT, threads=THREADS)


async def island(model: Path) -> None:
    """The island process: serve requests on ``model`` until stdin closes."""
    shore, sealer = Shore([model_spec(model)]), Sealer(ISLAND_KEY)
    async with open_libp2p_transport(ISLAND_KEY, lambda _: True, rng=random.Random(0)) as t:
        async def handler(stream):  # type: ignore[no-untyped-def]
            await serve_request(stream, sealer, shore, is_allowed=lambda _: True)

        t.serve(handler)
        print(t.addresses()[0], flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        while await stdin.receive_some():  # bounded: ends when the bench closes stdin
            pass


@asynccontextmanager
async def island_process(model: Path) -> AsyncIterator[str]:
    """Run :func:`island` in a child process; yields its libp2p address."""
    command = [sys.executable, __file__, "--island", str(model)]
    proc = await trio.lowlevel.open_process(command, stdin=PIPE, stdout=PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        with trio.fail_after(ISLAND_START_S):
            line = b""
            while not line.endswith(b"\n"):
                if not (data := await proc.stdout.receive_some()):
                    raise RuntimeError("the island process ended before it was ready")
                line += data
        yield line.decode().strip()
        await proc.stdin.aclose()  # the island's signal to stop
        with trio.move_on_after(10):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def measure(model: Path, rounds: int) -> dict[str, float]:
    start = time.perf_counter()
    llm = load_llama(model_spec(model))
    load_s = time.perf_counter() - start
    client_sealer = Sealer(CLIENT_KEY)
    async with (
        island_process(model) as address,
        open_libp2p_transport(CLIENT_KEY, lambda _: True, rng=random.Random(0)) as a,
    ):
        island_id = await a.connect(address)

        async def mesh() -> tuple[float, float, int]:
            run = Run()

            async def on_chunk(_: str) -> None:
                run.token()

            async with a.open_stream(island_id) as stream:
                end = await ship_request(stream, client_sealer, request(), on_chunk)
            return (*run.done(end.completion_tokens), end.completion_tokens)

        async def direct_side() -> tuple[float, float, int]:
            # In a thread: this process's event loop must keep answering the
            # island's 1 s health pings while a wider answer takes seconds.
            return (*await trio.to_thread.run_sync(direct, llm), 0)

        results: dict[str, list[float]] = {k: [] for k in ("d_tps", "d_ttft", "m_tps", "m_ttft")}
        tokens: list[int] = []
        warmup = 3
        with trio.fail_after(600):
            for i in range(rounds + warmup):
                sides = [("d", direct_side), ("m", mesh)]
                for name, side in sides[::-1] if i % 2 else sides:  # alternate who goes first
                    await trio.sleep(PAUSE_S)
                    tps, ttft, n = await side()
                    if i >= warmup:
                        results[f"{name}_tps"].append(tps)
                        results[f"{name}_ttft"].append(ttft)
                        tokens += [n] if name == "m" else []
    med = {k: statistics.median(v) for k, v in results.items()}
    return {
        "tokens_per_s_ratio": round(med["m_tps"] / med["d_tps"], 3),
        "ttft_overhead_ms": round((med["m_ttft"] - med["d_ttft"]) * 1000, 2),
        "direct_tokens_per_s": round(med["d_tps"]),
        "mesh_tokens_per_s": round(med["m_tps"]),
        "direct_ttft_ms": round(med["d_ttft"] * 1000, 2),
        "mesh_ttft_ms": round(med["m_ttft"] * 1000, 2),
        "load_s": round(load_s, 3),
        "tokens": statistics.median(tokens),
        "rounds": rounds,
    }


def main() -> None:
    if sys.argv[1:2] == ["--island"]:
        trio.run(island, Path(sys.argv[2]))
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory(prefix="islandrun-bench-") as tmp:
        vocab = ensure_vocab()
        tiny = build_tiny_model(vocab, Path(tmp) / "tiny.gguf", seed=0)
        figures = trio.run(measure, tiny, rounds)
        wider = build_tiny_model(vocab, Path(tmp) / "wider.gguf", seed=0, shape=WIDER)
        for key, value in trio.run(measure, wider, max(3, rounds // 3)).items():
            if key in WIDER_KEYS:
                figures[f"wider_{key}"] = value
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
