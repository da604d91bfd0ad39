"""``islandnode doctor``: checks this device's setup and says what to fix.

Each check looks at one thing and returns :class:`Check` results (ok, warn
or fail, with the fix for anything not ok):

* **home** -- the node home exists and only its owner can enter it;
* **key** -- ``device.key`` (and the other private files) are mode 0600 and
  the key loads;
* **config** -- ``config.toml`` parses and validates (errors carry file, line, fix);
* **models** -- every ``[[models]]`` file exists and is GGUF;
* **ports** -- the libp2p listen ports and the API port are free (unless
  this home's node is the one holding them);
* **mdns** -- zeroconf can bind its multicast socket on the interfaces;
* **bluetooth** -- bleak finds a usable adapter. No Bluetooth is a warning,
  not a failure, since the node runs without it -- unless ``[ble] required``
  is set, because then ``run`` refuses to start.

The exit code is 1 if any check failed, else 0 (warnings included).
What this is not: it changes nothing (every fix is a command or an edit for
the user) and it does not test other devices (``islandnode status`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from islandrun.protocol.errors import IslandRunError

from . import control, identity
from .config import NodeConfig, load_config
from .errors import NodeNotRunning
from .home import resolve_home
from .model_files import model_file_errors

#: Files in the home that must be readable by the owner only.
PRIVATE_FILES = ("device.key", "pairings.json", "api.token", "audit.jsonl", "spend.json", "seq")
#: Seconds to wait for the Bluetooth stack to answer.
BLUETOOTH_TIMEOUT = 5.0


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One finding: what was checked, how it went, and the fix if not ok."""

    name: str
    level: Level
    detail: str
    fix: str = ""


def _ok(name: str, detail: str) -> Check:
    return Check(name=name, level=Level.OK, detail=detail)


def check_home(home: Path) -> list[Check]:
    if not home.is_dir():
        return [Check(name="home", level=Level.FAIL, detail=f"{home} does not exist",
                      fix=f"islandnode --home {home} init --name NAME")]
    if stat.S_IMODE(home.stat().st_mode) & 0o077:
        return [Check(name="home", level=Level.WARN, detail=f"{home} is open to other users",
                      fix=f"chmod 700 {home}")]
    return [_ok("home", str(home))]


def check_private_files(home: Path) -> list[Check]:
    found = []
    for name in PRIVATE_FILES:
        path = home / name
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            found.append(Check(name="permissions", level=Level.FAIL,
                               detail=f"{path} is readable or writable by other users",
                               fix=f"chmod 600 {path}"))
    try:
        identity.load_key(home)
    except IslandRunError as exc:
        found.append(Check(name="key", level=Level.FAIL, detail=str(exc),
                           fix=f"restore device.key from a backup, or `islandnode --home {home} "
                               "init` in a new home (and pair again)"))
    else:
        found.append(_ok("key", "device.key is private and loads"))
    return found


def check_models(cfg: NodeConfig) -> list[Check]:
    errors = model_file_errors(cfg)
    if errors:
        return [Check(name="models", level=Level.FAIL, detail=str(e),
                      fix="islandnode models add PATH (a .gguf file), or models remove NAME")
                for e in errors]
    if not cfg.models:
        return [_ok("models", "none configured: the echo executor answers here "
                              "(`islandnode models add PATH` or `models add-demo`)")]
    return [_ok("models", ", ".join(m.name for m in cfg.models) + ": GGUF files present")]


def _tcp_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``/ip4|ip6/H/tcp/P`` multiaddr; None for port 0 or others."""
    parts = address.strip("/").split("/")
    if len(parts) >= 4 and parts[0] in ("ip4", "ip6") and parts[2] == "tcp" and parts[3].isdigit():
        port = int(parts[3])
        return (parts[1], port) if port else None
    return None


def _port_free(host: str, port: int) -> str | None:
    """None if ``host:port`` can be bound now, else why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def check_ports(home: Path, cfg: NodeConfig, api: str) -> list[Check]:
    try:
        control.get(home, "/status", timeout=2)
    except NodeNotRunning:
        pass
    except IslandRunError:
        pass  # something answers but not properly: check the ports anyway
    else:
        return [_ok("ports", "this home's node is running and holds its ports")]
    wanted = [(a, _tcp_port(a), "change [mesh].listen or pass --listen") for a in cfg.mesh.listen]
    if api != "off":
        host, _, port = api.rpartition(":")
        if port.isdigit() and int(port):
            wanted.append((f"API {api}", (host.strip("[]"), int(port)), "pass run --api HOST:PORT"))
    found = []
    for label, target, fix in wanted:
        if target is None:
            continue
        why = _port_free(*target)
        found.append(_ok("ports", f"{label} is free") if why is None else Check(
            name="ports", level=Level.FAIL, detail=f"{label}: cannot bind ({why})",
            fix=f"stop what uses port {target[1]}, or {fix}"))
    return found or [_ok("ports", "no fixed ports configured")]


