"""``islandnode pair``: invite, join, list and revoke paired devices.

Every subcommand talks to the running node (pairing needs its network
identity and its listening addresses); see ``node/pairing.py`` for the
protocol and its security argument.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from pathlib import Path

import segno
from rich.console import Console
from rich.table import Table

from islandrun.protocol.ids import short_id

from . import control
from .home import resolve_home
from .pairing import GUESS_CHANCE, MAX_FAILURES, PairingError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 10m or 1h")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def read_qr(path: Path) -> str:
    """The text of the first QR code in an image file."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            results = zxingcpp.read_barcodes(image.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise PairingError(f"cannot read {path}: {exc}") from None
    if not results:
        raise PairingError(f"no QR code found in {path}")
    return results[0].text


def cmd_invite(args: argparse.Namespace) -> int:
    body = {"tier": args.tier, "expires": args.expires, "short": args.short}
    result = control.post(resolve_home(args.home), "/pair/invite", body)
    if args.png:
        segno.make(result["code"], error="m").save(args.png, scale=6, border=4)
    if args.json:
        print(json.dumps(result))
        return 0
    expires = datetime.datetime.fromtimestamp(result["expires"]).strftime("%H:%M:%S")
    if not args.no_qr:
        segno.make(result["code"], error="m").terminal(compact=True)
    print(f"\nInvite as {args.tier}, single use, valid until {expires}. On the other device run:")
    print(f"  islandnode pair join {result['code']}")
    if args.png:
        print(f"  (or: islandnode pair join --png {args.png})")
    if "short_code" in result:
        print(f"  or, without a camera: islandnode pair join --short {result['short_code']}")
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    code = read_qr(args.png) if args.png else args.code
    body = {"code": code, "short": args.short, "address": args.address}
    result = control.post(resolve_home(args.home), "/pair/join", body, timeout=60)
    print(f"paired with {result['name']} ({short_id(result['device_id'])}) as {result['tier']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    records = control.get(resolve_home(args.home), "/pair/list")
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    table = Table("device", "id", "tier", "trust", "privacy", "via", "state")
    for r in records:
        state = "revoked" if r["revoked_at"] else "active"
        table.add_row(r["name"], short_id(r["device_id"]), r["tier"], f"{r['trust']:.2f}",
                      f"{r['privacy']:.2f}", r["via"], state)
    Console().print(table if records else "no paired devices yet (see `islandnode pair invite`)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    result = control.post(resolve_home(args.home), "/pair/revoke", {"device": args.device})
    print(f"revoked {result['name']} ({short_id(result['device_id'])}); its adverts and "
          "requests are refused from now on, and your other personal devices are told")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    pair = subparsers.add_parser("pair", help="pair devices by QR code or short code; list, revoke")
    sub = pair.add_subparsers(title="pair commands", metavar="ACTION", required=True)

    p = sub.add_parser("invite", help="show a one-time invite (QR code and text)")
    p.add_argument("--tier", choices=("personal", "friend", "edge"), default="personal",
                   help="how far the joining device will be trusted (default: personal)")
    p.add_argument("--expires", type=parse_duration, default=600.0, metavar="DURATION",
                   help="lifetime, e.g. 10m (default), 30s, 1h")
    p.add_argument("--png", type=Path, metavar="FILE", help="also save the QR code as a PNG")
    p.add_argument(
        "--short", action="store_true",
        help=f"also make a short code (NAME-word-word-word) for devices without a camera; it is "
             f"protected by SPAKE2, so each online guess has a 1 in {round(1 / GUESS_CHANCE):,} "
             f"chance, and the code is burned after {MAX_FAILURES} wrong tries",
    )
    p.add_argument("--json", action="store_true", help='print {"code", "expires"} only')
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p.set_defaults(func=cmd_invite)

    p = sub.add_parser("join", help="join with an invite code, a QR image or a short code")
    p.add_argument("code", nargs="?", help="the IR1-... invite code")
    p.add_argument("--png", type=Path, metavar="FILE", help="read the invite from a QR image")
    p.add_argument("--short", metavar="CODE",
                   help="a short code NAME-word-word-word (1 in 16,777,216 per guess)")
    p.add_argument("--address", metavar="MULTIADDR",
                   help="where the inviting node listens, /ip4/A/tcp/P/p2p/ID (short codes "
                        "find it with mDNS otherwise)")
    p.set_defaults(func=cmd_join)

    p = sub.add_parser("list", help="list paired devices with tier and scores")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("revoke", help="revoke a paired device (by name or id), at once")
    p.add_argument("device")
    p.set_defaults(func=cmd_revoke)


