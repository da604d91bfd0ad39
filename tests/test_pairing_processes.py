"""Pairing between real `islandnode run` processes, through the CLI (issue 6)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from islandrun.node.pairing import WORDS, parse_code
from islandrun.protocol.ids import device_id_from_public_key
from tests.mesh_procs import ISLANDNODE, NodeProc, ask, wait_until

pytestmark = pytest.mark.slow


def cli(node: NodeProc, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ISLANDNODE, "--home", str(node.home), *args],
                          capture_output=True, text=True, timeout=timeout)


@contextmanager
def strangers(root: Path, *names: str) -> Iterator[list[NodeProc]]:
    """Nodes that know nothing of each other (empty allowlists)."""
    nodes = [NodeProc(root, n) for n in names]
    try:
        for n in nodes:
            n.configure([])
            n.start()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def invite(node: NodeProc, *args: str) -> dict:
    out = cli(node, "pair", "invite", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def paired(node: NodeProc) -> dict[str, dict]:
    out = cli(node, "pair", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {r["device_id"]: r for r in json.loads(out.stdout)}


def test_pairing_by_code_then_requests_flow(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "phone") as (laptop, phone):
        # Before pairing the phone cannot use the laptop.
        assert laptop.device_id not in phone.peers()
        code = invite(laptop, "--tier", "friend")["code"]
        out = cli(phone, "pair", "join", code)
        assert out.returncode == 0, out.stderr
        assert "paired with laptop" in out.stdout and "friend" in out.stdout
        assert paired(laptop)[phone.device_id]["tier"] == "friend"
        assert paired(phone)[laptop.device_id]["tier"] == "friend"
        assert paired(phone)[laptop.device_id]["trust"] == pytest.approx(0.7)
        wait_until(lambda: phone.peers().get(laptop.device_id) == "alive", 20, "adverts")
        answer = ask(phone, "hello friend", "--peer", laptop.device_id)
        assert answer.returncode == 0 and answer.stdout.strip() == "hello friend"


def test_qr_png_round_trip(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "phone") as (laptop, phone):
        png = tmp_path / "invite.png"
        out = cli(laptop, "pair", "invite", "--png", str(png))
        assert out.returncode == 0, out.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        out = cli(phone, "pair", "join", "--png", str(png))
        assert out.returncode == 0, out.stderr
        assert paired(phone)[laptop.device_id]["tier"] == "personal"


def test_wrong_expired_reused_and_malformed_codes_change_nothing(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "phone") as (laptop, phone):
        good = invite(laptop)["code"]
        parsed = parse_code(good)
        wrong = type(parsed)(**{**{f: getattr(parsed, f) for f in parsed.__slots__},
                                "secret": bytes(16)}).code()
        out = cli(phone, "pair", "join", wrong)
        assert out.returncode == 1 and "wrong code" in out.stderr
        out = cli(phone, "pair", "join", good[:-5])
        assert out.returncode == 1 and "damaged" in out.stderr
        assert paired(phone) == {} and paired(laptop) == {}
        short_lived = invite(laptop, "--expires", "1s")["code"]
        time.sleep(1.5)
        out = cli(phone, "pair", "join", short_lived)
        assert out.returncode == 1 and "expired" in out.stderr
        assert cli(phone, "pair", "join", good).returncode == 0  # still good after a wrong try
        out = cli(phone, "pair", "join", good)
        assert out.returncode == 1 and "already used" in out.stderr
        assert "Traceback" not in out.stderr


def test_key_substitution_aborts(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "phone") as (laptop, phone):
        parsed = parse_code(invite(laptop)["code"])
        mallory = device_id_from_public_key(bytes(SigningKey.generate().verify_key))
        # The invite names Mallory's key, but the address leads to the laptop
        # (or the other way round: an attacker answering for the laptop).
        forged = type(parsed)(**{**{f: getattr(parsed, f) for f in parsed.__slots__},
                                 "device_id": mallory}).code()
        address = parsed.addresses[0].rsplit("/p2p/", 1)[0]
        out = cli(phone, "pair", "join", forged)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "man-in-the-middle" in out.stderr and "nothing was stored" in out.stderr
        assert paired(phone) == {} and paired(laptop) == {}
        out = cli(phone, "pair", "join", "--short", f"{mallory[-4:]}-saddle-baker-dance",
                  "--address", f"{address}/p2p/{mallory}")
        assert out.returncode == 1 and paired(phone) == {}


def test_short_code_with_spake2(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "watch") as (laptop, watch):
        result = invite(laptop, "--short")
        address = parse_code(result["code"]).addresses[0]
        short = result["short_code"]
        nameplate = short.split("-")[0]
        words = [w for w in WORDS[:2] if not short.endswith(f"{w}-{w}-{w}")]
        wrong = f"{nameplate}-{words[0]}-{words[0]}-{words[0]}"
        out = cli(watch, "pair", "join", "--short", wrong, "--address", address)
        assert out.returncode == 1 and "wrong code" in out.stderr
        out = cli(watch, "pair", "join", "--short", short, "--address", address)
        assert out.returncode == 0, out.stderr
        assert paired(laptop)[watch.device_id]["via"] == "code"


def test_revocation_takes_effect_at_once_and_reaches_personal_devices(tmp_path: Path) -> None:
    with strangers(tmp_path, "laptop", "phone", "tablet") as (laptop, phone, tablet):
        for other in (phone, tablet):
            out = cli(other, "pair", "join", invite(laptop)["code"])
            assert out.returncode == 0, out.stderr
        # The laptop introduced phone and tablet to each other (both personal).
        wait_until(lambda: tablet.device_id in paired(phone), 20, "introduction")
        assert paired(phone)[tablet.device_id]["via"].startswith("introduced by laptop")
        wait_until(lambda: phone.peers().get(tablet.device_id) == "alive", 20, "adverts")
        assert ask(tablet, "ping", "--peer", phone.device_id).returncode == 0
        out = cli(laptop, "pair", "revoke", "tablet")
        assert out.returncode == 0, out.stderr
        assert paired(laptop)[tablet.device_id]["revoked_at"] is not None
        # The phone hears of it from the laptop and refuses the tablet's requests.
        wait_until(lambda: paired(phone)[tablet.device_id]["revoked_at"], 10, "revocation")
        refused = ask(tablet, "ping", "--peer", phone.device_id)
        assert refused.returncode == 1
        assert tablet.device_id not in phone.peers()