def check_mdns(cfg: NodeConfig) -> list[Check]:
    if not cfg.mesh.mdns:
        return [_ok("mdns", "off in [mesh].mdns (peers come from --bootstrap or pairing)")]
    from zeroconf import InterfaceChoice, IPVersion, Zeroconf

    try:
        Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only).close()
    except Exception as exc:  # zeroconf raises OSError and its own errors alike
        return [Check(name="mdns", level=Level.WARN,
                      detail=f"zeroconf cannot bind multicast ({type(exc).__name__}: {exc})",
                      fix="allow UDP 5353 multicast on this network, or set mdns = false "
                          "and connect with --bootstrap /ip4/A/tcp/P/p2p/ID")]
    return [_ok("mdns", "zeroconf can bind on this machine's interfaces")]


async def _scan_briefly() -> None:
    from bleak import BleakScanner

    scanner = BleakScanner()
    await scanner.start()
    await scanner.stop()


def check_bluetooth(scan: Callable[[], Awaitable[None]] = _scan_briefly) -> list[Check]:
    """``scan`` is bleak's (a test passes one that fails like a machine without a radio)."""
    try:
        asyncio.run(asyncio.wait_for(scan(), BLUETOOTH_TIMEOUT))
    except Exception as exc:  # bleak raises BleakError, OSError, D-Bus errors, timeouts
        return [Check(name="bluetooth", level=Level.WARN,
                      detail=f"no usable Bluetooth adapter ({type(exc).__name__}: {exc})",
                      fix="optional: BLE links need an adapter (and BlueZ on Linux); "
                          "LAN and internet links work without one")]
    return [_ok("bluetooth", "bleak found an adapter")]


def diagnose(home: Path, api: str, bluetooth: Callable[[], list[Check]] = check_bluetooth
             ) -> list[Check]:
    """Every check, in order; config-dependent ones only when the config loads."""
    checks = check_home(home)
    if checks[0].level is Level.FAIL:
        return checks
    checks += check_private_files(home)
    try:
        cfg = load_config(home)
    except IslandRunError as exc:
        checks.append(Check(name="config", level=Level.FAIL, detail=str(exc),
                            fix="edit the file at that line as the message says"))
        return checks + bluetooth()
    checks.append(_ok("config", f"{cfg.path} is valid"))
    checks += check_models(cfg) + check_ports(home, cfg, api) + check_mdns(cfg)
    return checks + [_required(c) if cfg.ble.required else c for c in bluetooth()]


def _required(check: Check) -> Check:
    """With ``[ble] required = true`` the node refuses to start without a radio."""
    if check.level is Level.OK:
        return check
    return Check(name=check.name, level=Level.FAIL, detail=check.detail,
                 fix="attach a Bluetooth adapter, or set [ble] required = false")


_STYLE = {Level.OK: "[green]ok[/green]  ", Level.WARN: "[yellow]warn[/yellow]",
          Level.FAIL: "[red]FAIL[/red]"}


def run(args: argparse.Namespace) -> int:
    checks = diagnose(resolve_home(args.home), args.api,
                      bluetooth=(lambda: []) if args.no_bluetooth else check_bluetooth)
    failed = any(c.level is Level.FAIL for c in checks)
    if args.json:
        print(json.dumps([asdict(c) | {"level": c.level.value} for c in checks], indent=2))
        return int(failed)
    console = Console(highlight=False)
    for c in checks:
        console.print(f"{_STYLE[c.level]} {c.name:<11} {escape(c.detail)}")
        if c.fix:
            console.print(f"       {'':<11} fix: {escape(c.fix)}")
    console.print("[red]something is broken; fix the FAIL lines above[/red]" if failed
                  else "[green]this node is ready[/green]")
    return int(failed)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor", help="check this device's setup and say what to fix",
        description="Checks the node home, key permissions, config, model files, ports, mDNS "
                    "and Bluetooth; exits 1 if something is broken.",
    )
    p.add_argument("--api", default="127.0.0.1:4080", metavar="HOST:PORT",
                   help="the API address `run` will use (default 127.0.0.1:4080; 'off')")
    p.add_argument("--no-bluetooth", action="store_true", help="skip the Bluetooth check")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run)
