"""MIST on hostile input: obfuscated Unicode still caught, odd input handled, and no
value ever reaches a repr, a reason or an error message."""

from __future__ import annotations

import random

import pytest

from islandrun.node import mist
from islandrun.node.mist import EntityType as T


def kinds(text: str) -> dict[T, list[str]]:
    out: dict[T, list[str]] = {}
    for e in mist.analyze(text).entities:
        out.setdefault(e.type, []).append(text[e.start : e.end])
    return out


def test_zero_width_characters_inside_a_card_number() -> None:
    text = "card 4111\u200b1111\u200c1111\u2060 1111 thanks"
    assert kinds(text)[T.CREDIT_CARD] == ["4111\u200b1111\u200c1111\u2060 1111"]


def test_full_width_digits_inside_a_phone_number() -> None:
    text = "call ＋１ ４１５ ５５５ ０１３２ now"
    assert kinds(text)[T.PHONE] == ["＋１ ４１５ ５５５ ０１３２"]


def test_other_script_digits_in_an_ssn() -> None:
    text = "SSN ٥٣٦-٢٢-١٢٣٤ ok"
    assert kinds(text)[T.SSN] == ["٥٣٦-٢٢-١٢٣٤"]


def test_homoglyphs_in_a_keyword_and_email() -> None:
    text = "раssword: Sw0rdf1sh! and mail аdmin@exаmple.com"  # Cyrillic а and р
    found = kinds(text)
    assert found[T.SECRET] == ["Sw0rdf1sh!"]
    assert found[T.EMAIL] == ["аdmin@exаmple.com"]


def test_sanitized_obfuscated_text_has_no_digits_left() -> None:
    v = mist.Vault(random.Random(1))
    out = mist.sanitize("call ５５５\u200b-０１３２ or 4111 1111 1111 1111", v).text
    assert not any(c.isdigit() for c in out.split("]")[-1])
    assert mist.restore(out, v) == "call ５５５\u200b-０１３２ or 4111 1111 1111 1111"


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01\x02", "\ud800 lone surrogate", "\ufffd" * 50,
     bytes(range(256)).decode("latin-1"), "e\u0301\u0301\u0301 combining", "🙂" * 100],
)
def test_odd_input_is_handled(text: str) -> None:
    v = mist.Vault(random.Random(1))
    result = mist.sanitize(text, v)
    assert mist.restore(result.text, v) == text
    for e in result.analysis.entities:
        assert 0 <= e.start < e.end <= len(text)


def test_bytes_are_refused_with_our_error() -> None:
    with pytest.raises(mist.MistInputError, match="decode bytes first"):
        mist.analyze(b"\xff\xfe")  # type: ignore[arg-type]


def test_ten_megabytes_is_refused_clearly() -> None:
    with pytest.raises(mist.MistInputError, match="exceeds the limit"):
        mist.analyze("a" * 10_000_000)


def test_large_input_within_limit_is_scanned() -> None:
    text = ("lorem ipsum dolor sit amet " * 4000) + "bob@example.com"
    assert kinds(text)[T.EMAIL] == ["bob@example.com"]


SECRET_TEXT = "Maria Gonzalez, SSN 536-22-1234, password: hunter2x, bob@example.com"
VALUES = ("Maria", "Gonzalez", "536-22-1234", "hunter2x", "bob@example.com")


def test_reasons_reprs_and_errors_carry_no_values() -> None:
    v = mist.Vault(random.Random(3))
    result = mist.sanitize(SECRET_TEXT, v)
    restorer = mist.StreamRestorer(v)
    restorer.feed("[PERSON")
    shown = " ".join(
        [repr(result), repr(result.analysis), repr(v), str(result.analysis.reasons),
         repr(restorer), *(repr(e) for e in result.analysis.entities)]
    )
    try:
        mist.analyze(SECRET_TEXT * 200_000)
    except mist.MistInputError as exc:
        shown += str(exc)
    for value in VALUES:
        assert value not in shown
    with pytest.raises(TypeError):
        __import__("pickle").dumps(v)
