"""The node config: ``<home>/config.toml``, the owner's settings for this device.

The config is the owner's word. Everything that decides where data may go
(trust and privacy scores, tiers, buffers) comes from here and from pairing
records, never from what another device says about itself.

Errors name the file, the line where it can be found, and the fix, before
anything starts: a typo in a privacy setting must not silently fall back to
a default.

Sections so far::

    [node]
    name = "laptop"          # shown to paired devices and in `islandnode peers`

Later capabilities add their own sections; each is a frozen dataclass whose
fields document their meaning and unit.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from .errors import ConfigError
from .home import CONFIG_FILE, ensure_home, write_private

MAX_NAME_LEN = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSection:
    #: Human name of this device, shown to paired devices (1-64 characters).
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node: NodeSection
    path: Path


def config_path(home: Path) -> Path:
    return home / CONFIG_FILE


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    match = pattern.search(text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def _error(path: Path, text: str, key: str, message: str) -> ConfigError:
    line = _line_of(text, key)
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"{where}: {message}")


def validate_name(name: object) -> str:
    """A device name: printable, 1-64 characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LEN or not name.isprintable():
        raise ConfigError(f"a device name must be 1-{MAX_NAME_LEN} printable characters")
    return name


def load_config(home: Path) -> NodeConfig:
    """Read and validate the config; raise :class:`ConfigError` with a fix."""
    path = config_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `islandnode init` first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc}); fix or recreate it") from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for section in data:
        if section != "node":
            raise _error(path, text, section, f"unknown section or key {section!r}; remove it")
    node = data.get("node", {})
    for key in node:
        if key != "name":
            raise _error(path, text, key, f"unknown key [node].{key}; remove it")
    try:
        name = validate_name(node.get("name"))
    except ConfigError as exc:
        raise _error(path, text, "name", f"[node].name: {exc}") from None
    return NodeConfig(node=NodeSection(name=name), path=path)


def write_initial_config(home: Path, name: str) -> Path:
    """Write the config ``islandnode init`` creates."""
    ensure_home(home)
    path = config_path(home)
    write_private(path, tomli_w.dumps({"node": {"name": validate_name(name)}}).encode())
    return path
