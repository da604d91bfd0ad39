"""``islandnode sanitize``: plain, --json and --jsonl output, and bad input lines."""

from __future__ import annotations

import io
import json

from islandrun.node.cmd_sanitize import execute


def run(data: bytes, **mode: bool) -> tuple[int, str]:
    out = io.StringIO()
    code = execute(io.BytesIO(data), out, jsonl=mode.get("jsonl", False),
                   as_json=mode.get("as_json", False))
    return code, out.getvalue()


def test_plain_output_is_the_sanitized_text() -> None:
    code, out = run(b"mail bob@example.com now")
    assert code == 0
    assert out.startswith("mail [EMAIL_") and "bob@" not in out


def test_json_output_fields() -> None:
    code, out = run(b"Maria Gonzalez, SSN 536-22-1234", as_json=True)
    result = json.loads(out)
    assert code == 0
    assert set(result) == {"sensitivity", "level", "entities", "sanitized"}
    assert result["level"] == "restricted"
    assert {"type": "SSN", "start": 20, "end": 31} in result["entities"]


def test_jsonl_bad_lines_get_error_objects() -> None:
    data = b'{"text": "call 415-555-0132"}\nnot json\n{"text": 5}\n\xff\xfe\n{"text": "hi"}\n'
    code, out = run(data, jsonl=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [("error" in r) for r in lines] == [False, True, True, True, False]
    assert "415-555-0132" not in lines[0]["sanitized"]


def test_binary_input_does_not_crash() -> None:
    code, out = run(bytes(range(256)) * 4, as_json=True)
    assert code == 0 and json.loads(out)["level"] in {"public", "internal", "confidential",
                                                     "restricted"}
