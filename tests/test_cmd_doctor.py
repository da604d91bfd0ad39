"""``islandnode doctor`` on healthy and broken homes (node/cmd_doctor.py)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from islandrun.node import config, identity
from islandrun.node.cli import main
from islandrun.node.cmd_doctor import Level, check_bluetooth, diagnose


def _healthy(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    identity.create_key(home)
    config.write_initial_config(home, "laptop", listen=("/ip4/127.0.0.1/tcp/0",), mdns=False)
    return home


def _doctor(home: Path, capsys: pytest.CaptureFixture[str], *args: str
            ) -> tuple[int, list[dict[str, Any]]]:
    code = main(["--home", str(home), "doctor", "--json", "--no-bluetooth",
                 "--api", "127.0.0.1:0", *args])
    return code, json.loads(capsys.readouterr().out)


def _failed(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in checks if c["level"] == "fail"}


def test_healthy_home_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = _doctor(_healthy(tmp_path), capsys)
    assert code == 0 and not _failed(checks)
    assert {c["name"] for c in checks} >= {"home", "key", "config", "models", "mdns"}


def test_missing_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, checks = _doctor(tmp_path / "nope", capsys)
    assert code == 1 and "init" in _failed(checks)["home"]["fix"]


def test_key_readable_by_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _healthy(tmp_path)
    os.chmod(home / "device.key", 0o644)
    code, checks = _doctor(home, capsys)
    assert code == 1
    assert _failed(checks)["permissions"]["fix"] == f"chmod 600 {home / 'device.key'}"


def test_broken_config_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _healthy(tmp_path)
    with (home / "config.toml").open("a") as f:
        f.write("\n[trust.friend]\nprivacy = 7\n")
    code, checks = _doctor(home, capsys)
    lines = (home / "config.toml").read_text().splitlines()
    assert code == 1
    assert f"config.toml:{lines.index('privacy = 7') + 1}:" in _failed(checks)["config"]["detail"]


def test_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _healthy(tmp_path)
    with (home / "config.toml").open("a") as f:
        f.write(f'\n[[models]]\nname = "tiny"\npath = "{tmp_path / "gone.gguf"}"\n')
    code, checks = _doctor(home, capsys)
    assert code == 1 and "does not exist" in _failed(checks)["models"]["detail"]


def test_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _healthy(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, checks = _doctor(home, capsys, "--api", f"127.0.0.1:{port}")
    assert code == 1 and str(port) in _failed(checks)["ports"]["fix"]


def test_no_bluetooth_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    async def no_radio() -> None:
        raise OSError("no adapter")

    home = _healthy(tmp_path)
    checks = diagnose(home, "off", bluetooth=lambda: check_bluetooth(no_radio))
    (bt,) = [c for c in checks if c.name == "bluetooth"]
    assert bt.level is Level.WARN and "no adapter" in bt.detail and bt.fix
    assert not [c for c in checks if c.level is Level.FAIL]
    with (home / "config.toml").open("a") as f:
        f.write("\n[ble]\nenabled = true\nrequired = true\n")
    checks = diagnose(home, "off", bluetooth=lambda: check_bluetooth(no_radio))
    (bt,) = [c for c in checks if c.name == "bluetooth"]
    assert bt.level is Level.FAIL and "required = false" in bt.fix
