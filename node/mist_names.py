"""MIST stage 1, words: names, places, organisations and health / finance vocabulary.

What it is: :func:`find_words` tokenizes the normalized view once and finds

* vocabulary phrases by dictionary lookup on lower-cased token n-grams (diagnoses,
  medicines, financial terms; countries, regions and cities when capitalised;
  nationalities and religions as DEMOGRAPHIC);
* runs of capitalised tokens ("Anna S.", "Mr. James T.", "Methodist Hospital",
  "Henderson, Hicks") and types them from evidence: an honorific or a known given
  name or surname means PERSON, an organisation word (Inc, Bank, Hospital) means
  ORGANIZATION, a place preposition (in, at, from) means LOCATION, a medical head noun
  after the name ("Babinski sign", "Crohn's disease") means an eponym, not a person.
  A run with no evidence still counts as a weak PERSON when one of its words is not an
  ordinary English word: an unknown capitalised word in running text is usually a name,
  whatever its language.

Every decision is a set lookup on one token, so the cost is linear in the text.

What it is not: pattern matching of structured identifiers (``mist_detectors``) or
overlap resolution (``mist_score``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from islandrun.node import mist_lexicon as lex
from islandrun.node.mist_detectors import Candidate
from islandrun.node.mist_entities import EntityType as T


def _split(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A word: a letter, then word characters, apostrophes and hyphens, not ending in either.
_TOKEN = re.compile(r"[^\W\d_](?:[\w'’\-]*\w)?")
_POSSESSIVE = frozenset(("'s", "’s"))
_CONNECTORS = _split(
    """
    de da di del della dos das van von der den du le la bin ibn al y and & of
    """
)
_PLACE_CUES = _split(
    """
    in at from near to visited via toward towards around outside inside into across
    """
)
_PERSON_CUES = _split(
    """
    named called dear hi hello hey thanks by cc patient patients client customer mother father
    son daughter wife husband brother sister friend colleague dr doctor nurse
    """
)
_SENTENCE_END = frozenset(".!?:;\n\"“”>|*•")
_LOWER_NAME_CUE = re.compile(
    r"\b(?:my name is|name's|i am|i'm|call me|this is)\s+([a-z][a-z'\-]+)(?:\s+([a-z][a-z'\-]+))?"
)


class _Tok(NamedTuple):
    start: int
    end: int
    word: str
    lower: str  # lower case, possessive "'s" removed


def _phrase_table() -> dict[str, tuple[T, float, bool]]:
    """Lower-case token phrase -> (type, score, needs a capital letter)."""
    table: dict[str, tuple[T, float, bool]] = {}
    groups = (
        (lex.FINANCIAL_TERMS, T.FINANCIAL_TERM, 0.6, False),
        (lex.MEDICATIONS, T.MEDICATION, 0.7, False),
        (lex.MEDICAL_CONDITIONS, T.MEDICAL_CONDITION, 0.7, False),
        (lex.DEMOGRAPHICS | {f"{d}s" for d in lex.DEMOGRAPHICS}, T.DEMOGRAPHIC, 0.7, None),
        (lex.CITIES | lex.REGIONS | lex.COUNTRIES, T.LOCATION, 0.8, True),
    )
    for phrases, kind, score, needs_cap in groups:
        for phrase in phrases:
            key = " ".join(_TOKEN.findall(phrase))
            # None: a capital is needed only where the phrase is also an ordinary word
            # ("black", "english"), not for "hispanic" or "saudis".
            cap = lex.is_common_word(key) if needs_cap is None else needs_cap
            table[key] = (kind, score, cap)
    return table


_PHRASES = _phrase_table()
_PHRASE_FIRST = frozenset(k.split()[0] for k in _PHRASES)
_PHRASE_MAX = max(len(k.split()) for k in _PHRASES)


def find_words(view: str) -> Iterator[Candidate]:
    """Yield vocabulary and capitalised-name candidates found in ``view``."""
    toks = _tokens(view)
    used = [False] * len(toks)
    yield from _phrases(view, toks, used)
    yield from _runs(view, toks, used)
    yield from _lowercase_names(view, toks, used)


def _tokens(view: str) -> list[_Tok]:
    toks = []
    for m in _TOKEN.finditer(view):
        word = m.group()
        lower = word.lower()
        if lower[-2:] in _POSSESSIVE:
            lower = lower[:-2]
        toks.append(_Tok(m.start(), m.end(), word, lower))
    return toks


def _phrases(view: str, toks: list[_Tok], used: list[bool]) -> Iterator[Candidate]:
    i = 0
    while i < len(toks):
        hit = _phrase_at(toks, i) if toks[i].word.lower() in _PHRASE_FIRST else None
        if hit is None:
            i += 1
            continue
        n, (kind, score, needs_cap) = hit
        after_title = kind is T.LOCATION and i > 0 and toks[i - 1].lower in lex.HONORIFICS
        if (not needs_cap or toks[i].word[0].isupper()) and not after_title:
            yield Candidate(kind, toks[i].start, toks[i + n - 1].end, score)
            used[i : i + n] = [True] * n
        i += n


def _phrase_at(toks: list[_Tok], i: int) -> tuple[int, tuple[T, float, bool]] | None:
    for n in range(min(_PHRASE_MAX, len(toks) - i), 0, -1):
        key = " ".join(t.word.lower() for t in toks[i : i + n])
        hit = _PHRASES.get(key)
        if hit is not None:
            return n, hit
    return None


def _is_cap(tok: _Tok) -> bool:
    return tok.word[0].isupper() and tok.lower not in lex.PUBLIC_TERMS


def _is_acronym(tok: _Tok) -> bool:
    return len(tok.lower) <= 4 and tok.word.isupper()


def _joined(view: str, left: _Tok, right: _Tok) -> bool:
    """Whether ``right`` continues the name that ``left`` is part of."""
    gap = view[left.end : right.start]
    if gap in (" ", "-"):
        return True
    return gap == ". " and _is_abbreviation(left)


def _is_abbreviation(tok: _Tok) -> bool:
    return len(tok.word) == 1 or tok.lower in lex.HONORIFICS or tok.lower in ("st", "mt", "ft")


def _runs(view: str, toks: list[_Tok], used: list[bool]) -> Iterator[Candidate]:
    i = 0
    while i < len(toks):
        if used[i] or not _is_cap(toks[i]):
            i += 1
            continue
        j = i + 1
        while j < len(toks) and not used[j] and _joined(view, toks[j - 1], toks[j]) and (
            _is_cap(toks[j]) or toks[j].lower in _CONNECTORS
        ):
            j += 1
        while j > i + 1 and toks[j - 1].lower in _CONNECTORS:
            j -= 1
        cand = _judge(view, toks, i, j)
        if cand is not None:
            yield cand
        i = j


def _sentence_start(view: str, toks: list[_Tok], i: int) -> bool:
    k = toks[i].start - 1
    while k >= 0 and view[k] in " \t":
        k -= 1
    if k < 0 or (view[k] in _SENTENCE_END and view[k] != "."):
        return True
    if view[k] != ".":
        return view[k] in "(['‘"
    return i == 0 or not _is_abbreviation(toks[i - 1])


def _judge(view: str, toks: list[_Tok], i: int, j: int) -> Candidate | None:
    """Type and score the capitalised run ``toks[i:j]``, or ``None`` if it is no entity."""
    run = toks[i:j]
    honorific = run[0].lower in lex.HONORIFICS and len(run) > 1
    body = run[1:] if honorific else run
    if _sentence_start(view, toks, i) and not honorific:
        while body and _plain_word(body[0]):
            body = body[1:]
    while body and body[-1].lower in lex.NOT_NAMES:
        body = body[:-1]
    if not body or all(_is_acronym(t) or t.lower in lex.NOT_NAMES for t in body):
        return None
    start = run[0].start if honorific else body[0].start
    end = body[-1].end
    after = toks[j] if j < len(toks) else None
    if len(body) > 1 and body[-1].lower in lex.EPONYM_HEADS:
        return Candidate(T.MEDICAL_CONDITION, start, end, 0.6)
    if after is not None and after.lower in lex.EPONYM_HEADS and view[end : after.start] == " ":
        return Candidate(T.MEDICAL_CONDITION, start, after.end, 0.6)
    before = toks[i - 1].lower if i > 0 and toks[i - 1].end > toks[i].start - 3 else ""
    kind, score = _evidence(body, honorific, before)
    return Candidate(kind, start, end, score)


def _plain_word(tok: _Tok) -> bool:
    """A sentence-initial token that is just an ordinary capitalised word."""
    if tok.lower in lex.NOT_NAMES:
        return True
    if tok.lower in lex.FIRST_NAMES or tok.lower in lex.SURNAMES:
        return False
    return _common(tok)


def _common(tok: _Tok) -> bool:
    # "Guillain-Barré" has two parts; "we'll" is the word "we" with a contraction.
    parts = [p.split("'")[0] for p in tok.lower.replace("’", "'").split("-")]
    return all(lex.is_common_word(p) for p in parts if p)


def _evidence(body: list[_Tok], honorific: bool, before: str) -> tuple[T, float]:
    lowers = [t.lower.rstrip(".") for t in body]
    if len(body) > 1 and (lowers[-1] in lex.ORG_SUFFIXES or "of" in lowers[1:-1]):
        return T.ORGANIZATION, 0.8
    named = any(w in lex.FIRST_NAMES or w in lex.SURNAMES for w in lowers)
    initials = any(len(w) == 1 for w in lowers)
    if honorific or before in _PERSON_CUES:
        return T.PERSON, 0.9
    if named and (len(body) > 1 or not _common(body[0])):
        return T.PERSON, 0.85 if len(body) > 1 else 0.75
    if initials and len(body) > 1:
        return T.PERSON, 0.8
    unknown = any(not _common(t) and not _is_acronym(t) for t in body)
    if before in _PLACE_CUES:
        return T.LOCATION, 0.6 if unknown else 0.5
    if named:
        return T.PERSON, 0.6
    if unknown:
        return T.PERSON, 0.6 if len(body) > 1 else 0.5
    return T.PERSON, 0.35


def _lowercase_names(view: str, toks: list[_Tok], used: list[bool]) -> Iterator[Candidate]:
    """Names typed in lower case: a known given name that is not also an ordinary word
    ("olga", not "will"), with the next word if it is a known or unknown surname."""
    for m in _LOWER_NAME_CUE.finditer(view):
        if m.group(1) in lex.FIRST_NAMES:
            last = 2 if m.group(2) in lex.SURNAMES else 1
            yield Candidate(T.PERSON, m.start(1), m.end(last), 0.75)
    for i, tok in enumerate(toks):
        if used[i] or not tok.word.islower() or tok.lower not in lex.FIRST_NAMES:
            continue
        if _common(tok):
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is not None and view[tok.end : nxt.start] == " " and nxt.word.islower() and (
            nxt.lower in lex.SURNAMES or not _common(nxt)
        ):
            yield Candidate(T.PERSON, tok.start, nxt.end, 0.6)
        else:
            yield Candidate(T.PERSON, tok.start, tok.end, 0.5)
