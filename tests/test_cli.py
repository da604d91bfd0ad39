"""The real ``islandnode`` console script, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ISLANDNODE = str(Path(sys.executable).parent / "islandnode")


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [ISLANDNODE, *(["--home", str(home)] if home else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_with_a_description() -> None:
    from argparse import _SubParsersAction

    from islandrun.node.cli import build_parser

    out = run("--help")
    assert out.returncode == 0
    flat = " ".join(out.stdout.split())  # argparse wraps long descriptions
    sub = next(a for a in build_parser()._actions if isinstance(a, _SubParsersAction))
    assert len(sub._choices_actions) >= 2
    for choice in sub._choices_actions:
        assert f" {choice.dest} " in flat
        assert choice.help and choice.help in flat, choice.dest


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("islandnode 0.")


def test_init_then_id(tmp_path: Path) -> None:
    home = tmp_path / "h"
    out = run("init", "--name", "laptop", home=home)
    assert out.returncode == 0, out.stderr
    assert "laptop" in out.stdout
    info = json.loads(run("id", "--json", home=home).stdout)
    assert info["name"] == "laptop"
    assert info["device_id"].startswith("12D3KooW")
    assert len(bytes.fromhex(info["public_key"])) == 32
    assert info["device_id"] in out.stdout
    plain = run("id", home=home).stdout
    assert info["device_id"] in plain and "laptop" in plain


def test_home_from_environment(tmp_path: Path) -> None:
    env_home = tmp_path / "env-home"
    env = {**os.environ, "ISLANDRUN_HOME": str(env_home)}
    out = subprocess.run([ISLANDNODE, "init", "--name", "x"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (env_home / "device.key").exists()


def test_second_init_refuses_and_keeps_the_key(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run("init", home=home)
    before = (home / "device.key").read_bytes()
    out = run("init", home=home)
    assert out.returncode == 1
    assert "already" in out.stderr and "Traceback" not in out.stderr
    assert (home / "device.key").read_bytes() == before


def test_id_without_init_says_what_to_do(tmp_path: Path) -> None:
    out = run("id", home=tmp_path / "nothing")
    assert out.returncode == 1
    assert "islandnode init" in out.stderr and "Traceback" not in out.stderr


def test_unsafe_key_is_refused_by_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run("init", home=home)
    (home / "device.key").chmod(0o644)
    out = run("id", home=home)
    assert out.returncode == 1 and "chmod 600" in out.stderr


def test_bad_name_is_refused(tmp_path: Path) -> None:
    out = run("init", "--name", "x" * 100, home=tmp_path / "h")
    assert out.returncode == 1 and "name" in out.stderr
    assert not (tmp_path / "h" / "device.key").exists()


def test_broken_config_names_file_and_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    run("init", home=home)
    (home / "config.toml").write_text('[node]\nname = "a"\ncolour = "blue"\n')
    out = run("id", home=home)
    assert out.returncode == 1
    assert "config.toml:3" in out.stderr and "colour" in out.stderr
