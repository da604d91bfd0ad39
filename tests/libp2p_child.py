"""A libp2p node in a child process, for tests that kill or freeze a real peer.

Run as ``python -m tests.libp2p_child SEED_BYTE``: it listens on loopback,
serves requests by streaming numbered chunks every 5 ms, prints its address
on one line, and runs until killed.
"""

from __future__ import annotations

import random
import sys

import trio
from nacl.signing import SigningKey

from islandrun.transports.base import MessageStream
from islandrun.transports.libp2p import open_libp2p_transport


async def stream_chunks(stream: MessageStream) -> None:
    await stream.receive()
    for i in range(1_000_000):
        await stream.send(b"chunk %d" % i)
        await trio.sleep(0.005)


async def main(seed: int) -> None:
    key = SigningKey(bytes([seed]) * 32)
    async with open_libp2p_transport(key, lambda _: True, rng=random.Random(seed)) as transport:
        transport.serve(stream_chunks)
        print(transport.addresses()[0], flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
