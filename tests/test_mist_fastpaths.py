"""MIST's speed-ups change no result: a finder's gate only skips work that would find
nothing, and each regex rewritten for the engine's prefix scan matches exactly what its
plain form (kept here as the specification) matches; so does the search for repeated
values in ``mist_score`` that replaced a regex compiled per text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from islandrun.node import mist_detectors as d
from islandrun.node import mist_score
from islandrun.node.mist_entities import EntityType
from islandrun.node.mist_lexicon import STREET_BEFORE, STREET_ENDINGS, UNIT_WORDS

FRAGMENTS = st.sampled_from(
    ["AKIA", "ASIAABCDEFGHIJKLMNOP", "ghp_", "gh", "github_pat_", "glpat-", "xoxb-", "sk-",
     "sk-proj-", "rk_live_", "k_test_", "AIza", "hf_", "npm_", "eyJ", "eyJabcdefghij.",
     "-----BEGIN RSA PRIVATE KEY-----", "password: hunter22", "pin", "@", "://", "www.",
     " dot ", "°", "icd", "dx", "code", "matter", "case", "MRN", "a/c", "st.", "no.",
     "1990s", "'90s", "80's", "12:30", "23:59:01 pm", "9:5", "10:55 am", "3rd", "31st", "09", "of",
     "March", "Sept.", "Tuesday", "2024", "Hauptstr.", "Hammarvägen", "Strasse", "STRASSE",
     "Weg", "Ring", "ring", "x-", "-", "Út", "tér", "ſ", "K", "İ", "ı", "ß", "ẞ", "Ä",
     "1234", "12345678", "4111 1111 1111 1111", "12.3456, -45.6789", "12 Baker Street",
     "Rue de Rivoli", "apt 4B", "Apt.", "APT", "Via", "viale", "VIALE", "rue", "Suite",
     "Room 12", "ul.", "al.", "Al.", "DE89 3704 0044 0532 0130 00", "10.0.0.1", "::1", "_"]
)
SEPARATORS = st.sampled_from(["", " ", ", ", ". ", "\n", "-", "/", ":"])
TEXTS = st.lists(
    st.tuples(st.one_of(FRAGMENTS, st.text(max_size=6)), SEPARATORS), max_size=16
).map(lambda parts: "".join(f"{a}{b}" for a, b in parts))

PLAIN_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"


def _plain_cased(rule: int, words: frozenset[str]) -> tuple[str, re.Pattern[str]]:
    """An address rule with its prefix tree of cased words spelled as a flat list."""
    forms = {f for w in words for f in (w, w.capitalize(), w.upper())}
    flat = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    fast = d._ADDRESS_RULES[rule][0]
    plain = fast.pattern.replace(d._cased_alt(words), f"(?:{flat})", 1)
    assert plain != fast.pattern
    return plain, fast


PLAIN = {
    "street word": (
        rf"(?=[{d.UPPER}][\w\-]{{2}})[\w\-]*(?i:{'|'.join(map(re.escape, STREET_ENDINGS))})"
        r"(?![\w\-])",
        d._STREET_WORD,
    ),
    "decade": (r"(?:19)?[2-9]0'?s\b", d._DECADE),
    "time": (r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\s?(?i:[ap]\.?m\.?)?(?!\w)", d._TIME),
    "month then day": (rf"{d._MONTH}\s+{PLAIN_DAY}(?:,?\s+{d._YEAR})?\b", d._DATES[0][0]),
    "day then month": (
        rf"{PLAIN_DAY}\s+(?:of\s+)?{d._MONTH}(?:,?\s+{d._YEAR})?\b", d._DATES[1][0]
    ),
    "street type first": _plain_cased(1, STREET_BEFORE),
    "unit": _plain_cased(2, UNIT_WORDS),
}


def _ungated(view: str) -> list[d.Candidate]:
    low = view.lower()
    return [c for _, finder in d._FINDERS for c in finder(view, low)]


def _every_date(view: str) -> list[d.Candidate]:
    patterns = [*d._DATES, (d._DECADE, 0.4), (d._TIME, 0.45)]
    return [
        d.Candidate(EntityType.DATE, m.start(), m.end(), score)
        for pattern, score in patterns
        for m in pattern.finditer(view)
        if d._word_start(view, m.start())
    ]


def _word_start_spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text) if d._word_start(text, m.start())]


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_gates_skip_only_finders_that_would_find_nothing(text: str) -> None:
    assert list(d.find_patterns(text)) == _ungated(text)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_date_gates_skip_only_patterns_that_would_find_nothing(text: str) -> None:
    assert list(d._dates(text, text.lower())) == _every_date(text)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_fast_regexes_match_what_their_plain_forms_match(text: str) -> None:
    for name, (plain, fast) in PLAIN.items():
        expected = _word_start_spans(re.compile(plain), text)
        assert _word_start_spans(fast, text) == expected, name


def test_the_texts_reach_every_rewritten_regex() -> None:
    # Guards the two tests above against a strategy that never exercises a pattern.
    samples = ["Hammarvägen 15", "the 1990s", "at 12:30 pm", "March 3rd, 2021",
               "3rd of March", "Viale Europa 12", "Apt. 4B"]
    for (name, (plain, fast)), sample in zip(PLAIN.items(), samples, strict=True):
        assert _word_start_spans(fast, sample) == _word_start_spans(re.compile(plain), sample)
        assert _word_start_spans(fast, sample), name


VALUES = st.lists(
    st.one_of(st.sampled_from(["Ann", "Anna", "Anna Lee", "Lee", "nna", "ee A", "Lee Ann"]),
              st.text(alphabet="An e-L", min_size=1, max_size=5)),
    min_size=1, max_size=8, unique=True,
)
NAMES_TEXT = st.lists(st.sampled_from(["Ann", "Anna", "Lee", " ", "a", "-", "e", "Lee Ann"]),
                      max_size=20).map("".join)


@settings(max_examples=400, deadline=None)
@given(values=VALUES, text=NAMES_TEXT)
def test_leftmost_finder_finds_what_one_regex_pass_finds(values: list[str], text: str) -> None:
    alternation = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    expected = [
        (m.group(0), m.start())
        for m in re.finditer(alternation, text)
        if mist_score._bounded(text, m.start(), m.end())
    ]
    assert mist_score._find_leftmost(values, text) == expected
