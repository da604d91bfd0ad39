"""Where a setting sits in a TOML file: the line number of a table or a key.

``tomllib`` returns plain dicts with no positions, so a config error would
only be able to say *what* is wrong, not *where*. This module finds the
line by scanning the source text for the table header and the key, the way
a person would:

1. a key that is itself a table written ``[table.key]`` -> that header;
2. ``[table]`` (or the ``entry``-th ``[[table]]``) -> the key inside its
   body, else the header itself;
3. ``[a.b]`` with no header of its own (written inline, ``b = {...}`` under
   ``[a]``) -> the line of ``b`` inside ``[a]``;
4. a top-level key -> its line before the first header.

It is pure (text in, line number out) and best effort: quoted keys, dotted
keys (``a.b = 1``) and keys inside inline tables fall back to the nearest
enclosing table or key. It is not a TOML parser and decides nothing about
validity.
"""

from __future__ import annotations

import re

_ANY_HEADER = re.compile(r"^[ \t]*\[\[?[^\[\]\n]+\]\]?[ \t]*(#.*)?$", re.MULTILINE)


def line_of(text: str, table: str, key: str | None = None, entry: int | None = None) -> int | None:
    """1-based line of ``key`` in ``table`` (dotted path) of ``text``, or of
    the table's header; ``entry`` picks one ``[[table]]`` of an array of
    tables. None if neither appears."""
    if key is not None and entry is None:
        sub = _header(text, f"{table}.{key}", None)
        if sub is not None:
            return _line(text, sub.start())
    header = _header(text, table, entry)
    if header is not None:
        found = _key_in_body(text, header.end(), key) if key is not None else None
        return _line(text, (found if found is not None else header.start()))
    if "." in table:
        parent, _, last = table.rpartition(".")
        return line_of(text, parent, last)
    found = _key_in_body(text, 0, table)
    return None if found is None else _line(text, found)


def _header(text: str, table: str, entry: int | None) -> re.Match[str] | None:
    name = re.escape(table) if entry is None else rf"\[{re.escape(table)}\]"
    pattern = re.compile(rf"^[ \t]*\[{name}\][ \t]*(#.*)?$", re.MULTILINE)
    for i, match in enumerate(pattern.finditer(text)):
        if i == (entry or 0):
            return match
    return None


def _key_in_body(text: str, start: int, key: str | None) -> int | None:
    """Offset of ``key =`` between ``start`` and the next table header."""
    if key is None:
        return None
    following = _ANY_HEADER.search(text, start)
    end = following.start() if following else len(text)
    found = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE).search(text, start, end)
    return None if found is None else found.start()


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
