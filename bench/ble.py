"""BLE mesh cost in the radio model: one request and its answer over 3 hops. Prints ONE JSON line.

Four phones in a line (A - R1 - R2 - B, 3 hops); A opens a request stream to
B, sends one sealed request (~600 bytes, the size of a short sealed
InferenceRequest) and B streams back 20 sealed chunks (~200 bytes each)
then ends the stream. Everything runs in virtual time (``MockClock``) over
``transports.ble_radio_memory`` -- these machines have no radio -- at a
stated link rate per case:

* MTU 20 (ATT_MTU 23, no Data Length Extension): 100 kbit/s of application
  throughput per link, 3.75 ms one-way latency per fragment (half a 7.5 ms
  connection interval);
* MTU 244 (with DLE): 700 kbit/s, same latency.

Per case: ``hops``, ``mtu``, ``link_rate_bps``, ``bytes_on_air`` (every
write of every device, with per-write link-layer overhead, including ACKs,
HELLOs and retransmissions), ``app_bytes`` (sealed request + answer
payloads), ``relay_overhead`` (``bytes_on_air / (app_bytes * hops) - 1``:
headers, signatures, stream ACKs, fragment headers), ``latency_ms`` (open
to end of stream, virtual). Usage: ``python bench/ble.py``.
"""

from __future__ import annotations

import contextlib
import json
import random

import trio
import trio.testing
from nacl.signing import SigningKey

from islandrun.protocol.sealing import Sealer
from islandrun.transports.base import MessageStream, StreamClosed
from islandrun.transports.ble import BleConfig, BleTransport, open_ble_transport
from islandrun.transports.ble_radio_memory import Air, RadioSpace

HOPS = 3
CHUNKS = 20
CASES = [(20, 100_000.0), (244, 700_000.0)]
LATENCY = 0.00375


async def run_case(mtu: int, rate: float) -> dict[str, object]:
    space = RadioSpace(rng=random.Random(1), air=Air(mtu=mtu, rate_bps=rate, latency=LATENCY))
    keys = [SigningKey(bytes([i + 1]) * 32) for i in range(HOPS + 1)]
    addresses = [f"radio-{i}" for i in range(HOPS + 1)]
    space.chain(addresses)
    sealers = [Sealer(k) for k in keys]
    request = sealers[0].seal(sealers[-1].public_key, bytes(500))
    chunk = sealers[-1].seal(sealers[0].public_key, bytes(100))

    async def answer(stream: MessageStream) -> None:
        await stream.receive()
        for _ in range(CHUNKS):
            await stream.send(chunk)

    async with trio.open_nursery() as nursery:
        nodes: list[BleTransport] = []
        for i, key in enumerate(keys):
            nodes.append(await nursery.start(_hold, key, space, addresses[i], random.Random(i)))
        while [n.statistics().neighbours for n in nodes] != [1] + [2] * (HOPS - 1) + [1]:
            await trio.sleep(0.1)
        nodes[-1].serve(answer)
        await trio.sleep(1.0)  # let the link set-up traffic pass
        before, start = space.bytes_on_air, trio.current_time()
        async with nodes[0].open_stream(nodes[-1].local_id) as stream:
            await stream.send(request)
            for _ in range(CHUNKS):
                await stream.receive()
            with contextlib.suppress(StreamClosed):
                await stream.receive()
        latency = trio.current_time() - start
        await trio.sleep(5.0)  # the last ACKs and FINs settle
        on_air = space.bytes_on_air - before
        nursery.cancel_scope.cancel()
    app = len(request) + CHUNKS * len(chunk)
    return {
        "hops": HOPS,
        "mtu": mtu,
        "link_rate_bps": int(rate),
        "bytes_on_air": on_air,
        "app_bytes": app,
        "relay_overhead": round(on_air / (app * HOPS) - 1, 3),
        "latency_ms": round(latency * 1000, 1),
    }


async def _hold(
    key: SigningKey,
    space: RadioSpace,
    address: str,
    rng: random.Random,
    task_status: trio.TaskStatus[BleTransport],
) -> None:
    config = BleConfig(rto=2.0)
    async with open_ble_transport(
        key, space.radio(address), lambda _: True, config, rng=rng, wall_clock=trio.current_time
    ) as transport:
        task_status.started(transport)
        await trio.sleep_forever()


async def main() -> dict[str, object]:
    return {"cases": [await run_case(mtu, rate) for mtu, rate in CASES]}


if __name__ == "__main__":
    print(json.dumps(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))))
