"""A per-conversation vault: the two-way map between values and typed placeholders.

What it is: paper section VII-B's "bidirectional mapping". :meth:`Vault.placeholder`
gives a value a placeholder such as ``[PERSON_4821]``; the same value of the same type
always gets the same placeholder within the vault's conversation, in every turn.
Numbering starts, per type, at an offset drawn from the randomness injected at
construction, so placeholders from two conversations cannot be correlated (``PERSON_1``
would tell a cloud island "first person mentioned" in every conversation).

What it is not: persistent or printable. Values live only in memory (the personal
group state keeps a copy of each pair, encrypted at rest and sealed only to the owner's
own devices: :meth:`entries` / :meth:`adopt`); ``repr`` shows how many entries there
are and nothing else. Finding placeholders in answers is
``mist_restore``'s job.
"""

from __future__ import annotations

import random

from islandrun.node.mist_entities import EntityType

_MAX_OFFSET = 9000


class Vault:
    """Values <-> placeholders for one conversation. Never log or serialize it."""

    __slots__ = ("_by_placeholder", "_by_value", "_next", "_rng")

    def __init__(self, rng: random.Random) -> None:
        """``rng`` supplies the per-type starting offsets: pass ``secrets.SystemRandom()``
        in production and a seeded ``random.Random`` in tests."""
        self._rng = rng
        self._next: dict[EntityType, int] = {}
        self._by_value: dict[tuple[EntityType, str], str] = {}
        # Invariant: _by_placeholder and _by_value hold the same pairs, inverted.
        self._by_placeholder: dict[tuple[EntityType, int], str] = {}

    def placeholder(self, kind: EntityType, value: str) -> str:
        """The placeholder for ``value`` of type ``kind``, creating it on first use."""
        key = (kind, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._next.get(kind)
        if number is None:
            number = self._rng.randint(1, _MAX_OFFSET)
        while (kind, number) in self._by_placeholder:
            number += 1
        self._next[kind] = number + 1
        placeholder = f"[{kind.value}_{number}]"
        self._by_value[key] = placeholder
        self._by_placeholder[(kind, number)] = value
        return placeholder

    def value(self, kind: EntityType, number: int) -> str | None:
        """The value behind placeholder ``kind``/``number``, or ``None`` if unknown."""
        return self._by_placeholder.get((kind, number))

    def entries(self) -> list[tuple[EntityType, int, str]]:
        """Every ``(type, number, value)``: for the owner's encrypted group state only."""
        return [(kind, number, value) for (kind, number), value in self._by_placeholder.items()]

    def adopt(self, kind: EntityType, number: int, value: str) -> None:
        """Take a pair made on another of the owner's devices; a clash keeps the pair
        already here, and a value keeps the placeholder it first had."""
        if (kind, number) in self._by_placeholder:
            return
        self._by_placeholder[(kind, number)] = value
        self._by_value.setdefault((kind, value), f"[{kind.value}_{number}]")
        self._next[kind] = max(self._next.get(kind, 0), number + 1)

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __repr__(self) -> str:
        return f"<Vault entries={len(self)}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Vault holds private values and cannot be pickled")

