"""``islandnode cloud add | list | remove``: config edits and spend against budgets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.cli import main
from islandrun.node.horizon_budget import BudgetLedger, encode_ledger, save_ledger

ADD = ["cloud", "add", "openai", "--url", "https://api.openai.com/v1", "--model", "gpt-4o-mini",
       "--price-in", "0.15", "--price-out", "0.6", "--api-key-env", "HORIZON_TEST_KEY",
       "--daily-budget", "1", "--monthly-budget", "20"]


def cli(home: Path, *args: str) -> int:
    return main(["--home", str(home), *args])


def test_add_list_remove(home: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORIZON_TEST_KEY", raising=False)
    assert cli(home, *ADD) == 0
    assert "$HORIZON_TEST_KEY is not set" in capsys.readouterr().out
    [cloud] = config.load_config(home).cloud
    assert (cloud.trust, cloud.privacy, cloud.daily_budget, cloud.price_out) == (0.4, 0.4, 1.0, 0.6)
    assert cli(home, "cloud", "add", "local", "--url", "http://127.0.0.1:8080/v1",
               "--model", "tiny", "--trust", "0.6", "--privacy", "0.5") == 0
    assert "monthly_budget" not in (home / "config.toml").read_text().split("local")[1]

    ledger = BudgetLedger()
    ledger.record("openai", 0.25, time.time())
    save_ledger(home, encode_ledger(ledger))
    monkeypatch.setenv("HORIZON_TEST_KEY", "sk-never-printed")
    capsys.readouterr()
    assert cli(home, "cloud", "list") == 0
    out = capsys.readouterr().out
    assert "today: 0.2500 of 1  this month: 0.2500 of 20" in out
    assert "key: environment ($HORIZON_TEST_KEY)" in out and "key: none" in out
    assert cli(home, "cloud", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["device_id"], r["key_source"], r["spent_today"]) for r in rows] == [
        ("cloud:openai", "environment", 0.25), ("cloud:local", "none", 0.0)]
    assert "sk-never-printed" not in out + json.dumps(rows)

    assert cli(home, "cloud", "remove", "openai") == 0
    assert [c.name for c in config.load_config(home).cloud] == ["local"]
    assert cli(home, "cloud", "remove", "local") == 0
    assert "cloud" not in (home / "config.toml").read_text()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--trust", "2"], "[cloud].trust: must be between 0 and 1"),
        (["--price-in", "-1"], "[cloud].price_in: must not be negative"),
        (["--url", "file:///etc/passwd"], "http:// or https://"),
        (["--daily-budget", "-3"], "[cloud].daily_budget: must not be negative"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_written(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    before = (home / "config.toml").read_text()
    assert cli(home, *ADD, *args) == 1
    assert words in capsys.readouterr().err
    assert (home / "config.toml").read_text() == before


def test_duplicates_and_unknown_names_are_clear_errors(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(home, *ADD) == 0
    assert cli(home, *ADD) == 1
    assert "a cloud island named 'openai' exists" in capsys.readouterr().err
    assert cli(home, "cloud", "remove", "nope") == 1
    assert "no cloud island named 'nope' (configured: openai)" in capsys.readouterr().err


def test_list_without_clouds_says_how_to_add(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(home, "cloud") == 0
    assert "islandnode cloud add" in capsys.readouterr().out
