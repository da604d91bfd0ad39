"""The routing audit log: one JSON line per WAVES decision, appended in the node home.

Every decision leaves a record (issue 4): when, which request, how sensitive
(the MIST level and the *types* of entities found), where it went (island and
tier), why, and what it cost. Records never hold prompt text or entity values:
:func:`audit_record` takes only a :class:`~islandrun.node.waves.Decision`
(which holds no text) and type names, and it drops anything that does not look
like a type name, so a caller mixing up a value and a type cannot leak it.

:func:`audit_record` is pure (time passed in); :class:`AuditLog` is the file
writer: append-only, one ``write`` per line, created ``0600``.

What this is not: no log rotation, no reading back (it is JSON lines; use
``jq``), and no decision-making.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from islandrun.node.waves import Decision

#: File name of the audit log inside the node home.
AUDIT_FILE = "audit.jsonl"

_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_LEVEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _type_names(entity_types: Iterable[str]) -> list[str]:
    """Sorted distinct type names; anything that is not an UPPER_CASE name becomes ``OTHER``."""
    return sorted({t if _TYPE_NAME.fullmatch(t) else "OTHER" for t in entity_types})


def audit_record(
    decision: Decision, *, at: float, level: str, entity_types: Iterable[str]
) -> dict[str, Any]:
    """The audit record of one decision; ``at`` is seconds since the Unix epoch."""
    island = decision.island
    when = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    return {
        "time": when.isoformat(timespec="milliseconds"),
        "request_id": decision.request.request_id,
        "client_id": decision.request.client_id,
        "sensitivity": round(decision.sensitivity, 4),
        "level": level if _LEVEL_NAME.fullmatch(level) else "other",
        "entity_types": _type_names(entity_types),
        "island": None if island is None else island.device_id,
        "island_name": None if island is None else island.name,
        "tier": decision.request.tier.value,
        "refused": decision.refused,
        "queued": decision.queued,
        "sanitized": decision.sanitize,
        "reason": decision.reason,
        "cost": decision.cost,
        "fallbacks": [f.name.lower() for f in decision.explanation.fallbacks],
        "failed": list(decision.failed),
    }


class AuditLog:
    """Appends audit records to ``<home>/audit.jsonl`` (blocking; call from a thread in trio)."""

    def __init__(self, home: Path) -> None:
        self.path = home / AUDIT_FILE

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write per line: concurrent appenders do not interleave
        finally:
            os.close(fd)
