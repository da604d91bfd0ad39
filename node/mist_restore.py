"""Putting values back: replace placeholders in an answer with the vault's values.

What it is: paper section VII-B's "backward pass". :func:`restore` rewrites a whole
answer; :class:`StreamRestorer` does the same for a streamed answer, holding back only
the tail of the text that could still grow into a placeholder (``"… [PERS"`` then
``"ON_4821] said"``). Matching is tolerant of what models do to placeholders: any
case, spaces or hyphens for the underscores, spaces inside the brackets, a lost
bracket or both (``person 4821``, ``[Person-4821``). A tolerant match is replaced only
when the vault knows that exact type and number; since numbers start at a random
offset per conversation, ordinary prose ("person 2") practically never collides.

What it is not: sanitization (``mist.sanitize``) or storage (``mist_vault``).
"""

from __future__ import annotations

import re

from islandrun.node.mist_entities import EntityType
from islandrun.node.mist_vault import Vault

_SEP = r"[ _\-]?"
_TYPE_ALT = "|".join(
    _SEP.join(t.value.split("_"))
    for t in sorted(EntityType, key=lambda t: len(t.value), reverse=True)
)
_PLACEHOLDER = re.compile(
    rf"(?:\[[ \t]*)?\b(?P<t>{_TYPE_ALT})[ \t]*[ _\-:#]?[ \t]*(?P<n>\d+)\b(?:[ \t]*\])?", re.I
)
_BY_COMPACT = {t.value.replace("_", ""): t for t in EntityType}
_COMPACT_NAMES = tuple(_BY_COMPACT)
_PARTIAL = re.compile(
    r"(?P<b>\[)?[ \t]*(?P<l>[A-Za-z][A-Za-z \t_\-]*?)?[ \t]*[ _\-:#]?[ \t]*(?P<d>\d*)(?P<s>[ \t]*)"
)
_TAIL = 64  # longer than any placeholder, with room for a model's extra spaces


def restore(text: str, vault: Vault) -> str:
    """``text`` with every placeholder the vault knows replaced by its value."""

    def swap(m: re.Match[str]) -> str:
        kind = _BY_COMPACT[re.sub(r"[^A-Za-z]", "", m.group("t")).upper()]
        value = vault.value(kind, int(m.group("n")))
        return m.group(0) if value is None else value

    return _PLACEHOLDER.sub(swap, text)


class StreamRestorer:
    """Restores a streamed answer chunk by chunk; call :meth:`close` at the end."""

    __slots__ = ("_pending", "_vault")

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the restored text that is safe to show now."""
        text = self._pending + chunk
        cut = _hold_from(text)
        self._pending = text[cut:]
        return restore(text[:cut], self._vault)

    def close(self) -> str:
        """The restored remainder once the stream has ended."""
        text, self._pending = self._pending, ""
        return restore(text, self._vault)

    def __repr__(self) -> str:
        return f"<StreamRestorer pending_chars={len(self._pending)}>"


def _hold_from(text: str) -> int:
    """Where the tail that may still become a placeholder starts (``len(text)`` if none)."""
    base = max(0, len(text) - _TAIL)
    for i in range(base, len(text)):
        ch = text[i]
        starts_word = ch.isalpha() and (i == 0 or not text[i - 1].isalnum())
        if (ch == "[" or starts_word) and _could_grow(text[i:]):
            return i
    return len(text)


def _could_grow(tail: str) -> bool:
    m = _PARTIAL.fullmatch(tail)
    if m is None or "]" in tail:
        return False
    compact = re.sub(r"[^A-Za-z]", "", m.group("l") or "").upper()
    if m.group("d"):
        # Complete type and a number: more digits or a closing bracket may follow,
        # unless the placeholder was bracketless and already ended with a space.
        return compact in _BY_COMPACT and (m.group("b") is not None or not m.group("s"))
    return (m.group("b") is not None and not compact) or (
        bool(compact) and any(name.startswith(compact) for name in _COMPACT_NAMES)
    )
