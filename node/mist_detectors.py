"""MIST stage 1, patterns: regular expressions with checksums and context words.

What it is: :func:`find_patterns` runs pre-compiled regular expressions over the
normalized view of a text and yields :class:`Candidate` spans for structured
identifiers — emails, URLs, IP addresses, phone numbers, SSNs, payment cards (Luhn plus
issuer prefix, 12 to 19 digits), IBANs (per-country length plus ISO 7064 mod-97),
secrets (known token formats, ``password: …``, private keys, JWTs), dates, ages, ICD-10
codes, street addresses, postal codes, GPS coordinates (decimal degrees or degrees,
minutes and seconds, in range), legal matter / case / docket numbers and record / plan /
account numbers introduced by a context word. Checksums turn "looks like" into "is": a
16-digit number that fails Luhn is not reported as a card.

What it is not: the vocabulary finder for names, places and health terms
(``mist_names``), nor the place where overlapping candidates are resolved or
thresholds applied (``mist_score``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from islandrun.node.mist_entities import EntityType as T
from islandrun.node.mist_lexicon import (
    STREET_AFTER,
    STREET_BEFORE,
    STREET_ENDINGS,
    UNIT_WORDS,
    is_common_word,
)


class Candidate(NamedTuple):
    """A possible entity in the normalized view (``start``/``end`` are view offsets)."""

    type: T
    start: int
    end: int
    score: float


_Finder = Callable[[str, str], Iterator[Candidate]]
_Gate = Callable[[str, str], bool]


def _always(view: str, low: str) -> bool:
    return True


def _has(*needles: str, lower: bool = True) -> _Gate:
    def gate(view: str, low: str) -> bool:
        text = low if lower else view
        return any(n in text for n in needles)

    return gate


def _seen(pattern: str) -> _Gate:
    compiled = re.compile(pattern)

    def gate(view: str, low: str) -> bool:
        return compiled.search(view) is not None

    return gate


# Upper-case letters of the Latin, Greek and Cyrillic scripts, for "capitalised word".
UPPER = "A-Z" + "".join(
    chr(c) for c in (*range(0xC0, 0x250), *range(0x370, 0x530)) if chr(c).isupper()
)
_CAP = rf"[{UPPER}][\w'’\-]*"


def _alt(words: frozenset[str] | tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _cased_alt(words: frozenset[str]) -> str:
    """Alternation of ``words`` as lower, Capitalised and UPPER case literals; unlike
    ``(?i:...)`` this keeps the regex engine's fast scan for a first character."""
    return _trie(frozenset(f for w in words for f in (w, w.capitalize(), w.upper())))


def _trie(words: frozenset[str]) -> str:
    """``_alt(words)`` as a prefix tree ("via|viale" -> "via(?:le|)"): the same matches
    tried in the same order (longest first among words that share a prefix), but the
    engine tests each next character once instead of once per word, three times
    faster for a hundred words."""
    rests: dict[str, set[str]] = {}
    for w in words:
        if w:
            rests.setdefault(w[0], set()).add(w[1:])
    branches = [re.escape(c) + _trie(frozenset(r)) for c, r in sorted(rests.items())]
    if "" in words:
        branches.append("")  # the word that ends here: after every longer one
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
# Optional leading parts are spelled out as alternatives ("0[1-9]|[1-9]", not
# "0?[1-9]"): same matches, but a pattern that starts with one keeps the prefix scan.
_DAY = r"(?:[12]\d|3[01]|0[1-9]|[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_WEEKDAY = r"(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?"

_DATES: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(rf"{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b"), 0.85),
    (re.compile(rf"{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b"), 0.85),
    (re.compile(rf"{_MONTH},?\s+{_YEAR}\b"), 0.75),
    (re.compile(r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2})\b"), 0.8),
    (re.compile(rf"{_WEEKDAY}\b"), 0.55),
    (re.compile(rf"{_YEAR}s?\b"), 0.45),
)
_DECADE = re.compile(r"(?:19[2-9]|[2-9])0'?s\b")
_TIME = re.compile(r"(?:[01]\d|\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\s?(?i:[ap]\.?m\.?)?(?!\w)")
_MONTH_SEEN = re.compile(_MONTH)
_CLOCK_SEEN = re.compile(r":[0-5]\d")  # in every time; a bare ":" is in most prompts

