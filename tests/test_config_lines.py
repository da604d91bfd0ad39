"""Config errors name the file, the line and a fix (node/config_lines.py, node/model_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.cli import main
from islandrun.node.config_lines import line_of
from islandrun.node.errors import ConfigError
from islandrun.node.model_files import gguf_problem, model_file_errors

P = Path("/home/me/config.toml")

SOURCE = """\
top = 1
[node]
name = "laptop"

[trust]
personal = { base = 1.0 }

[trust.friend]   # a comment
base = 0.7

[[models]]
name = "a"
path = "/a.gguf"

[[models]]
name = "b"
"""


@pytest.mark.parametrize(
    ("table", "key", "entry", "line"),
    [
        ("node", "name", None, 3),
        ("node", None, None, 2),
        ("node", "missing", None, 2),  # the header when the key is absent
        ("trust.friend", "base", None, 9),
        ("trust", "friend", None, 8),  # a sub-table written as its own header
        ("trust.personal", "base", None, 6),  # inline table: the line of its key
        ("models", "path", 0, 13),
        ("models", "path", 1, 15),  # absent in the second entry: its header
        ("models", "name", 1, 16),
        ("top", None, None, 1),
        ("nowhere", "x", None, None),
    ],
)
def test_line_of(table: str, key: str | None, entry: int | None, line: int | None) -> None:
    assert line_of(SOURCE, table, key, entry) == line


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('[node]\nname = "a"\nfoo = \n', ":3:", "fix the syntax"),
        ('[node]\nname = "a"\ncolour = 1\n', ":3:", "remove it"),
        ('[node]\nname = "a"\n\n[trust.friend]\nbase = 0.7\nprivacy = 1.5\n', ":6:",
         "[trust.friend].privacy: must be between 0 and 1"),
        ('[node]\nname = "a"\n\n[trust.friend]\nbogus = 1\n', ":5:", "unknown key"),
        ('[node]\nname = "a"\n\n[trust.enemy]\nbase = 0.7\n', ":4:", "unknown key [trust].enemy"),
        ('[node]\nname = "a"\n[trust]\nfriend = {base = 3}\n', ":4:", "between 0 and 1"),
        ('[node]\nname = "a"\n[[models]]\nname = "x"\npath = "/x"\n[[models]]\nname = "y"\n'
         'path = "/y"\ncolour = 3\n', ":9:", "unknown key [models].colour"),
        ('[node]\nname = "a"\n[[cloud]]\nname = "c"\nurl = "http://a/v1"\nmodel = "m"\n'
         'trust = 2.0\n', ":7:", "[cloud].trust: must be between 0 and 1"),
        ('[node]\nname = "a"\n\n[[cloud]]\nname = "x"\n', ":4:", "add model = ... and url = ..."),
        ('[node]\nname = "a"\n[mesh]\nmdns = "yes"\n', ":4:", "write e.g. mdns = true"),
        ('[node]\nname = "a"\n[mesh]\nlisten = "x"\n', ":4:", 'listen = ["..."]'),
    ],
)
def test_every_config_error_has_file_line_and_fix(text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse_config(text, P)
    message = str(info.value)
    assert message.startswith(f"{P}{where}"), message
    assert words in message


def _home_with_model(tmp_path: Path, model: Path) -> tuple[Path, int]:
    """An initialised home whose config lists ``model``; and the line of its path."""
    home = tmp_path / "home"
    assert main(["--home", str(home), "init", "--name", "laptop"]) == 0
    with (home / "config.toml").open("a") as f:
        f.write(f'\n[[models]]\nname = "tiny"\npath = "{model}"\n')
    lines = (home / "config.toml").read_text().splitlines()
    return home, 1 + next(i for i, text in enumerate(lines) if text.startswith("path ="))


def test_missing_and_foreign_model_files_are_located(tmp_path: Path) -> None:
    home, line = _home_with_model(tmp_path, tmp_path / "gone.gguf")
    (errors,) = model_file_errors(config.load_config(home))
    assert str(errors).startswith(f"{home / 'config.toml'}:{line}: model 'tiny'")
    assert "islandnode models remove tiny" in str(errors)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    assert "not a GGUF file" in str(gguf_problem(text))
    good = tmp_path / "good.gguf"
    good.write_bytes(b"GGUF" + bytes(8))
    assert gguf_problem(good) is None


def test_run_refuses_a_missing_model_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, line = _home_with_model(tmp_path, tmp_path / "gone.gguf")
    assert main(["--home", str(home), "run", "--no-mdns", "--api", "off"]) == 1
    err = capsys.readouterr().err
    assert f"{home / 'config.toml'}:{line}:" in err and "does not exist" in err
    assert not (home / "control.sock").exists()  # nothing started
