"""The node config: ``<home>/config.toml``, the owner's settings for this device.

The config is the owner's word. Everything that decides where data may go
(trust and privacy scores, tiers, buffers, who may join) comes from here and
from pairing records, never from what another device says about itself.

Errors name the file, the line, and the fix, and are raised before anything
starts: a typo in a privacy setting must not silently fall back to a
default. Each section is a frozen dataclass whose fields document meaning
and unit; :func:`_section` reads any of them with the same strict rules
(unknown keys, wrong types and out-of-range values are errors).

Example::

    [node]
    name = "laptop"                    # shown to paired devices

    [mesh]
    listen = ["/ip4/0.0.0.0/tcp/4001"] # libp2p listen multiaddrs
    bootstrap = []                     # peers to dial at start (multiaddrs with /p2p/ID)
    mdns = true                        # find peers on the LAN with mDNS
    allow = ["12D3KooW..."]            # device ids allowed in the mesh (until pairing)

    [[models]]                         # one table per local GGUF model SHORE may run
    name = "llama-3.2-3b"              # the name requests and adverts use
    path = "/models/llama-3.2-3b-q4_k_m.gguf"
    context = 4096                     # context window (tokens)
    threads = 4                        # CPU threads (0: llama.cpp's default)
    gpu_layers = 0                     # layers offloaded to a GPU (-1: all)

    [[cloud]]                          # one table per cloud island HORIZON may call
    name = "openai"                    # letters, digits, . _ - (device id "cloud:openai")
    url = "https://api.openai.com/v1"  # OpenAI-compatible base URL (POST {url}/chat/completions)
    model = "gpt-4o-mini"
    trust = 0.4                        # the owner's trust in the provider (cloud tier 0.3-0.5)
    privacy = 0.4                      # highest sensitivity it may see (after sanitising)
    price_in = 0.15                    # currency per 1M prompt tokens
    price_out = 0.60                   # currency per 1M answer tokens
    api_key_env = "OPENAI_API_KEY"     # the key is read from this variable, never stored
    daily_budget = 1.0                 # spend ceilings (absent: none)
    monthly_budget = 20.0

    [waves]                            # how WAVES ranks eligible islands (node/config_policy.py)
    mode = "weighted"                  # or "constraint"
    [waves.weights]                    # Eq. 1 weights, each in [0, 10]
    cost = 0.3
    latency = 0.3
    trust = 0.3
    energy = 0.3

    [tide]
    buffer = "moderate"                # capacity kept for the owner: "conservative",
                                       # "moderate" or "aggressive" (30/20/10%)

Sections written ``[[name]]`` (arrays of tables, listed in
:data:`_TABLE_ARRAYS`) hold one entry per table; each entry is read with the
same strict rules, and errors point at the entry's own lines.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from islandrun.protocol.errors import DecodeError
from islandrun.protocol.ids import public_key_from_device_id

from .config_lines import line_of
from .config_policy import CHECKS as _POLICY_CHECKS
from .config_policy import TideSection, WavesSection
from .errors import ConfigError
from .home import CONFIG_FILE, ensure_home, write_private

MAX_NAME_LEN = 64
MAX_MODEL_NAME_LEN = 256
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSection:
    #: Human name of this device, shown to paired devices (1-64 characters).
    name: str
    #: Battery charge (a fraction, 0-0.8) at or below which this device, on
    #: battery, serves no requests of friends' and edge devices (personal
    #: devices are always served); its advert says so too. See node/friend_floor.py.
    friend_battery_floor: float = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshSection:
    #: libp2p listen multiaddrs. The default listens on every interface at
    #: port 4001, as a LAN node should; tests and the demo use loopback.
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/4001",)
    #: Peers to dial at start and keep re-dialling (``/ip4/A/tcp/P/p2p/ID``).
    bootstrap: tuple[str, ...] = ()
    #: Announce and discover nodes on the LAN with mDNS.
    mdns: bool = True
    #: Device ids whose adverts and requests are accepted. Pairing adds to
    #: this set; until a device is paired, it can be listed here by hand.
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BleSection:
    """``[ble]``: the Bluetooth LE mesh beside the LAN (node/transports_setup.py)."""

    #: Run the BLE mesh too (``islandnode run --ble``).
    enabled: bool = False
    #: Refuse to start without a working radio (else: warn, run on the LAN only).
    required: bool = False
    #: The radio: "bleak" (the host's adapter: bleak central, bless peripheral),
    #: or "sim:PATH", the shared radio model served at the Unix socket PATH
    #: (tests and demos: ``python -m islandrun.transports.ble_air``).
    adapter: str = "bleak"
    #: This device's radio address (bleak cannot read it portably: see
    #: ``bluetoothctl show``); empty: "local".
    address: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSection:
    """One ``[[models]]`` entry: a GGUF file SHORE may run."""

    #: The name requests ask for and adverts list (1-256 printable characters,
    #: unique among this node's models).
    name: str
    #: Absolute path of the GGUF file (``islandnode models add`` resolves it).
    path: str
    #: Context window in tokens (prompt + answer). Memory grows with it.
    context: int = 2048
    #: CPU threads for generation; 0 lets llama.cpp choose (half the cores).
    threads: int = 0
    #: Layers offloaded to a GPU; 0 runs on the CPU, -1 offloads all of them.
    gpu_layers: int = 0


#: Default trust and privacy of a cloud island: the paper's cloud tier (§III,
#: "Trust = 0.3-0.5"; its examples use 0.4). MIST sanitises everything sent there.
CLOUD_TRUST = 0.4
CLOUD_PRIVACY = 0.4
#: Device ids of cloud islands are this prefix and the cloud's name.
CLOUD_ID_PREFIX = "cloud:"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudSection:
    """One ``[[cloud]]`` entry: a cloud island HORIZON calls over OpenAI-compatible HTTP.

    The API key is never stored: ``api_key_env`` names the environment
    variable that holds it, read when a request is sent.
    """

    #: Name of the island (letters, digits, ``.``, ``_``, ``-``; unique). Its
    #: device id for WAVES and the audit log is ``cloud:NAME``.
    name: str
    #: Base URL of the API (http or https, no credentials or query); requests
    #: go to ``{url}/chat/completions``, e.g. ``https://api.openai.com/v1``.
    url: str
    #: The model name the API expects; requests naming it may route here.
    model: str
    #: The owner's trust in the provider, [0, 1]. Below 1.0, MIST sanitises.
    trust: float = CLOUD_TRUST
    #: Privacy score P, [0, 1]: requests more sensitive than this never go here.
    privacy: float = CLOUD_PRIVACY
    #: Price per 1M prompt (input) tokens, in the user's currency.
    price_in: float = 0.0
    #: Price per 1M answer (output) tokens, in the user's currency.
    price_out: float = 0.0
    #: Environment variable holding the API key (sent as a Bearer token);
    #: empty for servers that need none (a local Ollama or llama.cpp server).
    api_key_env: str = ""
    #: Seconds to wait for the connection and for each piece of the answer.
    timeout: float = 60.0
    #: Spend ceilings per calendar day and month (currency); absent: none.
    daily_budget: float | None = None
    monthly_budget: float | None = None

    @property
    def device_id(self) -> str:
        """The island's id for WAVES, the audit log and the dispatcher."""
        return CLOUD_ID_PREFIX + self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class TierTrust:
    """The owner's scores for one pairing tier (paper section VII, Eq. 2).

    Composite trust is the minimum of the three parts: a device is only as
    trustworthy as its weakest aspect. ``privacy`` is the P that WAVES
    compares with a request's sensitivity (eligible only if P >= it).
    All four are in [0, 1].
    """

    base: float = 1.0
    certification: float = 1.0
    jurisdiction: float = 1.0
    privacy: float = 1.0

    @property
    def trust(self) -> float:
        return min(self.base, self.certification, self.jurisdiction)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustSection:
    """``[trust.personal]``, ``[trust.friend]``, ``[trust.edge]``. Defaults
    follow the paper: personal devices 1.0; friends and private edge 0.6-0.8."""

    personal: TierTrust = field(default_factory=TierTrust)
    friend: TierTrust = field(default_factory=lambda: TierTrust(base=0.7, privacy=0.7))
    edge: TierTrust = field(default_factory=lambda: TierTrust(base=0.8, privacy=0.8))


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    node: NodeSection
    mesh: MeshSection = field(default_factory=MeshSection)
    models: tuple[ModelSection, ...] = ()
    cloud: tuple[CloudSection, ...] = ()
    trust: TrustSection = field(default_factory=TrustSection)
    ble: BleSection = field(default_factory=BleSection)
    #: The owner's routing and capacity preferences (node/config_policy.py).
    waves: WavesSection = field(default_factory=WavesSection)
    tide: TideSection = field(default_factory=TideSection)
    path: Path


