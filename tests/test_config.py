from __future__ import annotations

from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.errors import ConfigError

ID = "12D3KooWBjxd6XiN5vmP7YcijsMpEAcnGoGBojza6nCdzVo9jv6o"
P = Path("config.toml")


def test_full_config() -> None:
    text = f"""
[node]
name = "laptop"

[mesh]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
allow = ["{ID}"]
"""
    cfg = config.parse_config(text, P)
    assert cfg.node.name == "laptop"
    assert cfg.mesh.listen == ("/ip4/127.0.0.1/tcp/0",) and not cfg.mesh.mdns
    assert cfg.mesh.allow == (ID,)


def test_defaults() -> None:
    cfg = config.parse_config('[node]\nname = "x"\n', P)
    assert cfg.mesh.mdns and cfg.mesh.allow == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[node]\nname = "a"\ncolour = "blue"\n', 3, "unknown key [node].colour"),
        ('[node]\nname = "a"\n[mesh]\nmdns = "yes"\n', 4, "true or false"),
        ('[node]\nname = "a"\n[mesh]\nallow = ["bob"]\n', 4, "not a device id"),
        ('[node]\nname = "a"\n[meshh]\nmdns = true\n', 3, "unknown section [meshh]"),
        ('[node]\nname = ""\n', 2, "printable"),
        ('[node]\nname = "a"\n[mesh]\nlisten = "/ip4/1.2.3.4"\n', 4, "list of strings"),
    ],
)
def test_errors_name_file_line_and_fix(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse_config(text, P)
    assert f"config.toml:{line}:" in str(info.value)
    assert words in str(info.value)


def test_bad_toml() -> None:
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 2"):
        config.parse_config('[node]\nname = "unterminated\n', P)


def test_missing_node_section() -> None:
    with pytest.raises(ConfigError, match="islandnode init"):
        config.parse_config("[mesh]\nmdns = true\n", P)


def test_initial_config_round_trips(tmp_path: Path) -> None:
    config.write_initial_config(tmp_path, "phone", mdns=False, allow=(ID,))
    cfg = config.load_config(tmp_path)
    assert cfg.node.name == "phone" and cfg.mesh.allow == (ID,) and not cfg.mesh.mdns
    assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o600
