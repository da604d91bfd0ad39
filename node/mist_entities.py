"""MIST's vocabulary of results: entity types, detected spans, levels and errors.

What it is: the small value types every MIST module shares, so that the detectors,
the scorer, the vault and the façade (``mist.py``) agree without importing each other.
An :class:`Entity` is a *span* (type, start, end, score) into the caller's original
text; it never holds the matched value, so printing or logging one cannot leak it.

What it is not: detection logic (``mist_detectors``, ``mist_names``) or scoring
(``mist_score``).

Paper names: MIST (Multi-level Intelligent Sensitivity Tracker, paper section VII)
rates a request public / internal / confidential / restricted; those are :class:`Level`.
"""

from __future__ import annotations

import dataclasses
import enum

from islandrun.protocol.errors import IslandRunError


class EntityType(enum.Enum):
    """What kind of sensitive value a span holds; the value names the placeholder.

    Append-only: the values appear in placeholders such as ``[PERSON_12]``.
    """

    # Members are singletons compared by identity, so identity hashing is consistent;
    # Enum's own ``__hash__`` hashes the name in Python, on MIST's hot path.
    __hash__ = object.__hash__

    PERSON = "PERSON"
    LOCATION = "LOCATION"
    ORGANIZATION = "ORGANIZATION"
    STREET_ADDRESS = "STREET_ADDRESS"
    POSTAL_CODE = "POSTAL_CODE"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    URL = "URL"
    IP_ADDRESS = "IP_ADDRESS"
    DATE = "DATE"
    AGE = "AGE"
    SSN = "SSN"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN = "IBAN"
    ACCOUNT_NUMBER = "ACCOUNT_NUMBER"
    MEDICAL_RECORD_NUMBER = "MEDICAL_RECORD_NUMBER"
    HEALTH_PLAN_NUMBER = "HEALTH_PLAN_NUMBER"
    ID_NUMBER = "ID_NUMBER"
    SECRET = "SECRET"
    ICD10_CODE = "ICD10_CODE"
    MEDICAL_CONDITION = "MEDICAL_CONDITION"
    MEDICATION = "MEDICATION"
    FINANCIAL_TERM = "FINANCIAL_TERM"
    DEMOGRAPHIC = "DEMOGRAPHIC"
    GPS_COORDINATES = "GPS_COORDINATES"
    CASE_NUMBER = "CASE_NUMBER"


class Level(enum.IntEnum):
    """Paper section VII-A's four classes, ordered so that ``max`` picks the stricter."""

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Entity:
    """One detected span ``text[start:end]`` of the original text, with a score in [0, 1].

    Invariant: ``0 <= start < end``; the value itself is deliberately not stored.
    """

    type: EntityType
    start: int
    end: int
    score: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise MistError("an entity span must satisfy 0 <= start < end")
        if not 0.0 <= self.score <= 1.0:
            raise MistError("an entity score must lie in [0, 1]")


class MistError(IslandRunError):
    """MIST refused its input or a request; the message never quotes the text."""


class MistInputError(MistError):
    """The text to analyse is not acceptable (wrong type, or larger than the limit)."""
