"""Mesh figures on loopback, all from one run. Prints ONE JSON line.

* ``rtt_ratio`` -- p50 of a request through the node's real path (sealed
  request over a libp2p stream, echo executor answering a 1 KB prompt in one
  chunk, sealed response, end) divided by p50 of a bare py-libp2p stream
  echo of 1 KB, interleaved in the same run (target <= 2).
  ``rtt_ratio_words`` is the same with the answer streamed word by word
  (128 chunks, coalesced by the island): what a chatty stream costs.
* ``chunks_per_s`` -- executor chunks (words) relayed to the client on one
  request through the same path (target >= 5,000).
* ``convergence_s`` -- 5 real ``islandnode run`` processes: after four have
  converged, the time from the fifth being up (control API answering) until
  every other node lists it alive (target <= 2).
* ``idle_rss_mb`` / ``idle_cpu_pct`` -- one of those nodes, idle, over 10 s
  (targets <= 150 MB, <= 2% of one core).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import trio
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mesh_transport import BARE_PROTOCOL, bare_echo_handler, bare_round_trip
from islandrun.node.executor import EchoExecutor
from islandrun.node.shipping import serve_request, ship_request
from islandrun.protocol import messages as m
from islandrun.protocol.sealing import Sealer
from islandrun.transports.libp2p import Libp2pTransport, open_libp2p_transport
from tests.mesh_procs import NodeProc, mesh, wait_until

PROMPT = ("islands " * 128)[:1024]
STREAM_WORDS = 20_000


def _request(text: str) -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="bench",
        messages=(m.ChatMessage(role=m.Role.USER, content=text),),
        deadline=time.time() + 300,
    )


async def _mesh_round_trip(a: Libp2pTransport, b: Libp2pTransport, sealer: Sealer) -> float:
    async def sink(_: str) -> None:
        pass

    start = time.perf_counter()
    async with a.open_stream(b.local_id) as stream:
        await ship_request(stream, sealer, _request(PROMPT), sink)
    return time.perf_counter() - start


async def in_process(rounds: int) -> dict[str, float]:
    rng = random.Random(0)
    key_a, key_b = SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32)
    island_sealer, client_sealer = Sealer(key_b), Sealer(key_a)
    echo, words = EchoExecutor(whole=True), EchoExecutor()
    stream_echo = EchoExecutor(repeat=STREAM_WORDS)

    async with (
        open_libp2p_transport(key_a, lambda _: True, rng=rng) as a,
        open_libp2p_transport(key_b, lambda _: True, rng=rng) as b,
    ):
        executor = {"current": echo}

        async def handler(stream):  # type: ignore[no-untyped-def]
            await serve_request(stream, island_sealer, executor["current"],
                                is_allowed=lambda _: True)

        b.serve(handler)
        b._host.set_stream_handler(BARE_PROTOCOL, bare_echo_handler)  # the library baseline
        await a.connect(b.addresses()[0])
        bare: list[float] = []
        ours: dict[str, list[float]] = {"whole": [], "words": []}
        with trio.fail_after(300):
            for i in range(rounds + 20):
                bare_s = await bare_round_trip(a, b)
                for name, ex in (("whole", echo), ("words", words)):
                    executor["current"] = ex
                    ours_s = await _mesh_round_trip(a, b, client_sealer)
                    if i >= 20:
                        ours[name].append(ours_s)
                if i >= 20:
                    bare.append(bare_s)
            executor["current"] = stream_echo

            async def sink(_: str) -> None:
                pass

            start = time.perf_counter()
            async with a.open_stream(b.local_id) as stream:
                end = await ship_request(stream, client_sealer, _request("w"), sink)
            rate = end.completion_tokens / (time.perf_counter() - start)
    p50 = statistics.median(bare)
    return {
        "rtt_ratio": round(statistics.median(ours["whole"]) / p50, 3),
        "rtt_ratio_words": round(statistics.median(ours["words"]) / p50, 3),
        "mesh_rtt_p50_ms": round(statistics.median(ours["whole"]) * 1000, 3),
        "bare_echo_p50_ms": round(statistics.median(bare) * 1000, 3),
        "chunks_per_s": round(rate),
    }


def _sees_alive(observer: NodeProc, device_id: str) -> bool:
    return observer.peers().get(device_id) == "alive"


def processes() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="islandrun-bench-") as tmp:
        root = Path(tmp)
        with mesh(root, ["n1", "n2", "n3", "n4", "n5"], "--defer") as nodes:
            first, last = nodes[:4], nodes[4]
            for node in first:
                node.start(*([] if node is first[0] else ["--bootstrap", first[0].address]))
            for n in first:
                others = [o.device_id for o in first if o is not n]
                wait_until(lambda n=n, others=others: all(_sees_alive(n, o) for o in others),
                           30, "four nodes to converge")
            last.start("--bootstrap", first[0].address)
            up = time.monotonic()
            for n in first:
                wait_until(lambda n=n: _sees_alive(n, last.device_id), 30, "the fifth to appear")
            convergence = time.monotonic() - up
            time.sleep(5)  # let start-up work settle
            assert first[1].proc is not None
            proc = psutil.Process(first[1].proc.pid)
            proc.cpu_percent(None)
            time.sleep(10)
            cpu = proc.cpu_percent(None)
            rss = proc.memory_info().rss / 2**20
    return {"convergence_s": round(convergence, 3), "idle_rss_mb": round(rss, 1),
            "idle_cpu_pct": round(cpu, 2)}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    figures = trio.run(in_process, rounds)
    figures.update(processes())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