_AGES = (
    re.compile(r"(\d{1,3})\s?(?:-\s?)?(?i:years?|yrs?|y/?o|yo)\b"),
    # on lower case
    re.compile(r"(?:aged?|age of|turn(?:ed|ing|s)?|i\s?am|i'm)\s*:?\s*(\d{1,3})\b"),
)

_EMAIL = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}\b")
_EMAIL_SPELLED = re.compile(
    r"\b[\w.+\-]+\s*(?:\[at\]|\(at\)|\sat\s)\s*[\w\-]+\s*(?:\[dot\]|\(dot\)|\sdot\s)\s*[a-z]{2,}\b",
    re.I,
)
_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|ai|app|dev|co|me|tv|uk|de|fr|es|it|nl|be|"
    "ch|at|se|no|dk|fi|pl|cz|hu|ro|bg|gr|pt|ie|ru|ua|jp|cn|kr|in|au|nz|ca|us|br|mx|ar|za"
)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_DOMAIN = re.compile(rf"[A-Za-z0-9\-]++\.(?:[A-Za-z0-9\-]++\.)*(?i:{_TLDS})\b(?!\.\w)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}\b(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}([- .])(?!00)\d{2}\1(?!0000)\d{4}\b")
_DIGIT_RUN = re.compile(r"\+?\(?\d[\d ().\-]{5,80}\d(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\d\w])")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$")
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|call|fax|mobile|cell|number|contact|reach|whatsapp|sms|text|"
    r"ring|dial|line|ph|#)\W{0,3}(?:\w+\W+){0,4}$",
    re.I,
)
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}\b")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24,
    "XK": 20,
}
# Issuer prefixes (IIN ranges) of the common card schemes and their lengths.
_CARD_PREFIX = re.compile(
    r"4\d{11,18}"  # Visa (13, 16, 19; 12+ covers old and Electron)
    r"|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|6(?:011|4[4-9]\d|5\d\d)\d{12,15}"  # Discover
    r"|3(?:0[0-5]|[68]\d)\d{11,16}"  # Diners Club
    r"|35(?:2[89]|[3-8]\d)\d{12,15}|(?:2131|1800)\d{11}"  # JCB
    r"|62\d{14,17}|81\d{14,17}"  # UnionPay
    r"|(?:5[06-9]|6\d)\d{10,17}"  # Maestro
    r"|220[0-4]\d{12}"  # Mir
)
_CARD_CONTEXT = re.compile(
    r"(?:card|visa|mastercard|amex|credit|debit|cc)\W{0,3}(?:\w+\W+){0,3}$", re.I
)

_SECRET_TOKENS = re.compile(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}"
    r"|\bglpat-[A-Za-z0-9_\-]{20,}|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bAIza[0-9A-Za-z_\-]{35}\b|\bhf_[A-Za-z0-9]{30,}\b|\bnpm_[A-Za-z0-9]{36}\b"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)
_SECRET_WORDS = ("pass", "pwd", "pin", "secret", "key", "token", "bearer", "credential")
_SECRET_ASSIGNED = re.compile(
    r"(?:pass(?:word|wd|phrase)?|pwd|pin|secret|api[_\- ]?key|access[_\- ]?key|auth[_\- ]?token"
    r"|token|bearer|client[_\- ]?secret|private[_\- ]?key|credentials?)"
    r"[\"']?\s*(?:[:=]|\bis\b|\bwas\b)\s*[\"']?(?P<v>[^\s\"',;]{4,})",
    re.I,
)
_SECRET_IN_URL = re.compile(r"://[^\s:/@]+:(?P<v>[^\s@/]+)@")

