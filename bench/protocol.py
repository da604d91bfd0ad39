"""Protocol throughput: advert sign+encode and verify+decode per second, and
4 KB request seal+open in MB/s, on one core. Prints one JSON line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from nacl.signing import SigningKey

from islandrun.protocol import envelope, messages
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.protocol.sealing import Sealer

NOW = 1_800_000_000.0


def rate(fn: Callable[[int], object], seconds: float = 1.0) -> float:
    """Calls per second of ``fn(i)``, over about ``seconds`` (after warm-up)."""
    for i in range(50):
        fn(i)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn(count)
            count += 1
    return count / elapsed


def main() -> None:
    key = SigningKey.generate()
    device_id = device_id_from_public_key(bytes(key.verify_key))
    advert = messages.Advert(
        device_id=device_id,
        name="laptop",
        models=(messages.ModelInfo(name="llama-3-8b-q4", context=8192, quantization="q4_k_m"),),
        capacity=0.7,
        in_flight=1,
        battery_pct=80.0,
        charging=True,
        datasets=(messages.DatasetInfo(name="notes", documents=1200),),
        addresses=("/ip4/192.0.2.1/tcp/4001",),
        software_version="0.1.0",
    )

    def sign_encode(i: int) -> bytes:
        return envelope.seal_envelope(
            key, domain=envelope.DOMAIN_ADVERT, payload_type=envelope.PAYLOAD_ADVERT,
            payload=messages.encode(advert), seq=i + 1, expires=NOW + 60,
        )

    signed = sign_encode(0)

    def verify_decode(_: int) -> messages.Advert:
        env = envelope.open_envelope(signed, domain=envelope.DOMAIN_ADVERT, now=NOW)
        return messages.decode_as(env.payload, messages.Advert)

    alice, bob = Sealer(SigningKey.generate()), Sealer(SigningKey.generate())
    request = messages.encode(
        messages.InferenceRequest(
            request_id="r",
            messages=(messages.ChatMessage(role=messages.Role.USER, content="x" * 4000),),
            deadline=NOW,
        )
    )[:4096]

    def seal_open(_: int) -> None:
        bob.open(alice.seal(bob.public_key, request))

    seal_rate = rate(seal_open)
    print(
        json.dumps(
            {
                "advert_sign_encode_per_s": round(rate(sign_encode)),
                "advert_verify_decode_per_s": round(rate(verify_decode)),
                "seal_open_4kb_mb_per_s": round(seal_rate * len(request) / 1e6, 1),
                "request_bytes": len(request),
            }
        )
    )


if __name__ == "__main__":
    main()
