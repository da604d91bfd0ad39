"""Transport overhead on loopback: a bare py-libp2p stream echo against the same
echo through our :class:`~islandrun.transports.base.MessageStream`, plus how
many streamed chunks one request stream relays per second. Prints ONE JSON line.

Figures (two hosts in one process, TCP + Noise + Yamux on 127.0.0.1):
``bare_echo_p50_ms`` -- median of: open a libp2p stream, write 1 KB, read it
back, close (the library only); ``transport_echo_p50_ms`` -- the same request
through ``open_stream`` / ``send`` / ``receive`` (framing, handler task,
graceful close); ``chunks_per_s`` -- 64-byte chunks one handler streams back
on one request. ``bench/mesh.py`` takes its ``rtt_ratio`` baseline from here.
Usage: ``python bench/mesh_transport.py [ROUNDS]``.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import sys
import time

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from nacl.signing import SigningKey

from islandrun.transports.base import MessageStream, StreamClosed
from islandrun.transports.libp2p import Libp2pTransport, open_libp2p_transport

BARE_PROTOCOL = TProtocol("/islandrun-bench/echo/1.0.0")
PAYLOAD = bytes(1024)
CHUNKS = 20_000
CHUNK = bytes(64)


async def bare_echo_handler(stream: INetStream) -> None:
    received = b""
    while len(received) < len(PAYLOAD):
        received += await stream.read(len(PAYLOAD) - len(received))
    await stream.write(received)
    await stream.close()


async def transport_handler(stream: MessageStream) -> None:
    request = await stream.receive()
    if request == b"chunks":
        for _ in range(CHUNKS):
            await stream.send(CHUNK)
    else:
        await stream.send(request)


async def bare_round_trip(a: Libp2pTransport, b: Libp2pTransport) -> float:
    # The bench reaches under the interface on purpose: the baseline is the library itself.
    start = time.perf_counter()
    stream = await a._host.new_stream(b._host.get_id(), [BARE_PROTOCOL])
    await stream.write(PAYLOAD)
    received = b""
    while len(received) < len(PAYLOAD):
        received += await stream.read(len(PAYLOAD) - len(received))
    await stream.close()
    return time.perf_counter() - start


async def transport_round_trip(a: Libp2pTransport, b: Libp2pTransport) -> float:
    start = time.perf_counter()
    async with a.open_stream(b.local_id) as stream:
        await stream.send(PAYLOAD)
        await stream.receive()
        with contextlib.suppress(StreamClosed):  # read the end: graceful close
            await stream.receive()
    return time.perf_counter() - start


async def chunk_rate(a: Libp2pTransport, b: Libp2pTransport) -> float:
    start = time.perf_counter()
    async with a.open_stream(b.local_id) as stream:
        await stream.send(b"chunks")
        for _ in range(CHUNKS):
            await stream.receive()
    return CHUNKS / (time.perf_counter() - start)


async def main(rounds: int) -> dict[str, float]:
    rng = random.Random(0)
    async with (
        open_libp2p_transport(SigningKey(bytes([1]) * 32), lambda _: True, rng=rng) as a,
        open_libp2p_transport(SigningKey(bytes([2]) * 32), lambda _: True, rng=rng) as b,
    ):
        b.serve(transport_handler)
        b._host.set_stream_handler(BARE_PROTOCOL, bare_echo_handler)
        await a.connect(b.addresses()[0])
        bare, ours = [], []
        with trio.fail_after(300):
            for i in range(rounds + 20):  # interleaved, first 20 of each are warm-up
                bare_s = await bare_round_trip(a, b)
                ours_s = await transport_round_trip(a, b)
                if i >= 20:
                    bare.append(bare_s)
                    ours.append(ours_s)
            rate = await chunk_rate(a, b)
    return {
        "bare_echo_p50_ms": round(statistics.median(bare) * 1000, 3),
        "transport_echo_p50_ms": round(statistics.median(ours) * 1000, 3),
        "chunks_per_s": round(rate),
    }


if __name__ == "__main__":
    print(json.dumps(trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