_ICD10 = re.compile(r"[A-TV-Z]\d[0-9AB]\.[0-9A-TV-Z]{1,4}\b")
_ICD10_CONTEXT = re.compile(
    r"\b(?:icd(?:-?10)?|dx|diagnosis code|code)\W{0,3}"
    r"(?P<v>[A-TV-Z]\d[0-9AB](?:\.[0-9A-TV-Z]{1,4})?)\b",
    re.I,
)

# A context word, up to a few filler words ("number", "no.", "#", ":"), then an
# identifier with at least three digits.
_ID_VALUE = (
    r"(?P<v>(?=(?:[A-Za-z\-]*\d){3})[A-Za-z0-9][A-Za-z0-9\-/]{3,24})"
)
_ID_FILLER = r"(?:\s*(?:number|num|no\.?|nr\.?|#|id|is|was|of|:|=)\s*){0,3}\s*"
# Compiled twice: without re.I for the lower-cased text (fast prefix scan), with re.I
# for text whose lower-case form changes length (offsets would not line up).
_CONTEXT_IDS: tuple[tuple[re.Pattern[str], re.Pattern[str], T, float], ...] = tuple(
    (
        re.compile(rf"(?:{words})\b{_ID_FILLER}{_ID_VALUE}"),
        re.compile(rf"(?:{words})\b{_ID_FILLER}{_ID_VALUE}", re.I),
        kind,
        score,
    )
    for words, kind, score in (
        (r"mrn|medical record|patient id|chart|record", T.MEDICAL_RECORD_NUMBER, 0.9),
        (
            r"health plan|member|insurance|policy|medicaid|medicare|beneficiary|subscriber"
            r"|group|plan",
            T.HEALTH_PLAN_NUMBER, 0.9,
        ),
        (r"account|acct|a/c|routing|sort code", T.ACCOUNT_NUMBER, 0.9),
        (r"ssn|social security|sin|national insurance|tax id|tin", T.SSN, 0.9),
        (r"zip|zip code|postal code|postcode|post code|plz", T.POSTAL_CODE, 0.85),
        (
            r"id|identifier|licen[cs]e|passport|dl|certificate|badge|employee|student|case"
            r"|claim|ticket|order|reference|ref|serial|device|vin|customer|client|fax",
            T.ID_NUMBER, 0.85,
        ),
    )
)
# Long digit strings and letter-digit codes ("AB123456", "HP-0098765", "123456X").
# The look-behind (a word start) also spares the engine trying every letter of a word.
_LONE_ID = re.compile(
    r"(?<![\w\-])(?:\d{6,}|[A-Za-z]{1,4}-?\d{4,}|\d{4,}-?[A-Za-z]{1,4})[A-Za-z0-9\-]{0,16}"
    r"(?![\w\-])"
)

# A legal matter, case or docket number: the context word, the same fillers as other
# identifiers, then a number with at least three digits and a separator ("47-8710",
# "2023-CV-0042", "1:21-cv-01234"), or five digits or more. Lower-case text only.
_CASE_NUMBER = re.compile(
    rf"(?:matter|docket|case|cause)\b{_ID_FILLER}"
    r"(?P<v>(?=[a-z\d]*\d[a-z\d\-:/]*\d[a-z\d\-:/]*\d)[a-z\d]+(?:[\-:/][a-z\d]+)+|\d{5,})"
    r"(?![\w\-])"
)