_SECTIONS: dict[str, type] = {
    "node": NodeSection, "mesh": MeshSection, "trust": TrustSection, "ble": BleSection,
    "waves": WavesSection, "tide": TideSection,
}
#: Sections written as arrays of tables (``[[name]]``), one entry per table.
_TABLE_ARRAYS: dict[str, type] = {"models": ModelSection, "cloud": CloudSection}


def config_path(home: Path) -> Path:
    return home / CONFIG_FILE


class _Problem(Exception):
    """Raised inside loading; turned into a ConfigError with a location."""

    def __init__(self, key: str, message: str, table: str = "") -> None:
        #: ``table`` is the dotted table holding ``key``; set by :func:`_section`.
        self.key, self.message, self.table = key, message, table


def validate_name(name: object) -> str:
    """A device name: printable, 1-64 characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LEN or not name.isprintable():
        raise ConfigError(f"a device name must be 1-{MAX_NAME_LEN} printable characters")
    return name


def validate_model_name(name: object) -> str:
    """A model name: printable, 1-256 characters."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_MODEL_NAME_LEN
        or not name.isprintable()
    ):
        raise ConfigError(f"a model name must be 1-{MAX_MODEL_NAME_LEN} printable characters")
    return name


def _at_least(low: int) -> typing.Callable[[int], int]:
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return check


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _device_id(value: str) -> str:
    try:
        public_key_from_device_id(value)
    except DecodeError:
        raise ValueError(f"{value[:60]!r} is not a device id (see `islandnode id`)") from None
    return value


