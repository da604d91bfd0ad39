"""MIST scoring: thresholds per entity type, overlap resolution, sensitivity and level.

What it is: the pure arithmetic that turns raw candidates into an :class:`Analysis`.

* :func:`resolve` keeps candidates whose score reaches *their type's* threshold (one
  global threshold would silently drop weak true matches such as a phone number with
  no context word), then keeps the best of overlapping candidates (higher score, then
  longer span), then attaches postal codes that sit next to an address or a place, and
  marks every other occurrence of a value it found.
* :func:`assess` rates the kept entities. Each type has a ceiling (an SSN is worth more
  than a city); an entity contributes ``ceiling * score`` and the sensitivity is the
  largest contribution, raised when categories combine: health or financial terms
  together with a direct identifier are regulated data (restricted); two kinds of
  direct identifier together are at least confidential. Health words on their own
  ("a 55-year-old with hypertension") identify nobody and stay internal.

Level bands (paper section VII-A): public < 0.2 <= internal < 0.5 <= confidential
< 0.75 <= restricted.

What it is not: detection (``mist_detectors``, ``mist_names``) or text rewriting.
"""

from __future__ import annotations

import bisect
import dataclasses
import operator
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from islandrun.node.mist_detectors import POSTAL_CODE, Candidate
from islandrun.node.mist_entities import Entity, EntityType, Level

T = EntityType

DEFAULT_THRESHOLDS: Mapping[EntityType, float] = {
    **{t: 0.5 for t in T},
    T.PERSON: 0.45,
    T.LOCATION: 0.45,
    T.PHONE: 0.45,
    T.DATE: 0.4,
    T.ID_NUMBER: 0.4,
    T.CREDIT_CARD: 0.5,
}

# What one entity of a type is worth at score 1.0.
_CEILING: Mapping[EntityType, float] = {
    T.SECRET: 1.0, T.SSN: 1.0, T.CREDIT_CARD: 1.0, T.IBAN: 0.95,
    T.MEDICAL_RECORD_NUMBER: 0.95, T.HEALTH_PLAN_NUMBER: 0.95, T.ACCOUNT_NUMBER: 0.9,
    T.PERSON: 0.8, T.STREET_ADDRESS: 0.8, T.EMAIL: 0.75, T.PHONE: 0.75, T.ID_NUMBER: 0.75,
    T.IP_ADDRESS: 0.6, T.POSTAL_CODE: 0.6, T.DATE: 0.55, T.ICD10_CODE: 0.6,
    T.MEDICAL_CONDITION: 0.6, T.MEDICATION: 0.55, T.LOCATION: 0.5, T.ORGANIZATION: 0.5,
    T.FINANCIAL_TERM: 0.5, T.DEMOGRAPHIC: 0.45, T.AGE: 0.4, T.URL: 0.4,
    T.GPS_COORDINATES: 0.8, T.CASE_NUMBER: 0.75,
}
_DIRECT_IDENTIFIERS = frozenset(
    {
        T.PERSON, T.EMAIL, T.PHONE, T.STREET_ADDRESS, T.SSN, T.CREDIT_CARD, T.IBAN,
        T.ACCOUNT_NUMBER, T.MEDICAL_RECORD_NUMBER, T.HEALTH_PLAN_NUMBER, T.ID_NUMBER,
        T.IP_ADDRESS, T.GPS_COORDINATES, T.CASE_NUMBER,
    }
)
_HEALTH = frozenset(
    {T.MEDICAL_CONDITION, T.MEDICATION, T.ICD10_CODE, T.MEDICAL_RECORD_NUMBER,
     T.HEALTH_PLAN_NUMBER}
)
_FINANCE = frozenset({T.FINANCIAL_TERM, T.CREDIT_CARD, T.IBAN, T.ACCOUNT_NUMBER})
_STRONG = 0.5  # a contribution at least this large counts as a real identifier
_BANDS = ((0.75, Level.RESTRICTED), (0.5, Level.CONFIDENTIAL), (0.2, Level.INTERNAL))
_POSTAL_AFTER = re.compile(rf"[ ,]{{1,3}}({POSTAL_CODE.pattern})")
_POSTAL_BEFORE = re.compile(rf"({POSTAL_CODE.pattern})[ ,]{{1,3}}$")
_START = operator.attrgetter("start")  # a C-level key: bisect calls it often


class Reason(NamedTuple):
    """One line of an explanation: how many entities of a type were found (no values)."""

    type: EntityType
    count: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """MIST's verdict on one text: spans into the original text, never values."""

    sensitivity: float
    level: Level
    entities: tuple[Entity, ...]
    reasons: tuple[Reason, ...]


