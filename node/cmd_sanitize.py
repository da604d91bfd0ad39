"""``islandnode sanitize``: show what MIST would let leave this device.

What it is: the command-line edge of MIST. It reads standard input as bytes, decodes
it as UTF-8 with undecodable bytes replaced by U+FFFD (binary input is scanned, not
refused, and never crashes the command), and prints the sanitized text; ``--json``
prints the analysis as well; ``--jsonl`` handles one ``{"text": ...}`` object per line
and answers each with one result line, or one ``{"line", "error"}`` line for bad input.
Placeholders are numbered from the operating system's random source.

What it is not: a place where values are logged. Only the sanitized text, entity
types and spans are printed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from typing import Any, BinaryIO, TextIO

from islandrun.node import mist

NAME = "sanitize"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        NAME,
        help="print stdin with sensitive entities replaced by typed placeholders",
        description=(
            "Read text on standard input and print it as MIST would send it to a "
            "less trusted island: names, numbers, dates, health and financial details "
            "replaced by typed placeholders such as [PERSON_4821]."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--json",
        action="store_true",
        help='print {"sensitivity", "level", "entities", "sanitized"} as one JSON object',
    )
    mode.add_argument(
        "--jsonl",
        action="store_true",
        help='read one {"text": ...} JSON object per line; write one result per line',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return execute(sys.stdin.buffer, sys.stdout, jsonl=args.jsonl, as_json=args.json)


def execute(source: BinaryIO, out: TextIO, *, jsonl: bool, as_json: bool) -> int:
    """Run the command on ``source``; returns the exit code (1: some input refused)."""
    vault = mist.Vault(secrets.SystemRandom())
    if jsonl:
        failed = False
        for number, raw in enumerate(source, start=1):
            if raw.strip():
                result = _jsonl_line(raw, number, vault)
                failed = failed or "error" in result
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
        return 1 if failed else 0
    text = source.read().decode("utf-8", errors="replace")
    try:
        result = _result(text, vault)
    except mist.MistError as exc:
        print(f"islandnode sanitize: {exc}", file=sys.stderr)
        return 1
    if as_json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    else:
        out.write(result["sanitized"])
    return 0


def _jsonl_line(raw: bytes, number: int, vault: mist.Vault) -> dict[str, Any]:
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        return {"line": number, "error": f"not valid JSON ({exc.msg} at column {exc.colno})"}
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return {"line": number, "error": 'expected an object {"text": "..."}'}
    try:
        return {"line": number, **_result(obj["text"], vault)}
    except mist.MistError as exc:
        return {"line": number, "error": str(exc)}


def _result(text: str, vault: mist.Vault) -> dict[str, Any]:
    sanitized = mist.sanitize(text, vault)
    analysis = sanitized.analysis
    return {
        "sensitivity": analysis.sensitivity,
        "level": analysis.level.label,
        "entities": [
            {"type": e.type.value, "start": e.start, "end": e.end} for e in analysis.entities
        ],
        "sanitized": sanitized.text,
    }