_CLOUD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def validate_cloud_name(name: object) -> str:
    """A cloud island name: 1-64 letters, digits, ``.``, ``_`` or ``-``."""
    if not isinstance(name, str) or not _CLOUD_NAME.fullmatch(name):
        raise ConfigError("a cloud name must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def validate_cloud_url(url: object) -> str:
    """An http(s) base URL without credentials, query or fragment (trailing / dropped)."""
    if not isinstance(url, str):
        raise ConfigError("a cloud url must be a string")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise ConfigError("a cloud url must look like https://host[:port]/path") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError("a cloud url must start with http:// or https:// and name a host")
    if parts.username is not None or parts.password is not None or parts.query:
        raise ConfigError("a cloud url must not hold credentials or a query; put the API key "
                          "in an environment variable named by api_key_env")
    if parts.fragment:
        raise ConfigError("a cloud url must not have a #fragment")
    return url.rstrip("/")


def validate_env_name(name: object) -> str:
    """An environment variable name, or empty for none."""
    if not isinstance(name, str) or (name and not _ENV_NAME.fullmatch(name)):
        raise ConfigError("api_key_env must be an environment variable name like OPENAI_API_KEY")
    return name


def _amount(value: float) -> float:
    if value < 0.0:
        raise ValueError("must not be negative")
    return value


def _seconds(value: float) -> float:
    if not 0.0 < value <= MAX_TIMEOUT_S:
        raise ValueError(f"must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")
    return value


#: Extra checks per (section, key), beyond the type.
_CHECKS: dict[tuple[str, str], typing.Callable[[Any], Any]] = {
    ("node", "name"): validate_name,
    ("mesh", "allow"): lambda ids: tuple(_device_id(i) for i in ids),
    ("models", "name"): validate_model_name,
    ("models", "path"): _non_empty,
    ("models", "context"): _at_least(1),
    ("models", "threads"): _at_least(0),
    ("models", "gpu_layers"): _at_least(-1),
    ("cloud", "name"): validate_cloud_name,
    ("cloud", "url"): validate_cloud_url,
    ("cloud", "model"): validate_model_name,
    ("cloud", "price_in"): _amount,
    ("cloud", "price_out"): _amount,
    ("cloud", "api_key_env"): validate_env_name,
    ("cloud", "timeout"): _seconds,
    ("cloud", "daily_budget"): _amount,
    ("cloud", "monthly_budget"): _amount,
}


def _unit_interval(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


_CHECKS.update(
    {
        (f"trust.{tier}", part): _unit_interval
        for tier in ("personal", "friend", "edge")
        for part in ("base", "certification", "jurisdiction", "privacy")
    }
)
_CHECKS.update({("cloud", "trust"): _unit_interval, ("cloud", "privacy"): _unit_interval})


def _battery_floor(value: float) -> float:
    if not 0.0 <= value <= 0.8:
        raise ValueError("must be between 0 and 0.8 (a charge fraction, e.g. 0.3 for 30%)")
    return value


def _ble_adapter(value: str) -> str:
    if value != "bleak" and not (value.startswith("sim:") and len(value) > len("sim:")):
        raise ValueError('must be "bleak" (the host\'s Bluetooth adapter) or "sim:PATH" '
                         "(a shared radio model at the Unix socket PATH)")
    return value


_CHECKS.update({("node", "friend_battery_floor"): _battery_floor, ("ble", "adapter"): _ble_adapter})
_CHECKS.update(_POLICY_CHECKS)


#: What a value of each plain type looks like, for error messages: (words, example).
_EXPECTED: dict[type, tuple[str, str]] = {
    bool: ("true or false", "true"), str: ("a string in quotes", '"text"'),
    int: ("a whole number", "4"),
}


def _convert(hint: Any, value: Any, key: str, section: str = "") -> Any:
    if dataclasses.is_dataclass(hint):
        return _section(f"{section}.{key}", hint, value)
    if typing.get_origin(hint) is types.UnionType:  # ``T | None``: absent from TOML means None
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return _convert(inner, value, key, section)
    if hint is float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _Problem(key, f"[{section}].{key}: expected a number; write e.g. {key} = 0.5")
        return float(value)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Problem(key, f"[{section}].{key}: expected a list of strings; "
                                f'write e.g. {key} = ["..."]')
        return tuple(value)
    if hint in (bool, str, int):
        if type(value) is not hint:  # also refuses true/false where a number belongs
            expected, example = _EXPECTED[hint]
            raise _Problem(key, f"[{section}].{key}: expected {expected}; "
                                f"write e.g. {key} = {example}")
        return value
    raise _Problem(key, f"unsupported type {hint}")  # pragma: no cover - a bug in a section


def _section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        # Keyed by its own name, so the error points at ``key = ...`` in its parent.
        raise _Problem(name.rpartition(".")[2], f"[{name}] must be a table")
    try:
        return _fields(name, cls, table)
    except _Problem as problem:
        problem.table = problem.table or name  # the innermost table names the place
        raise


def _fields(name: str, cls: type, table: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in known:
            raise _Problem(key, f"unknown key [{name}].{key}; remove it (known: {sorted(known)})")
        converted = _convert(hints[key], value, key, name)
        check = _CHECKS.get((name, key))
        if check is not None:
            try:
                converted = check(converted)
            except (ValueError, ConfigError) as exc:
                raise _Problem(key, f"[{name}].{key}: {exc}") from None
        values[key] = converted
    try:
        return cls(**values)
    except TypeError:
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in values
                         and f.default is f.default_factory is dataclasses.MISSING)
        raise _Problem(name, f"[{name}] is missing {', '.join(missing)}; add "
                             f"{' and '.join(f'{k} = ...' for k in missing)} to that table"
                       ) from None


def parse_config(text: str, path: Path) -> NodeConfig:
    """Validate config text; :class:`ConfigError` names file, line and fix."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid_toml(path, exc) from None
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name in _TABLE_ARRAYS:
            sections[name] = _table_array(text, path, name, table)
            continue
        cls = _SECTIONS.get(name)
        try:
            if cls is None:
                raise _Problem(name, f"unknown section [{name}]; remove it")
            sections[name] = _section(name, cls, table)
        except _Problem as problem:
            raise _located(text, path, name, problem) from None
    if "node" not in sections:
        raise ConfigError(f"{path}: missing [node] section with a name; run `islandnode init`")
    return NodeConfig(path=path, **sections)


def _invalid_toml(path: Path, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """tomllib says "... (at line N, column C)"; put the line where editors look for it."""
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    where, what = (f"{path}:{found[1]}", message[: found.start()].strip()) if found else (
        str(path), message)
    return ConfigError(f"{where}: invalid TOML ({what}); fix the syntax there: strings need "
                       'quotes ("text"), lists brackets ([...]), one key = value per line')


def _located(text: str, path: Path, name: str, problem: _Problem, entry: int | None = None
             ) -> ConfigError:
    table = problem.table or name
    line = line_of(text, table, problem.key, entry if table == name else None)
    where = f"{path}:{line}" if line else str(path)
    return ConfigError(f"{where}: {problem.message}")


def _table_array(text: str, path: Path, name: str, tables: Any) -> tuple[Any, ...]:
    """Read ``[[name]]`` entries; names (where entries have one) must be unique."""
    if not isinstance(tables, list):
        raise _located(text, path, name, _Problem(name, f"write {name} as [[{name}]] tables"))
    entries, seen = [], set()
    for i, table in enumerate(tables):
        try:
            entry = _section(name, _TABLE_ARRAYS[name], table)
            if getattr(entry, "name", None) in seen:
                raise _Problem("name", f"[[{name}]] name {entry.name!r} appears twice")
        except _Problem as problem:
            raise _located(text, path, name, problem, i) from None
        seen.add(getattr(entry, "name", None))
        entries.append(entry)
    return tuple(entries)


def load_config(home: Path) -> NodeConfig:
    """Read and validate ``<home>/config.toml``."""
    path = config_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `islandnode init` first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc}); fix or recreate it") from None
    return parse_config(text, path)


def write_initial_config(home: Path, name: str, **mesh: Any) -> Path:
    """Write the config ``islandnode init`` creates (``mesh`` keys optional)."""
    ensure_home(home)
    path = config_path(home)
    data: dict[str, Any] = {"node": {"name": validate_name(name)}}
    if mesh:
        data["mesh"] = {k: list(v) if isinstance(v, tuple) else v for k, v in mesh.items()}
    _write(path, data)
    return path


def _write(path: Path, data: dict[str, Any]) -> NodeConfig:
    text = tomli_w.dumps(data)
    cfg = parse_config(text, path)  # never write a config we would refuse to read
    write_private(path, text.encode())
    return cfg


def update_config(home: Path, change: typing.Callable[[dict[str, Any]], None]) -> NodeConfig:
    """Apply ``change`` to the config's TOML data and write it back, validated.

    The current file must be valid, and so must the result, or nothing is
    written. Comments in the file are not kept (the file is rewritten).
    """
    load_config(home)
    path = config_path(home)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    change(data)
    return _write(path, data)


def remove_entry(home: Path, section: str, name: str, what: str) -> NodeConfig:
    """Drop the ``[[section]]`` entry called ``name`` (``what`` names it for people)."""

    def drop(data: dict[str, Any]) -> None:
        entries = data.get(section, [])
        if not any(e.get("name") == name for e in entries):
            have = ", ".join(str(e.get("name")) for e in entries) or "none"
            raise ConfigError(f"no {what} named {name!r} (configured: {have})")
        data[section] = [e for e in entries if e.get("name") != name]
        if not data[section]:
            del data[section]

    return update_config(home, drop)
