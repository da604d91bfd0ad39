"""Unicode hardening for MIST: a detection view of the text plus a map back to it.

What it is: :func:`normalize` turns text into the form the detectors read (NFKC, so
full-width and other compatibility digits become ASCII; zero-width and other invisible
format characters removed; digits of any script mapped to ASCII; Cyrillic and Greek
look-alike letters inside otherwise Latin words mapped to Latin) and returns an
:class:`OffsetMap` so every span found in the view refers back to the *original* text,
which is what gets sanitized. Plain ASCII text (the common case) takes a fast path
with an identity map.

What it is not: detection. It never drops a visible character, so an obfuscated value
(``4\u200b111 1111…``, ``５５５-０１２３``) still reaches the detectors whole.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

# Characters with no visible glyph that an attacker can slip into a number or a word.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
# Look-alikes of Latin letters (Cyrillic, Greek) that NFKC leaves alone.
_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТХУаеорсхуіјѕԁӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιν",
    "ABEKMHOPCTXYaeopcxyijsdlABEZHIKMNOPTYXaoiv",
)
_LATIN_WORD_WITH_LOOKALIKE = re.compile(
    "\\w*(?:[A-Za-z][\u0370-\u052f]|[\u0370-\u052f][A-Za-z])\\w*"
)
_NON_ASCII_DIGIT = re.compile(r"[^\D0-9]")  # a digit, but not an ASCII one
_LOOKALIKE_SCRIPT = re.compile("[\u0370-\u052f]")


@dataclasses.dataclass(frozen=True, slots=True)
class OffsetMap:
    """Maps spans of the normalized view back to spans of the original text.

    ``starts[j]`` / ``ends[j]`` are the original start / end of the source of view
    character ``j``; ``None`` means the identity map (the view is the original).
    Invariant: ``len(starts) == len(ends) == len(view)`` when not identity.
    """

    starts: tuple[int, ...] | None
    ends: tuple[int, ...] | None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of view span ``[start, end)`` (``end > start``)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


_IDENTITY = OffsetMap(None, None)


def normalize(text: str) -> tuple[str, OffsetMap]:
    """Return ``(view, offsets)``: the detection view of ``text`` and its offset map."""
    if text.isascii():
        return text, _IDENTITY
    if _needs_no_rewrite(text):
        return text, _IDENTITY
    return _rewrite(text)


def _needs_no_rewrite(text: str) -> bool:
    return (
        unicodedata.is_normalized("NFKC", text)
        and _INVISIBLE.search(text) is None
        and (
            _LOOKALIKE_SCRIPT.search(text) is None
            or _LATIN_WORD_WITH_LOOKALIKE.search(text) is None
        )
        and _NON_ASCII_DIGIT.search(text) is None
    )


def _rewrite(text: str) -> tuple[str, OffsetMap]:
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _clusters(text):
        cluster = text[start:end]
        if _INVISIBLE.fullmatch(cluster[0]):
            continue
        out = _fold_digits(unicodedata.normalize("NFKC", cluster))
        pieces.append(out)
        starts.extend([start] * len(out))
        ends.extend([end] * len(out))
    view = _map_lookalikes("".join(pieces))
    return view, OffsetMap(tuple(starts), tuple(ends))


def _clusters(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into base character + following combining marks."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not unicodedata.combining(text[i]):
            bounds.append((start, i))
            start = i
    return bounds


def _fold_digits(piece: str) -> str:
    if piece.isascii():
        return piece
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in piece)


def _map_lookalikes(view: str) -> str:
    # Only words that already mix Latin with look-alikes are mapped: a wholly Greek or
    # Cyrillic word is real text in that script and is left as it is. The translation
    # is one character to one character, so the offset lists stay valid.
    def fix(match: re.Match[str]) -> str:
        return match.group(0).translate(_HOMOGLYPHS)

    return _LATIN_WORD_WITH_LOOKALIKE.sub(fix, view)
