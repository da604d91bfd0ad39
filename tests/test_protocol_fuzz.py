"""Every decoder, fed arbitrary bytes and mutations of valid messages,
raises only our own error type and always returns (10,000 inputs each)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from islandrun.protocol import envelope, framing, messages, sealing
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.ids import device_id_from_public_key, public_key_from_device_id
from tests.test_protocol_messages import ALL

pytestmark = pytest.mark.slow

KEY = SigningKey(b"\x07" * 32)
BOB = sealing.Sealer(SigningKey(b"\x08" * 32))
NOW = 1_800_000_000.0
FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _envelope(payload: bytes) -> bytes:
    return envelope.seal_envelope(
        KEY, domain=envelope.DOMAIN_ADVERT, payload_type=envelope.PAYLOAD_ADVERT, payload=payload,
        seq=1, expires=NOW + 60,
    )


def _frames(data: bytes) -> None:
    decoder = framing.FrameDecoder(max_size=1024)
    for i in range(0, len(data), 7):
        decoder.receive_data(data[i : i + 7])
        while decoder.next_frame() is not None:
            pass


DECODERS: dict[str, Callable[[bytes], object]] = {
    "messages": messages.decode,
    "envelope": lambda d: envelope.open_envelope(
        d, domain=envelope.DOMAIN_ADVERT, now=NOW, tracker=envelope.SeqTracker()
    ),
    "sealing": BOB.open,
    "framing": _frames,
    "device_id": lambda d: public_key_from_device_id(d.decode("latin-1")),
}
VALID: dict[str, list[bytes]] = {
    "messages": [messages.encode(x) for x in ALL],
    "envelope": [_envelope(messages.encode(x)) for x in ALL[:3]],
    "sealing": [sealing.Sealer(KEY).seal(BOB.public_key, messages.encode(x)) for x in ALL[:3]],
    "framing": [framing.encode_frame(messages.encode(x)) for x in ALL],
    "device_id": [device_id_from_public_key(bytes(KEY.verify_key)).encode()],
}


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID[name])))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


def _only_our_errors(name: str, data: bytes) -> None:
    with contextlib.suppress(IslandRunError):
        DECODERS[name](data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@FUZZ
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    _only_our_errors(name, data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@FUZZ
@given(data=st.data())
def test_mutations_of_valid_messages(name: str, data: st.DataObject) -> None:
    _only_our_errors(name, data.draw(mutated(name)))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_valid_inputs_decode(name: str) -> None:
    for data in VALID[name]:
        DECODERS[name](data)
