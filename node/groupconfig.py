"""The owner's policy and cloud island definitions, kept alike on every personal device.

What it is. The settings in ``config.toml`` that are the *owner's* word
rather than one device's travel through the personal group state
(``groupstate``) as last-writer-wins ``SET`` registers, one per key:

=========================  =============================================
register key               config.toml
=========================  =============================================
``policy.trust.personal``  ``[trust.personal]`` (base, certification,
``policy.trust.friend``    jurisdiction, privacy: the per-tier trust and
``policy.trust.edge``      privacy scores WAVES routes by)
``policy.waves``           ``[waves]`` with ``[waves.weights]`` (WAVES's
                           weights of Eq. 1, mode, references, failover,
                           tier thresholds: ``config_policy``)
``policy.tide``            ``[tide]`` (TIDE's buffer preset)
``cloud.NAME``             the ``[[cloud]]`` entry called NAME (URL, model,
                           trust, privacy, prices, the *name* of the API key
                           variable, timeout, budgets); JSON ``null`` once
                           it was removed (a tombstone)
=========================  =============================================

Not synced, because they belong to one device: ``[node]`` (its name, its
battery floor for friends), ``[mesh]`` (listen addresses, bootstrap, mDNS,
allow), ``[[models]]`` (files on this disk), ``[ble]`` (this radio). API key
*values* never travel here: a cloud entry names the environment variable that
holds its key (``api_key_env``), and each device reads its own -- unless the
owner opts one key in, which ``groupsecrets`` carries (``secret.cloud.NAME``,
never adopted into ``config.toml``; it also says what that risks). A new
owner-wide setting joins by a row in :data:`POLICY_SECTIONS`.

How edits meet (:func:`plan`, pure). Each device remembers, in
``<home>/groupconfig.json`` (digests only, mode 0600), the synced view its
config had when it last agreed with the group: its *baseline*. Each round:

1. a key whose local value differs from the baseline was edited here (the
   CLI, an editor, while the node ran or not): it is **published** as a SET;
2. a register whose value differs from the local one, and was not just
   edited here, is **adopted**: written to ``config.toml`` through
   :func:`~islandrun.node.config.update_config`, so the typed loader
   validates it; a value it refuses is logged with its key and left alone;
3. the baseline becomes the resulting local view.

A key missing from the baseline (a new device, a new cloud) is adopted
where the group has it, and published where the group lacks it and it
differs from the default: a device joining the group takes the group's
settings and contributes only what the group lacks.
Two devices editing the same key while apart: the later edit (by hybrid
logical clock) wins on both, as for every register.

What it is not: no merging (``groupstate``), no network (``groupsync``), no
clock (time comes in), and it does not touch a running node: the caller
applies the config it returns (``groupnode``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import NodeConfig, config_path, load_config, update_config
from .errors import ConfigError
from .groupstate import GroupState
from .home import write_private

log = logging.getLogger("islandrun.group")

BASELINE_FILE = "groupconfig.json"
CLOUD_PREFIX = "cloud."
#: Register key -> the path of its table in the config (section, then table
#: inside it, if any) for the synced policy.
POLICY_SECTIONS: dict[str, tuple[str, ...]] = {
    **{f"policy.trust.{tier}": ("trust", tier) for tier in ("personal", "friend", "edge")},
    "policy.waves": ("waves",),
    "policy.tide": ("tide",),
}

Values = dict[str, Any]


def _policy(section_of: Callable[[str], Any]) -> Values:
    return {key: dataclasses.asdict(functools.reduce(getattr, rest, section_of(section)))
            for key, (section, *rest) in POLICY_SECTIONS.items()}


def view(cfg: NodeConfig) -> Values:
    """The synced part of ``cfg``: register key -> JSON-ready value."""
    out = _policy(lambda section: getattr(cfg, section))
    for cloud in cfg.cloud:
        entry = dataclasses.asdict(cloud)
        out[CLOUD_PREFIX + cloud.name] = {k: v for k, v in entry.items() if v is not None}
    return out


_FACTORIES = {f.name: f.default_factory for f in dataclasses.fields(NodeConfig)}
#: The synced values of a config that sets none of them.
_DEFAULTS: Values = _policy(lambda section: _FACTORIES[section]())  # type: ignore[misc]


def is_synced(key: str) -> bool:
    return key in POLICY_SECTIONS or (key.startswith(CLOUD_PREFIX) and len(key) > len(CLOUD_PREFIX))


def digest(value: Any) -> str:
    """A short fingerprint of a JSON-ready value (what the baseline keeps)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Plan:
    #: Edited here since the baseline: key -> value to SET (None: removed).
    publish: Values
    #: Set elsewhere and different here: key -> value to write to config.toml.
    adopt: Values


