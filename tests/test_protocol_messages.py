from __future__ import annotations

import math

import msgpack
import pytest

from islandrun.protocol import messages as m
from islandrun.protocol.errors import DecodeError
from islandrun.protocol.schema import InvalidField


def advert(**overrides: object) -> m.Advert:
    fields: dict[str, object] = {
        "device_id": "12D3KooWexample",
        "name": "laptop",
        "models": (m.ModelInfo(name="tiny", context=2048, quantization="f16"),),
        "capacity": 0.75,
        "in_flight": 2,
        "battery_pct": 41.0,
        "charging": False,
        "datasets": (m.DatasetInfo(name="caselaw", documents=12),),
        "cost": m.CostModel(price_in=0.0, price_out=0.0),
        "addresses": ("/ip4/127.0.0.1/tcp/4001",),
        "software_version": "0.1.0",
    }
    fields.update(overrides)
    return m.Advert(**fields)  # type: ignore[arg-type]


def request() -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id="r1",
        conversation_id="c1",
        messages=(
            m.ChatMessage(role=m.Role.SYSTEM, content="be brief"),
            m.ChatMessage(role=m.Role.USER, content="hello ☀"),
        ),
        model_hint="tiny",
        sensitivity=0.4,
        tier=m.Tier.BURSTABLE,
        dataset="caselaw",
        latency_budget_ms=500,
        deadline=1_800_000_000.5,
    )


ALL = [
    advert(),
    request(),
    m.ResponseChunk(request_id="r1", index=3, text="tok"),
    m.ResponseEnd(request_id="r1", prompt_tokens=10, completion_tokens=5),
    m.ErrorMessage(request_id="r1", code="refused", message="no island"),
    m.Cancel(request_id="r1"),
    m.Keepalive(request_id="r1"),
    m.PairJoin(invite_id=b"i" * 16, device_id="d", name="n", public_key=b"k" * 32, proof=b"p"),
    m.PairWelcome(
        device_id="d", name="n", public_key=b"k" * 32, tier=m.TrustTier.FRIEND, proof=b"p"
    ),
    m.PairReject(reason="expired"),
    m.PakeStart(nameplate="abcd", device_id="d", name="n", spake=b"x" * 33),
    m.PakeReply(invite_id=b"i" * 16, spake=b"y" * 33),
    m.Revocation(device_id="d", revoked_at=5.0),
    m.Introduction(device_id="d", name="n", public_key=b"k" * 32, tier=m.TrustTier.PERSONAL),
]


@pytest.mark.parametrize("message", ALL, ids=lambda x: type(x).__name__)
def test_round_trip(message: m.Message) -> None:
    assert m.decode(m.encode(message)) == message


def body(message: m.Message) -> dict:
    return msgpack.unpackb(m.encode(message))


def test_unknown_fields_are_ignored() -> None:
    b = body(advert())
    b["from_the_future"] = [1, 2, 3]
    assert m.decode(msgpack.packb(b)) == advert()


def test_missing_optional_fields_take_defaults() -> None:
    b = body(advert())
    del b["battery_pct"], b["datasets"]
    decoded = m.decode(msgpack.packb(b))
    assert isinstance(decoded, m.Advert)
    assert decoded.battery_pct is None and decoded.datasets == ()


@pytest.mark.parametrize("field", ["device_id", "capacity", "name"])
def test_missing_required_field_is_named(field: str) -> None:
    b = body(advert())
    del b[field]
    with pytest.raises(DecodeError) as info:
        m.decode(msgpack.packb(b))
    assert info.value.field == field


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("capacity",), "full"),
        (("capacity",), True),  # a bool is not a number here
        (("capacity",), 1.5),  # out of range
        (("in_flight",), 1.0),
        (("charging",), 1),
        (("models", 0, "context"), "2k"),
        (("models", 0, "context"), 0),
        (("addresses",), "not-a-list"),
        (("name",), "x" * 200),
    ],
)
def test_ill_typed_field_is_named(path: tuple, value: object) -> None:
    b = body(advert())
    target = b
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(DecodeError) as info:
        m.decode(msgpack.packb(b))
    expected = path[0] if len(path) == 1 else f"{path[0]}[{path[1]}].{path[2]}"
    assert info.value.field == expected


def test_non_finite_numbers_rejected() -> None:
    b = body(request())
    b["sensitivity"] = math.nan
    with pytest.raises(DecodeError, match="sensitivity"):
        m.decode(msgpack.packb(b))


def test_unknown_enum_value_rejected() -> None:
    b = body(request())
    b["tier"] = "platinum"
    with pytest.raises(DecodeError) as info:
        m.decode(msgpack.packb(b))
    assert info.value.field == "tier"


def test_other_protocol_version_rejected_with_advice() -> None:
    b = body(advert())
    b["v"] = 2
    with pytest.raises(DecodeError, match="update the older node") as info:
        m.decode(msgpack.packb(b))
    assert info.value.field == "v"


@pytest.mark.parametrize("tag", [0, 999, "advert", None])
def test_unknown_type_rejected(tag: object) -> None:
    b = body(advert())
    b["t"] = tag
    with pytest.raises(DecodeError) as info:
        m.decode(msgpack.packb(b))
    assert info.value.field == "t"


def test_decode_as_insists_on_type() -> None:
    with pytest.raises(DecodeError, match="expected Advert"):
        m.decode_as(m.encode(request()), m.Advert)
    assert m.decode_as(m.encode(advert()), m.Advert) == advert()


def test_size_limit() -> None:
    data = m.encode(advert())
    with pytest.raises(DecodeError, match="limit"):
        m.decode(data, max_size=len(data) - 1)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x91\x01", msgpack.packb([1, 2]), b"\xdd" * 9])
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        m.decode(data)


def test_construction_validates() -> None:
    with pytest.raises(InvalidField) as info:
        advert(capacity=2.0)
    assert info.value.field == "capacity"
    with pytest.raises(InvalidField):
        m.ChatMessage(role=m.Role.USER, content="x" * (m.MAX_TEXT_LEN + 1))
