"""Placeholders: stable within a conversation, uncorrelated across conversations,
restored in whole and streamed answers, including slightly altered placeholders."""

from __future__ import annotations

import random
import re

import pytest

from islandrun.node import mist
from islandrun.node.mist import EntityType as T

TEXT = "Patient Maria Gonzalez (MRN: 00482913) called from +1 415 555 0132 on March 3, 2021."


def vault(seed: int = 7) -> mist.Vault:
    return mist.Vault(random.Random(seed))


def test_sanitized_text_keeps_structure_and_hides_values() -> None:
    out = mist.sanitize(TEXT, vault()).text
    for value in ("Maria", "Gonzalez", "00482913", "415 555 0132", "March 3, 2021"):
        assert value not in out
    assert out.startswith("Patient [PERSON_")
    assert re.search(r"\(MRN: \[MEDICAL_RECORD_NUMBER_\d+\]\)", out)


def test_same_value_same_placeholder_in_every_turn() -> None:
    v = vault()
    first = mist.sanitize("Maria Gonzalez phoned.", v).text
    later = mist.sanitize("Later, Maria Gonzalez wrote again.", v).text
    tag = re.search(r"\[PERSON_\d+\]", first)
    assert tag and tag.group(0) in later
    other = mist.sanitize("Then John Carter came.", v).text
    assert tag.group(0) not in other


def test_numbering_is_random_per_conversation() -> None:
    tags = {mist.sanitize("Maria Gonzalez phoned.", vault(seed)).text for seed in range(8)}
    assert len(tags) > 1  # same text, different conversations, different placeholders


def test_sanitize_messages_covers_history_without_mutating_it() -> None:
    v = vault()
    history = [
        {"role": "user", "content": "I am Maria Gonzalez, email maria@example.com"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Call 415-555-0132"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
    ]
    out = mist.sanitize_messages(history, v)
    assert history[0]["content"].endswith("maria@example.com")
    assert "maria@example.com" not in out[0]["content"]
    assert out[1] == history[1]
    assert "415-555-0132" not in out[2]["content"][0]["text"]
    assert out[2]["content"][1] == history[2]["content"][1]
    with pytest.raises(mist.MistInputError):
        mist.sanitize_messages([{"role": "user", "content": 42}], v)


def test_restore_round_trip() -> None:
    v = vault()
    assert mist.restore(mist.sanitize(TEXT, v).text, v) == TEXT


def _answer(v: mist.Vault) -> tuple[str, str, str]:
    person = v.placeholder(T.PERSON, "Maria Gonzalez")
    cond = v.placeholder(T.MEDICAL_CONDITION, "type 2 diabetes")
    answer = f"{person} should manage {cond} carefully; {person} may call."
    expected = "Maria Gonzalez should manage type 2 diabetes carefully; Maria Gonzalez may call."
    return answer, expected, person


@pytest.mark.parametrize(
    "alter",
    [str.lower, str.title, lambda p: p.strip("[]"), lambda p: p[1:],
     lambda p: p.replace("_", " "), lambda p: "[ " + p.strip("[]").replace("_", "-") + " ]"],
)
def test_restore_tolerates_altered_placeholders(alter) -> None:  # type: ignore[no-untyped-def]
    v = vault()
    answer, expected, person = _answer(v)
    assert mist.restore(answer.replace(person, alter(person)), v) == expected


def test_unknown_placeholders_and_prose_are_left_alone() -> None:
    v = vault()
    text = "See [PERSON_1] and person 2 and [DATE_99999]."
    assert mist.restore(text, v) == text


def test_stream_restorer_handles_every_split_point() -> None:
    v = vault()
    answer, expected, _ = _answer(v)
    for i in range(len(answer) + 1):
        for j in range(i, len(answer) + 1):
            s = mist.StreamRestorer(v)
            got = s.feed(answer[:i]) + s.feed(answer[i:j]) + s.feed(answer[j:]) + s.close()
            assert got == expected, (i, j)


def test_stream_restorer_char_by_char_with_altered_placeholder() -> None:
    v = vault()
    answer, expected, person = _answer(v)
    answer = answer.replace(person, person.lower().strip("[]"), 1)
    s = mist.StreamRestorer(v)
    assert "".join(s.feed(c) for c in answer) + s.close() == expected


def test_stream_restorer_emits_plain_text_promptly() -> None:
    s = mist.StreamRestorer(vault())
    assert s.feed("Hello there, how are you") == "Hello there, how are you"
