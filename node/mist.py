"""MIST, the node's privacy agent: how sensitive is a text, and a safe copy of it.

MIST (Multi-level Intelligent Sensitivity Tracker, paper section VII) answers two
questions for WAVES. *How sensitive is this request?* :func:`analyze` returns an
:class:`Analysis`: a sensitivity in [0, 1], a level (public / internal / confidential
/ restricted), the entity spans found, and reasons (entity types and counts, never
values). *What may cross to a less trusted island?* :func:`sanitize` and
:func:`sanitize_messages` swap each entity for a typed placeholder kept in a
per-conversation :class:`Vault`; :func:`restore` and :class:`StreamRestorer` put the
values back into the answer.

Pipeline: ``mist_normalize`` (Unicode hardening with an offset map) -> stage 1,
``mist_detectors`` (patterns, checksums) and ``mist_names`` (vocabularies,
capitalisation) -> ``mist_score`` (per-type thresholds, overlaps, level) -> an optional
stage 2 (:class:`SecondStage`, e.g. a small local classifier; off by default because
no such model meets the 2 ms/KB budget).

What it is not: routing (WAVES decides where a request goes) or I/O of any kind. It
is pure: no clock, no global randomness (the vault's randomness is injected), no
logging; raw text and values never appear in a repr or an error message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from islandrun.node.mist_detectors import find_patterns
from islandrun.node.mist_entities import Entity, EntityType, Level, MistError, MistInputError
from islandrun.node.mist_names import find_words
from islandrun.node.mist_normalize import normalize
from islandrun.node.mist_restore import StreamRestorer, restore
from islandrun.node.mist_score import (
    DEFAULT_THRESHOLDS,
    Analysis,
    Reason,
    assess,
    floor_of,
    resolve,
)
from islandrun.node.mist_vault import Vault

__all__ = [
    "DEFAULT_CONFIG",
    "Analysis",
    "Entity",
    "EntityType",
    "Level",
    "MistConfig",
    "MistError",
    "MistInputError",
    "Reason",
    "Sanitized",
    "SecondStage",
    "StreamRestorer",
    "Vault",
    "analyze",
    "needs_sanitization",
    "restore",
    "sanitize",
    "sanitize_messages",
]


class SecondStage(Protocol):
    """Paper section VII-A's stage 2: a local classifier that may raise the level.

    It sees the text only on the device that holds it. It can make a verdict stricter,
    never laxer: MIST keeps the larger of the two levels.
    """

    def classify(self, text: str, first_stage: Level) -> Level: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MistConfig:
    """How MIST decides. Every field has a safe default; see ``DEFAULT_CONFIG``."""

    # Minimum detector score, per entity type, for a span to count (and be replaced).
    thresholds: Mapping[EntityType, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS)
    )
    # Largest text accepted, in characters. 2 million is about four times the largest
    # LLM context windows in use; larger input is refused, not truncated, so nothing is
    # silently left unscanned.
    max_chars: int = 2_000_000
    # Optional stage-2 classifier; None keeps MIST within its speed budget.
    second_stage: SecondStage | None = None


DEFAULT_CONFIG = MistConfig()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sanitized:
    """A text with entities replaced by placeholders, and the analysis of the original."""

    text: str
    analysis: Analysis

    def __repr__(self) -> str:
        return f"Sanitized(chars={len(self.text)}, level={self.analysis.level.label})"


def analyze(text: str, config: MistConfig = DEFAULT_CONFIG) -> Analysis:
    """Score ``text``: sensitivity, level, entity spans (into ``text``) and reasons."""
    _check(text, config)
    view, offsets = normalize(text)
    candidates = [*find_patterns(view), *find_words(view)]
    kept = resolve(candidates, view, config.thresholds)
    entities = []
    for c in kept:
        start, end = offsets.span(c.start, c.end)
        entities.append(Entity(type=c.type, start=start, end=end, score=c.score))
    analysis = assess(tuple(entities))
    if config.second_stage is None:
        return analysis
    level = max(analysis.level, config.second_stage.classify(text, analysis.level))
    if level == analysis.level:
        return analysis
    return dataclasses.replace(analysis, level=level, sensitivity=floor_of(level))


def sanitize(text: str, vault: Vault, config: MistConfig = DEFAULT_CONFIG) -> Sanitized:
    """Replace every entity in ``text`` with its placeholder from ``vault``."""
    analysis = analyze(text, config)
    parts: list[str] = []
    pos = 0
    for e in analysis.entities:
        parts.append(text[pos : e.start])
        parts.append(vault.placeholder(e.type, text[e.start : e.end]))
        pos = e.end
    parts.append(text[pos:])
    return Sanitized(text="".join(parts), analysis=analysis)


def sanitize_messages(
    messages: Sequence[Mapping[str, Any]], vault: Vault, config: MistConfig = DEFAULT_CONFIG
) -> list[dict[str, Any]]:
    """Sanitize a chat history (OpenAI-style ``{"role", "content"}`` messages).

    ``content`` may be a string or a list of parts; ``{"type": "text", "text": ...}``
    parts are sanitized, other parts and other keys are copied unchanged. The input is
    not modified.
    """
    return [_sanitize_message(m, vault, config) for m in messages]


def _sanitize_message(
    message: Mapping[str, Any], vault: Vault, config: MistConfig
) -> dict[str, Any]:
    out = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        out["content"] = sanitize(content, vault, config).text
    elif isinstance(content, list):
        out["content"] = [_sanitize_part(p, vault, config) for p in content]
    elif content is not None:
        raise MistInputError("message content must be a string or a list of parts")
    return out


def _sanitize_part(part: Any, vault: Vault, config: MistConfig) -> Any:
    if isinstance(part, Mapping) and part.get("type") == "text":
        return {**part, "text": sanitize(str(part.get("text", "")), vault, config).text}
    return part


def needs_sanitization(origin_trust: float, target_trust: float) -> bool:
    """Whether data must be sanitized to go from ``origin_trust`` to ``target_trust``.

    True exactly when the target is less trusted than the origin; the personal group
    (both at 1.0) and moves to equal or higher trust are exempt (paper section VII-B).
    """
    for trust in (origin_trust, target_trust):
        if not 0.0 <= trust <= 1.0:
            raise MistError("trust scores must lie in [0, 1]")
    return origin_trust > target_trust


def _check(text: str, config: MistConfig) -> None:
    if not isinstance(text, str):
        raise MistInputError(
            f"MIST analyses text (str), not {type(text).__name__}; decode bytes first"
        )
    if len(text) > config.max_chars:
        raise MistInputError(
            f"text of {len(text)} characters exceeds the limit of {config.max_chars}; "
            "split it or raise MistConfig.max_chars"
        )