def plan(
    local: Mapping[str, Any],
    baseline: Mapping[str, str],
    synced: Mapping[str, Any],
    refused: Mapping[str, str] | None = None,
) -> Plan:
    """What to publish and what to adopt (see the module docstring).

    ``synced`` is the group's registers; ``refused`` maps a key to the
    digest of the value this device last refused for it, not to be tried again.
    """
    refused = refused or {}
    publish: Values = {}
    for key in sorted(k for k in local.keys() | baseline.keys() if is_synced(k)):
        mine = digest(local.get(key))
        group = digest(synced.get(key, _DEFAULTS.get(key)))
        # Never agreed on: not an edit if the group has it (take the group's), else
        # an edit if it differs from the default.
        before = baseline.get(key, mine if key in synced else digest(_DEFAULTS.get(key)))
        if mine != before and mine != group:
            publish[key] = local.get(key)
    adopt = {
        key: value for key, value in sorted(synced.items())
        if is_synced(key) and key not in publish
        and digest(value) != digest(local.get(key))
        and refused.get(key) != digest(value)
    }
    return Plan(publish, adopt)


def adopt_setting(home: Path, key: str, value: Any) -> NodeConfig:
    """Write one synced setting into ``config.toml``; :class:`ConfigError` if refused."""
    return update_config(home, _change(key, value))


def _change(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def policy(data: dict[str, Any]) -> None:
        *parents, table = POLICY_SECTIONS[key]
        if not isinstance(value, dict):
            raise ConfigError(f"[{'.'.join(POLICY_SECTIONS[key])}] must be a table")
        for name in parents:
            data = data.setdefault(name, {})
        data[table] = value

    def cloud(data: dict[str, Any]) -> None:
        name = key[len(CLOUD_PREFIX):]
        if value is not None and (not isinstance(value, dict) or value.get("name") != name):
            raise ConfigError(f"a [[cloud]] entry synced as {key!r} must be a table named {name!r}")
        entries = data.get("cloud", [])
        names = [e.get("name") for e in entries]
        place = names.index(name) if name in names else len(entries)
        kept = [e for e in entries if e.get("name") != name]
        if value is not None:
            kept.insert(place, value)  # an edited entry stays where it was
        data["cloud"] = kept
        if not kept:
            del data["cloud"]

    return policy if key in POLICY_SECTIONS else cloud


class ConfigSync:
    """One device's side: its baseline file and the values it refused."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._baseline: dict[str, str] | None = None
        #: Key -> digest of the synced value refused last (one per key: bounded).
        self._refused: dict[str, str] = {}
        #: The config as last parsed, and the file it was parsed from (inode, mtime, size).
        self._cfg: NodeConfig | None = None
        self._stamp: tuple[int, int, int] | None = None

    def round(self, state: GroupState, now_ms: int) -> tuple[int, NodeConfig | None]:
        """Publish local edits into ``state`` and adopt the group's; how many
        ops were made, and the config if its synced part changed here."""
        cfg = self._load()
        if cfg is None:
            return 0, None
        baseline = self._load_baseline()
        local = view(cfg)
        todo = plan(local, baseline, state.registers(), self._refused)
        for key, value in todo.publish.items():
            state.set_register(key, value, now_ms)
            log.info("synced setting %s published to the personal group", key)
        changed = bool(todo.publish)
        for key, value in todo.adopt.items():
            try:
                cfg = adopt_setting(self.home, key, value)
            except ConfigError as exc:
                self._refused[key] = digest(value)
                log.warning("synced setting %s refused: %s", key, exc)
                continue
            changed = True
            log.info("synced setting %s adopted from the personal group", key)
        self._save_baseline({k: digest(v) for k, v in view(cfg).items()})
        return len(todo.publish), cfg if changed else None

    def _load(self) -> NodeConfig | None:
        """The config, parsed again only when its file changed: a round runs every
        second on the event loop, and the file rarely changes."""
        try:
            st = config_path(self.home).stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None  # no file yet: the defaults, read each round
        if stamp is not None and stamp == self._stamp:
            return self._cfg
        self._stamp = stamp
        try:
            self._cfg = load_config(self.home)
        except ConfigError as exc:  # the owner is editing it; said once per edit
            log.warning("config not synced until it is valid again: %s", exc)
            self._cfg = None
        return self._cfg

    def _load_baseline(self) -> dict[str, str]:
        if self._baseline is None:
            try:
                raw = json.loads((self.home / BASELINE_FILE).read_text(encoding="utf-8"))
                self._baseline = {str(k): str(v) for k, v in raw.items()}
            except (OSError, ValueError, AttributeError):  # none yet, or damaged: the defaults
                self._baseline = {}
        return self._baseline

    def _save_baseline(self, baseline: dict[str, str]) -> None:
        if baseline != self._baseline:
            write_private(self.home / BASELINE_FILE, json.dumps(baseline, sort_keys=True).encode())
            self._baseline = baseline
