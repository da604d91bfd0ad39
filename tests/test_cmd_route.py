"""``islandnode route``: MIST + WAVES on a snapshot file, as the node would, end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from islandrun.node import cli, mist

EXAMPLE_PATH = Path(__file__).parent.parent / "examples" / "route-snapshot.json"
EXAMPLE = json.loads(EXAMPLE_PATH.read_text())


def run(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> tuple[int, str, str]:
    code = cli.main(["route", "--snapshot", str(path), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(data))
    return path


def test_example_chooses_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, EXAMPLE_PATH)
    assert code == 0
    assert out.splitlines()[0].startswith("MIST: sensitivity")
    assert "<- chosen" in out
    assert "OpenAI gpt-4o (cloud): removed by privacy" in out
    assert "diabetic" not in out  # the prompt is never printed


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, EXAMPLE_PATH, "--json")
    data = json.loads(out)
    assert code == 0
    expected = mist.analyze(EXAMPLE["request"]["prompt"])
    assert data["mist"]["sensitivity"] == expected.sensitivity
    assert data["mist"]["level"] == expected.level.label
    assert data["decision"]["refused"] is False
    assert {c["device_id"] for c in data["decision"]["candidates"]} == {
        i["device_id"] for i in EXAMPLE["islands"]
    }


def test_sensitive_prompt_with_only_cloud_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = copy.deepcopy(EXAMPLE)
    data["islands"] = [i for i in data["islands"] if i["kind"] == "cloud"]
    data["request"]["prompt"] = "My SSN is 123-45-6789 and my card is 4111 1111 1111 1111."
    code, out, _ = run(capsys, write(tmp_path, data))
    assert code == 3
    assert "refused: no island satisfies every constraint (privacy: OpenAI gpt-4o)" in out
    assert "123-45-6789" not in out


def test_agent_fallbacks_are_shown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = copy.deepcopy(EXAMPLE)
    data.update(local=None, cached_islands=data["islands"], islands=None)
    code, out, _ = run(capsys, write(tmp_path, data), "--json")
    decision = json.loads(out)["decision"]
    assert decision["fallbacks"] == ["lighthouse", "tide"]
    assert decision["local_capacity"] == 0.0
    assert code == 0


def test_failing_mist_means_sensitivity_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("model file missing")

    monkeypatch.setattr(mist, "analyze", broken)
    code, out, _ = run(capsys, EXAMPLE_PATH)
    assert out.splitlines()[0] == (
        "MIST failed (RuntimeError); WAVES treats the request as sensitivity 1.0"
    )
    assert "sensitivity 1.00" in out
    assert code == 3  # only the laptop has privacy 1.0, and it is too busy for secondary work


def test_measures_this_device_when_local_is_absent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["local"]
    code, out, _ = run(capsys, write(tmp_path, data), "--json")
    decision = json.loads(out)["decision"]
    assert 0.0 <= decision["local_capacity"] <= 1.0
    assert decision["fallbacks"] == []
    assert code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ('{"islands": []}', "request: missing"),
    ],
)
def test_bad_files_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, _, err = run(capsys, path)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path / "nope.json")
    assert code == 1
    assert "cannot read the snapshot file (FileNotFoundError)" in err
