"""``islandnode demo``: a local walk through what the node can do so far.

The README's first command ends here. It grows with each capability until
it is the full local demo mesh (real processes, pairing, a mixed workload);
today it runs, in one process and in a throwaway home, the foundation every
later step stands on: two devices with their own keys, a signed capability
advert verified (and a replay of it refused), and a request sealed end to
end so a relay can neither read nor alter it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from islandrun.protocol import envelope, messages
from islandrun.protocol.errors import EnvelopeRejected
from islandrun.protocol.ids import short_id

from . import config, identity
from .home import PersistentSequence


def _device(root: Path, name: str) -> tuple[identity.Identity, Path]:
    home = root / name
    key = identity.create_key(home)
    config.write_initial_config(home, name)
    return identity.Identity(key=key, name=name), home


def _signed_advert(ident: identity.Identity, home: Path, now: float) -> bytes:
    advert = messages.Advert(
        device_id=ident.device_id,
        name=ident.name,
        models=(messages.ModelInfo(name="tiny-demo", context=2048, quantization="f32"),),
        capacity=0.8,
        battery_pct=92.0,
        charging=False,
    )
    return envelope.seal_envelope(
        ident.key,
        domain=envelope.DOMAIN_ADVERT,
        payload_type=envelope.PAYLOAD_ADVERT,
        payload=messages.encode(advert),
        seq=PersistentSequence(home).next(now),
        expires=now + 30,
    )


def run(args: argparse.Namespace) -> int:
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="islandrun-demo-") as tmp:
        laptop, _ = _device(Path(tmp), "laptop")
        phone, phone_home = _device(Path(tmp), "phone")
        print(f"laptop  {laptop.device_id}")
        print(f"phone   {phone.device_id}")

        signed = _signed_advert(phone, phone_home, now)
        tracker = envelope.SeqTracker()
        env = envelope.open_envelope(
            signed, domain=envelope.DOMAIN_ADVERT, now=now, tracker=tracker
        )
        advert = messages.decode_as(env.payload, messages.Advert)
        print(
            f"laptop verified phone's advert: seq {env.seq}, battery {advert.battery_pct:.0f}%, "
            f"models {[m.name for m in advert.models]}"
        )
        try:
            envelope.open_envelope(signed, domain=envelope.DOMAIN_ADVERT, now=now, tracker=tracker)
        except EnvelopeRejected as exc:
            print(f"laptop refused a replay of it: {exc.reason.value}")

        request = messages.InferenceRequest(
            request_id="demo-1",
            messages=(messages.ChatMessage(role=messages.Role.USER, content="Hello, phone!"),),
            deadline=now + 30,
        )
        sealed = laptop.sealer().seal(phone.public_key, messages.encode(request))
        _, payload = phone.sealer().open(sealed, expected_sender=laptop.public_key)
        opened = messages.decode_as(payload, messages.InferenceRequest)
        print(f"phone opened request {opened.request_id!r} from {short_id(laptop.device_id)}")
        print(
            f"laptop sealed a request to phone ({len(sealed)} bytes, plaintext not visible to "
            f"relays); phone opened it and authenticated the laptop"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run the local demo of what the node can do")
    p.set_defaults(func=run)
