"""Property tests: sanitize -> restore is the identity, and no detected value survives
anywhere in the sanitized text (another, undetected copy of it would be a leak)."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from islandrun.node import mist

PIECES = st.sampled_from(
    ["Maria Gonzalez", "bob@example.com", "+1 415 555 0132", "536-22-1234", "4111 1111 1111 1111",
     "March 3, 2021", "Dr. Okonkwo", "Lisbon", "MRN: 00482913", "metformin", "the", "and",
     "patient", "called", ", ", ". ", "\n", "[PERSON_1]", "person", "５５５", "\u200b", "é"]
)
PLACEHOLDER = re.compile(r"\[[A-Z0-9_]+_\d+\]")
TEXTS = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=14).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, seed=st.integers(0, 2**32))
def test_sanitize_then_restore_round_trips(text: str, seed: int) -> None:
    vault = mist.Vault(random.Random(seed))
    result = mist.sanitize(text, vault)
    assert mist.restore(result.text, vault) == text
    outside_placeholders = PLACEHOLDER.sub("\x00", result.text)
    for e in result.analysis.entities:
        value = text[e.start : e.end]
        if len(value.strip()) >= 4:  # as a standalone occurrence, not inside a word
            assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", outside_placeholders)