# GPS positions. Decimal degrees: latitude then longitude, three or more decimals each,
# each optionally followed by a degree sign and its hemisphere letter; the range is
# checked in Python. Degrees, minutes (and seconds) always carry a hemisphere letter.
_GPS_SEPARATOR = r"(?:\s*,\s*|\s+)"
_GPS_DECIMAL = re.compile(
    r"[-+]?(?P<lat>\d{1,2}\.\d{3,})(?:\s?°)?(?:\s?(?P<ns>[NS]))?"
    rf"{_GPS_SEPARATOR}(?:(?i:lon|lng|long|longitude)\s*[:=]?\s*)?"
    r"[-+]?(?P<lon>\d{1,3}\.\d{3,})(?:\s?°)?(?:\s?(?P<ew>[EW]))?(?!\w|\.\d)"
)
_DMS_ONE = (
    r"\d{1,3}\s?°\s?\d{1,2}(?:\.\d+)?\s?['′]"
    r"(?:\s?\d{1,2}(?:\.\d+)?\s?(?:\"|″|′′|''))?\s?[NSEW]"
)
_GPS_DMS = re.compile(rf"{_DMS_ONE}{_GPS_SEPARATOR}{_DMS_ONE}(?!\w)")
_GPS_CONTEXT = ("gps", "coord", "lat", "location", "position", "located", "waypoint", "geo")

_STREET_NUMBER = r"\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?"
_ADDRESS_RULES: tuple[tuple[re.Pattern[str], float, _Gate], ...] = (
    (
        re.compile(
            rf"{_STREET_NUMBER},?\s+(?:{_CAP}\s+){{0,4}}(?i:{_alt(STREET_AFTER)})(?!\w)"
        ),
        0.85,
        _always,
    ),
    (
        re.compile(
            rf"(?:{_cased_alt(STREET_BEFORE)})(?:\s+|(?<=\.))"
            rf"(?:(?:{_CAP}|d[aeiou]s?|l[ae]|del|van|von|der|den|di|du)\s+){{0,5}}"
            rf"(?:{_CAP}\s*,?\s*{_STREET_NUMBER}\b|{_CAP})"
        ),
        0.85,
        _always,
    ),
    (
        re.compile(rf"(?:{_cased_alt(UNIT_WORDS)})\s*#?\s*\d+[A-Za-z]?\b"),
        0.7,
        _always,
    ),
    (re.compile(r"(?:[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}|[A-Z]\d[A-Z]\s\d[A-Z]\d)\b"), 0.75, _always),
    (re.compile(r"(?<=[A-Za-z], )[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"), 0.8, _has(", ", lower=False)),
)


def _ending_behind(endings: tuple[str, ...]) -> str:
    """Look-behinds, one per length (a look-behind has a fixed width), that together
    match where the text just read ends with one of ``endings``, in any case."""
    by_length: dict[int, list[str]] = {}
    for e in endings:
        by_length.setdefault(len(e), []).append(e)
    return "|".join(rf"(?<=(?i:{_alt(tuple(es))}))" for es in by_length.values())


# One compound word ending in a street type ("Hammarvägen 15", "Brixtonlaan"), optionally
# with its house number; an ordinary English word ("Spring") is not a street name. A
# capital and at least two more word characters; the rest of the word is taken whole
# (possessively) and its ending checked by look-behinds, one per ending length (trying
# each ending at every backtracking step cost four times more). A look-behind may reach
# back past the capital only inside a word, and such matches are dropped (no word start).
_STREET_WORD = re.compile(
    rf"[{UPPER}](?=[\w\-]{{2}})[\w\-]*+"
    rf"(?:{_ending_behind(tuple(e for e in STREET_ENDINGS if e != 'str.'))}|(?<=(?i:str))\.)"
    r"(?![\w\-])"
)
_LEADING_NUMBER = re.compile(rf"(?<![\w,.\-]){_STREET_NUMBER},?[ \t]+$")
_HOUSE_NUMBER = re.compile(rf"\s+{_STREET_NUMBER}\b")
POSTAL_CODE = re.compile(r"\b(?:\d{2}-\d{3}|\d{3}\s\d{2}|\d{4,6}(?:-\d{4})?)\b")