def resolve(
    candidates: Iterable[Candidate], view: str, thresholds: Mapping[EntityType, float]
) -> list[Candidate]:
    """Keep candidates over their type's threshold, best first where they overlap."""
    ranked = sorted(
        (c for c in candidates if c.score >= thresholds.get(c.type, 0.5)),
        key=lambda c: (-c.score, c.start - c.end, c.start),
    )
    kept: list[Candidate] = []
    for cand in ranked:
        _keep_if_free(kept, cand)
    for cand in list(kept):
        if cand.type in (T.STREET_ADDRESS, T.LOCATION):
            for postal in _postal_codes(view, cand):
                _keep_if_free(kept, postal)
    for cand in _repeats(kept, view):
        _keep_if_free(kept, cand)
    return kept


def _repeats(kept: list[Candidate], view: str) -> list[Candidate]:
    """Other occurrences of values already found: a name detected once (after
    "patient") is replaced everywhere, or its undetected copy would leak it."""
    best: dict[str, Candidate] = {}
    for c in kept:
        value = view[c.start : c.end]
        if len(value) >= 3 and value not in best:
            best[value] = c
    # Up to 32 values: every occurrence of each. More: only the leftmost-longest ones,
    # which do not overlap (what the one regex pass used here for many values found).
    hits = _find_each(best, view) if len(best) <= 32 else _find_leftmost(best, view)
    return [Candidate(best[v].type, i, i + len(v), best[v].score) for v, i in hits]


def _bounded(view: str, start: int, end: int) -> bool:
    return (start == 0 or not view[start - 1].isalnum()) and (
        end == len(view) or not view[end].isalnum()
    )


def _occurrences(values: Iterable[str], view: str) -> Iterator[tuple[str, int]]:
    for value in values:
        i = view.find(value)
        while i >= 0:
            yield value, i
            i = view.find(value, i + 1)


def _find_each(values: Iterable[str], view: str) -> list[tuple[str, int]]:
    return [(v, i) for v, i in _occurrences(values, view) if _bounded(view, i, i + len(v))]


def _find_leftmost(values: Iterable[str], view: str) -> list[tuple[str, int]]:
    """What one pass of a regex alternation of ``values``, longest first, finds: the
    longest value starting at the leftmost position, then on from its end. Found with
    ``str.find``: compiling that regex cost about 1.5 ms, more than scanning a 1 KB
    prompt once per value."""
    hits: list[tuple[str, int]] = []
    pos = 0
    for i, _, value in sorted((i, -len(v), v) for v, i in _occurrences(values, view)):
        if i >= pos:
            pos = i + len(value)
            if _bounded(view, i, pos):
                hits.append((value, i))
    return hits


def _keep_if_free(kept: list[Candidate], cand: Candidate) -> None:
    # Invariant: ``kept`` is sorted by start and its spans do not overlap, so only the
    # neighbours at the insertion point can overlap ``cand``.
    i = bisect.bisect_left(kept, cand.start, key=_START)
    if i > 0 and kept[i - 1].end > cand.start:
        return
    if i < len(kept) and kept[i].start < cand.end:
        return
    kept.insert(i, cand)


def _postal_codes(view: str, near: Candidate) -> list[Candidate]:
    found = []
    after = _POSTAL_AFTER.match(view, near.end, near.end + 16)
    if after:
        found.append(Candidate(T.POSTAL_CODE, after.start(1), after.end(1), 0.7))
    before = _POSTAL_BEFORE.search(view, max(0, near.start - 16), near.start)
    if before:
        found.append(Candidate(T.POSTAL_CODE, before.start(1), before.end(1), 0.7))
    return found


def assess(entities: tuple[Entity, ...]) -> Analysis:
    """Rate ``entities`` (already resolved) into sensitivity, level and reasons."""
    worth = [(e.type, _CEILING[e.type] * e.score) for e in entities]
    sensitivity = max((w for _, w in worth), default=0.0)
    strong_ids = {t for t, w in worth if t in _DIRECT_IDENTIFIERS and w >= _STRONG}
    kinds = {t for t, _ in worth}
    if strong_ids and kinds & (_HEALTH | _FINANCE) - strong_ids:
        sensitivity = max(sensitivity, 0.85)
    if len(strong_ids) >= 2:
        sensitivity = max(sensitivity, 0.6)
    counts = Counter(e.type for e in entities)
    reasons = tuple(Reason(t, n) for t, n in sorted(counts.items(), key=lambda kv: kv[0].value))
    return Analysis(
        sensitivity=round(sensitivity, 4),
        level=level_of(sensitivity),
        entities=entities,
        reasons=reasons,
    )


def level_of(sensitivity: float) -> Level:
    """The level band that a sensitivity in [0, 1] falls in."""
    for floor, level in _BANDS:
        if sensitivity >= floor:
            return level
    return Level.PUBLIC


def floor_of(level: Level) -> float:
    """The lowest sensitivity of a level's band."""
    return next((floor for floor, lv in _BANDS if lv is level), 0.0)