def find_patterns(view: str) -> Iterator[Candidate]:
    """Yield every pattern candidate in ``view`` (unresolved: candidates may overlap).

    Speed: a pattern that starts with ``\\b``, an optional part or a case-ignoring
    group defeats the regex engine's prefix scan and costs several times more per
    kilobyte, so patterns start with a character class or literal where they can
    (``0[1-9]|[1-9]``, not ``0?[1-9]``), word starts are checked in Python on the few
    matches, and rare patterns run only when a cheap gate (a substring, or a regex of
    literals) says they can match at all. A gate is a necessary condition of its
    pattern, never a heuristic: gated and ungated runs yield the same candidates
    (``tests/test_mist_fastpaths.py``).
    """
    low = view.lower()
    for gate, finder in _FINDERS:
        if gate(view, low):
            yield from finder(view, low)


def _word_start(view: str, i: int) -> bool:
    return i == 0 or not (view[i - 1].isalnum() or view[i - 1] == "_")


def _simple(pattern: re.Pattern[str], kind: T, score: float) -> _Finder:
    def find(view: str, low: str) -> Iterator[Candidate]:
        for m in pattern.finditer(view):
            if _word_start(view, m.start()):
                yield Candidate(kind, m.start(), m.end(), score)

    return find


def _valued(pattern: re.Pattern[str], kind: T, score: float) -> _Finder:
    def find(view: str, low: str) -> Iterator[Candidate]:
        for m in pattern.finditer(view):
            yield Candidate(kind, m.start("v"), m.end("v"), score)

    return find


def _dates(view: str, low: str) -> Iterator[Candidate]:
    patterns = [*(_DATES if _MONTH_SEEN.search(view) else _DATES[3:])]
    if "0s" in view or "0's" in view:
        patterns.append((_DECADE, 0.4))
    if _CLOCK_SEEN.search(view):
        patterns.append((_TIME, 0.45))
    for pattern, score in patterns:
        for m in pattern.finditer(view):
            if _word_start(view, m.start()):
                yield Candidate(T.DATE, m.start(), m.end(), score)


def _ages(view: str, low: str) -> Iterator[Candidate]:
    same = len(low) == len(view)
    for pattern, text in ((_AGES[0], view), (_AGES[1], low if same else view)):
        for m in pattern.finditer(text):
            if _word_start(text, m.start()) and int(m.group(1)) <= 125:
                yield Candidate(T.AGE, m.start(1), m.end(1), 0.8)


def _ipv4(view: str, low: str) -> Iterator[Candidate]:
    for m in _IPV4.finditer(view):
        yield Candidate(T.IP_ADDRESS, m.start(), m.end(), 0.85)


def _ipv6(view: str, low: str) -> Iterator[Candidate]:
    for m in _IPV6.finditer(view):
        if _is_ipv6(m.group(0)):
            yield Candidate(T.IP_ADDRESS, m.start(), m.end(), 0.85)


def _domains(view: str, low: str) -> Iterator[Candidate]:
    for m in _DOMAIN.finditer(view):
        if m.start() == 0 or (view[m.start() - 1] not in "@.-_/" and _word_start(view, m.start())):
            yield Candidate(T.URL, m.start(), m.end(), 0.6)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn (mod 10) check used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(compact: str) -> bool:
    """Whether ``compact`` (no spaces, upper case) is an IBAN: country length and mod-97."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ibans(view: str, low: str) -> Iterator[Candidate]:
    for m in _IBAN.finditer(view):
        length = _IBAN_LENGTHS.get(m.group(0)[:2])
        if length is None or not _word_start(view, m.start()):
            continue
        end, kept = m.start(), 0
        while kept < length and end < m.end():
            kept += view[end] != " "
            end += 1
        if kept == length and iban_ok(view[m.start() : end].replace(" ", "")):
            yield Candidate(T.IBAN, m.start(), end, 0.95)


def _digit_runs(view: str, low: str) -> Iterator[Candidate]:
    """Phone numbers and payment cards: both are runs of digits and separators."""
    for found in _DIGIT_RUN.finditer(view):
        m = found
        if m.start() > 0 and (view[m.start() - 1].isalnum() or view[m.start() - 1] in "+-_"):
            # Glued to a word ("A0 4111 ..."): drop the glued group, keep the rest.
            m = _DIGIT_RUN.search(view, m.start() + len(re.match(r"\d*\D*", m.group(0))[0]),
                                  m.end())
            if m is None:
                continue
        run = _EXTENSION.sub("", m.group(0))
        digits = re.sub(r"\D", "", run)
        before = view[max(0, m.start() - 40) : m.start()]
        card = _card(digits, before) if len(digits) <= 19 else 0.0
        if card:
            yield Candidate(T.CREDIT_CARD, m.start(), m.end(), card)
        elif len(digits) > 12:
            yield from _cards_inside(m)
        phone = _phone(run, digits, before)
        if phone:
            yield Candidate(T.PHONE, m.start(), m.end(), phone)


def _cards_inside(run: re.Match[str]) -> Iterator[Candidate]:
    """A card number inside a longer run of digits ("1 4111 1111 1111 1111", or two
    cards back to back): try every window of the run's digit groups."""
    groups = list(re.finditer(r"\d+", run.group(0)))
    for a in range(len(groups)):
        digits = ""
        for b in range(a, len(groups)):
            digits += groups[b].group(0)
            if len(digits) > 19:
                break
            if len(digits) >= 12 and _card(digits, "") >= 0.95:
                start, end = run.start() + groups[a].start(), run.start() + groups[b].end()
                yield Candidate(T.CREDIT_CARD, start, end, 0.95)


def _card(digits: str, before: str) -> float:
    if not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        return 0.0
    if _CARD_PREFIX.fullmatch(digits):
        return 0.95
    return 0.8 if _CARD_CONTEXT.search(before) else 0.5


def _phone(run: str, digits: str, before: str) -> float:
    if not 7 <= len(digits) <= 15 or re.search(r"[.\-/ ]{2}|\d{4}-\d\d-\d\d", run):
        return 0.0
    groups = re.findall(r"\d+", run)
    if all(len(g) == 4 and g[:2] in ("19", "20") for g in groups):
        return 0.0  # a list of years
    if "." in run and len(groups) == 2:
        return 0.0  # a decimal number
    score = 0.5 if len(groups) >= 2 else 0.35
    if run[0] in "+(" or len(groups) >= 3:
        score += 0.3
    if _PHONE_CONTEXT.search(before):
        score += 0.2
    return min(score, 0.95)


def _icd10_in_context(view: str, low: str) -> Iterator[Candidate]:
    for m in _ICD10_CONTEXT.finditer(view):
        yield Candidate(T.ICD10_CODE, m.start("v"), m.end("v"), 0.8)


def _context_ids(view: str, low: str) -> Iterator[Candidate]:
    same = len(low) == len(view)
    for fast, folded, kind, score in _CONTEXT_IDS:
        text, pattern = (low, fast) if same else (view, folded)
        for m in pattern.finditer(text):
            if _word_start(text, m.start()):
                yield Candidate(kind, m.start("v"), m.end("v"), score)


def _lone_ids(view: str, low: str) -> Iterator[Candidate]:
    for m in _LONE_ID.finditer(view):
        yield Candidate(T.ID_NUMBER, m.start(), m.end(), 0.45)


def _case_numbers(view: str, low: str) -> Iterator[Candidate]:
    if len(low) != len(view):  # lower-casing moved offsets: such text is rare, skip it
        return
    for m in _CASE_NUMBER.finditer(low):
        if _word_start(low, m.start()):
            yield Candidate(T.CASE_NUMBER, m.start("v"), m.end("v"), 0.9)


def _gps_decimal(view: str, low: str) -> Iterator[Candidate]:
    for m in _GPS_DECIMAL.finditer(view):
        start = m.start()
        if start and (view[start - 1].isalnum() or view[start - 1] in "._"):
            continue  # inside a version number, an address or a longer number
        if float(m["lat"]) > 90.0 or float(m["lon"]) > 180.0:
            continue
        score = _gps_score(m, low)
        if score:
            yield Candidate(T.GPS_COORDINATES, start, m.end(), score)


def _gps_score(m: re.Match[str], low: str) -> float:
    """Marked (degree sign or hemisphere) 0.9, named by a context word 0.85, a bare pair
    of four-decimal numbers 0.6 (internal on its own), shorter bare pairs nothing."""
    if m["ns"] or m["ew"] or "°" in m.group(0):
        return 0.9
    before = low[max(0, m.start() - 24) : m.start()]
    if any(word in before for word in _GPS_CONTEXT):
        return 0.85
    four = len(m["lat"].partition(".")[2]) >= 4 and len(m["lon"].partition(".")[2]) >= 4
    return 0.6 if four else 0.0


def _addresses(view: str, low: str) -> Iterator[Candidate]:
    for pattern, score, gate in _ADDRESS_RULES:
        if gate(view, low):
            for m in pattern.finditer(view):
                if _word_start(view, m.start()):
                    number = _LEADING_NUMBER.search(view, max(0, m.start() - 12), m.start())
                    start = number.start() if number else m.start()
                    yield Candidate(T.STREET_ADDRESS, start, m.end(), score)
    for m in _STREET_WORD.finditer(view):
        if is_common_word(m.group(0).lower().rstrip(".")) or not _word_start(view, m.start()):
            continue
        number = _HOUSE_NUMBER.match(view, m.end())
        end = number.end() if number else m.end()
        lead = _LEADING_NUMBER.search(view, max(0, m.start() - 12), m.start())
        start = lead.start() if lead else m.start()
        yield Candidate(T.STREET_ADDRESS, start, end, 0.8 if number else 0.5)



_FINDERS: tuple[tuple[_Gate, _Finder], ...] = (
    (_has("@", lower=False), _simple(_EMAIL, T.EMAIL, 0.95)),
    (_has(" dot ", "[dot]", "(dot)"), _simple(_EMAIL_SPELLED, T.EMAIL, 0.8)),
    (_has("://", "www."), _simple(_URL, T.URL, 0.6)),
    (_always, _domains),
    (_seen(r"\d\.\d{1,3}\.\d"), _ipv4),
    (_seen(r":[0-9A-Fa-f]{0,4}:"), _ipv6),
    (_seen(r"\d\d\d[- .]\d\d[- .]\d\d\d\d"), _simple(_SSN, T.SSN, 0.85)),
    (_always, _ibans),
    (_seen(r"\d[\d ().\-]{5}"), _digit_runs),
    (
        _seen(r"AKIA|ASIA|gh[opsur]_|github_pat_|glpat-|xox[abprs]-|sk-|k_live_|k_test_|AIza"
              r"|hf_|npm_|eyJ|-----BEGIN"),
        _simple(_SECRET_TOKENS, T.SECRET, 0.95),
    ),
    (_has(*_SECRET_WORDS), _valued(_SECRET_ASSIGNED, T.SECRET, 0.9)),
    (_has("://"), _valued(_SECRET_IN_URL, T.SECRET, 0.9)),
    (_always, _dates),
    (_always, _ages),
    (_always, _simple(_ICD10, T.ICD10_CODE, 0.7)),
    (_has("icd", "dx", "code"), _icd10_in_context),
    (_always, _context_ids),
    (_seen(r"\d\d\d\d"), _lone_ids),
    (_has("matter", "docket", "case", "cause"), _case_numbers),
    (_seen(r"\d\.\d\d\d"), _gps_decimal),
    (_has("°", lower=False), _simple(_GPS_DMS, T.GPS_COORDINATES, 0.9)),
    (_always, _addresses),
)
