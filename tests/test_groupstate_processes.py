"""The personal group state between real `islandnode run` processes (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from islandrun.node import api
from islandrun.node.demo_cloud import read_record
from islandrun.node.groupstate_budget import overshoot_bound
from islandrun.node.groupstate_store import load_state
from tests.mesh_procs import ISLANDNODE, NodeProc, ask, wait_until
from tests.test_pairing_processes import cli, invite, paired
from tests.test_transport_libp2p import free_port

pytestmark = pytest.mark.slow


def address(node: NodeProc) -> str:
    return f"{node.listen}/p2p/{node.device_id}"


@contextmanager
def group(
    root: Path, *names: str, friend: bool = False, setup: Callable[[NodeProc], None] | None = None,
    run_args: tuple[str, ...] = (),
) -> Iterator[list[NodeProc]]:
    """Personal devices paired with the first (which introduces them to each
    other), on fixed ports so they can restart; with ``friend``, one more
    device paired with the first as a friend. ``setup`` runs before each starts."""
    nodes = [NodeProc(root, n) for n in (*names, *(["friend"] if friend else []))]
    try:
        for n in nodes:
            n.listen = f"/ip4/127.0.0.1/tcp/{free_port()}"  # type: ignore[attr-defined]
            n.configure([], listen=n.listen)  # type: ignore[attr-defined]
            if setup is not None:
                setup(n)
            n.start(*run_args)
        hub = nodes[0]
        for n in nodes[1:]:
            tier = "friend" if n.name == "friend" else "personal"
            out = cli(n, "pair", "join", invite(hub, "--tier", tier)["code"])
            assert out.returncode == 0, out.stderr
        personal = [n for n in nodes if n.name != "friend"]
        for n in personal:
            wait_until(lambda n=n: len([r for r in paired(n).values()
                                        if r["tier"] == "personal"]) == len(personal) - 1,
                       30, f"{n.name} to know every personal device")
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def chat(node: NodeProc, conversation: str, *lines: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [ISLANDNODE, "--home", str(node.home), "chat", "--conversation", conversation],
        input="".join(f"{x}\n" for x in lines), capture_output=True, text=True, timeout=60,
    )
    return out


def messages(node: NodeProc, conversation: str) -> list[tuple[str, str]]:
    out = cli(node, "conversations", "show", conversation, "--json")
    if out.returncode != 0:
        return []
    return [(x["role"], x["content"]) for x in json.loads(out.stdout)["messages"]]


def listed(node: NodeProc) -> dict[str, int]:
    out = cli(node, "conversations", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {row["id"]: row["turns"] for row in json.loads(out.stdout)}


def api_turn(node: NodeProc, conversation: str, text: str) -> dict:
    """One new turn through the node's OpenAI-compatible API (history not sent)."""
    body = {"model": "auto", "messages": [{"role": "user", "content": text}],
            "islandrun": {"conversation": conversation, "tier": "primary"}}
    reply = httpx.post(f"{node.status()['api']}/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {api.load_token(node.home)}"})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_a_conversation_continues_on_another_device_a_friend_gets_none_and_forget_spreads(
    tmp_path: Path,
) -> None:
    with group(tmp_path, "laptop", "phone", "tablet", friend=True) as nodes:
        laptop, phone, tablet, friend = nodes
        out = chat(laptop, "trip", "Maria Gonzalez needs her insulin in Lisbon")
        assert out.returncode == 0, out.stderr
        wait_until(lambda: listed(phone).get("trip") == 2, 30, "the phone to have the turn")
        # The phone continues it, sending only the new turn: the prompt holds the history.
        answer = api_turn(phone, "trip", "and a pharmacy near the hotel")
        assert answer["choices"][0]["message"]["content"] == "and a pharmacy near the hotel"
        history_words = 2 * len("Maria Gonzalez needs her insulin in Lisbon".split())
        assert answer["usage"]["prompt_tokens"] == history_words + 6
        wait_until(lambda: len(messages(tablet, "trip")) == 4, 30, "the tablet to have it all")
        assert messages(tablet, "trip") == messages(laptop, "trip") == [
            ("user", "Maria Gonzalez needs her insulin in Lisbon"),
            ("assistant", "Maria Gonzalez needs her insulin in Lisbon"),
            ("user", "and a pharmacy near the hotel"),
            ("assistant", "and a pharmacy near the hotel"),
        ]
        # The friend: nothing on its disk, nothing in its replica.
        assert listed(friend) == {}
        for path in friend.home.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert b"Maria" not in data and b"insulin" not in data and b"trip" not in data
        assert len(load_state(friend.home, friend.device_id, friend.key)) == 0
        # At rest on a member: encrypted.
        stored = laptop.home / "groupstate.bin"
        assert b"insulin" not in stored.read_bytes() and stored.stat().st_mode & 0o77 == 0
        # Forget on one device: gone everywhere, and the id cannot be reused.
        out = cli(tablet, "conversations", "forget", "trip")
        assert out.returncode == 0, out.stderr
        for n in (laptop, phone, tablet):
            wait_until(lambda n=n: "trip" not in listed(n), 30, f"{n.name} to forget")
        out = chat(laptop, "trip", "hello again")
        assert out.returncode == 1 and "forgotten" in out.stderr
        assert "Traceback" not in out.stderr
        # Through the API: the caller's mistake (409), not an island failure (502).
        reply = httpx.post(
            f"{laptop.status()['api']}/v1/chat/completions",
            headers={"authorization": f"Bearer {api.load_token(laptop.home)}"},
            json={"model": "echo", "messages": [{"role": "user", "content": "hi"}],
                  "islandrun": {"conversation": "trip"}},
            timeout=10,
        )
        assert reply.status_code == 409 and "forgotten" in reply.json()["error"]["message"]


def test_concurrent_offline_edits_on_two_devices_both_survive(tmp_path: Path) -> None:
    with group(tmp_path, "laptop", "phone", "tablet") as (laptop, phone, tablet):
        assert chat(laptop, "plan", "start").returncode == 0
        for n in (phone, tablet):
            wait_until(lambda n=n: listed(n).get("plan") == 2, 30, f"{n.name} to sync")
        phone.stop()
        assert chat(laptop, "plan", "edit made on the laptop").returncode == 0
        laptop.stop()
        tablet.stop()
        phone.start()  # alone: it cannot see the laptop's edit
        assert chat(phone, "plan", "edit made on the phone").returncode == 0
        assert ("user", "edit made on the laptop") not in messages(phone, "plan")
        laptop.start("--bootstrap", address(phone))
        tablet.start("--bootstrap", address(phone))
        for n in (laptop, phone, tablet):
            wait_until(lambda n=n: listed(n).get("plan") == 6, 40, f"{n.name} to converge")
        assert messages(laptop, "plan") == messages(phone, "plan") == messages(tablet, "plan")
        users = [text for role, text in messages(tablet, "plan") if role == "user"]
        assert users[0] == "start"
        assert set(users[1:]) == {"edit made on the laptop", "edit made on the phone"}


CEILING, COST = 6.0, 1.0  # each cloud request costs 1000 prompt tokens x 1000/1M = 1.0
BUSY = ("--fixed-load", "0.99")  # every device busy: WAVES sends work to the cloud


def headers_record(record: Path) -> Path:
    """Where :func:`fake_cloud` records the headers of the requests in ``record``."""
    return record.with_name("cloud-headers.jsonl")


@contextmanager
def fake_cloud(root: Path) -> Iterator[tuple[str, Path]]:
    record, ready = root / "cloud.jsonl", root / "cloud.url"
    proc = subprocess.Popen([sys.executable, "-m", "islandrun.node.demo_cloud",
                             "--record", str(record), "--ready", str(ready),
                             "--record-headers", str(headers_record(record))])
    try:
        url = wait_until(lambda: ready.exists() and ready.read_text(), 30, "the fake cloud")
        yield url, record
    finally:
        proc.terminate()
        proc.wait(10)


def spend_until_refused(node: NodeProc, attempts: int = 8) -> int:
    """Cloud requests ``node`` makes before its first refusal."""
    for made in range(attempts):
        out = ask(node, "a question for the cloud", "--tier", "burstable")
        if out.returncode != 0:
            return made
    return attempts


def test_partitioned_spending_stays_within_the_documented_bound(tmp_path: Path) -> None:
    with fake_cloud(tmp_path) as (url, record):
        def with_cloud(node: NodeProc) -> None:
            out = cli(node, "cloud", "add", "paid", "--url", url, "--model", "m",
                      "--price-in", "1000", "--daily-budget", str(CEILING))
            assert out.returncode == 0, out.stderr

        with group(tmp_path, "laptop", "phone", "tablet", setup=with_cloud,
                   run_args=BUSY) as (laptop, phone, tablet):
            # Partition: the laptop alone, then the phone alone (it never saw the laptop's).
            phone.stop()
            tablet.stop()
            allowance_requests = 1  # the allowance is 10% of 6.0: one request of 1.0
            assert spend_until_refused(laptop) == allowance_requests
            laptop.stop()
            phone.start(*BUSY)
            assert spend_until_refused(phone) == allowance_requests
            # Heal, then spend from all three until the group's ceiling stops them.
            laptop.start("--bootstrap", address(phone), *BUSY)
            tablet.start("--bootstrap", address(phone), *BUSY)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                made = sum(spend_until_refused(n, 2) for n in (laptop, phone, tablet))
                if made == 0 and len(read_record(record)) >= CEILING:
                    break
                time.sleep(1.5)  # let the others pull (and so acknowledge) the spend
            total = COST * len(read_record(record))
            assert CEILING <= total <= overshoot_bound(CEILING, 3, COST)


def clouds(node: NodeProc) -> dict[str, dict]:
    out = cli(node, "cloud", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_cloud_islands_and_revocations_reach_personal_devices_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZEPHYR_KEY", "sk-each-device-has-its-own")  # inherited by the nodes
    with fake_cloud(tmp_path) as (url, record), group(
        tmp_path, "laptop", "phone", "tablet", friend=True, run_args=BUSY,
    ) as (laptop, phone, tablet, friend):
        assert ask(phone, "a question for the cloud", "--tier", "burstable").returncode != 0
        out = cli(laptop, "cloud", "add", "zephyr", "--url", url, "--model", "zm",
                  "--api-key-env", "ZEPHYR_KEY", "--daily-budget", "3")
        assert out.returncode == 0, out.stderr
        for n in (phone, tablet):
            wait_until(lambda n=n: "zephyr" in clouds(n), 30, f"{n.name} to get the cloud")
        row = clouds(tablet)["zephyr"]
        assert (row["url"], row["api_key_env"], row["daily_budget"]) == (url, "ZEPHYR_KEY", 3.0)
        # The running phone routes to it at once, no restart.
        assert ask(phone, "a question for the cloud", "--tier", "burstable").returncode == 0
        assert len(read_record(record)) == 1
        # The friend has none of it, in its config or anywhere on its disk.
        assert clouds(friend) == {}
        for path in friend.home.rglob("*"):
            if path.is_file():
                assert b"zephyr" not in path.read_bytes()
        for n in (laptop, phone, tablet):
            assert b"sk-each-device" not in (n.home / "config.toml").read_bytes()
        # Removed on the phone: removed everywhere.
        out = cli(phone, "cloud", "remove", "zephyr")
        assert out.returncode == 0, out.stderr
        for n in (laptop, tablet):
            wait_until(lambda n=n: "zephyr" not in clouds(n), 30, f"{n.name} to drop the cloud")
        # A revocation made while the phone is off reaches it through the group state.
        phone.stop()
        out = cli(laptop, "pair", "revoke", "tablet")
        assert out.returncode == 0, out.stderr
        phone.start("--bootstrap", address(laptop), *BUSY)
        wait_until(lambda: paired(phone)[tablet.device_id]["revoked_at"], 30,
                   "the revocation to reach the phone")
        wait_until(lambda: tablet.device_id not in phone.peers(), 10, "the phone to drop it")


SHARED_KEY = "sk-shared-8d1e4b2a9c7f"


def key_sources(node: NodeProc) -> dict[str, str]:
    return {name: row["key_source"] for name, row in clouds(node).items()}


def test_a_key_shared_by_opt_in_reaches_personal_devices_only_and_unsync_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VAULT_KEY", raising=False)  # no node has it in its environment
    with fake_cloud(tmp_path) as (url, record), group(
        tmp_path, "laptop", "phone", friend=True, run_args=BUSY,
    ) as (laptop, phone, friend):
        # Only the shell that runs the command holds the key.
        out = subprocess.run(
            [ISLANDNODE, "--home", str(laptop.home), "cloud", "add", "vault", "--url", url,
             "--model", "vm", "--api-key-env", "VAULT_KEY", "--sync-key"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "VAULT_KEY": SHARED_KEY},
        )
        assert out.returncode == 0, out.stderr
        assert SHARED_KEY not in out.stdout + out.stderr
        wait_until(lambda: key_sources(phone) == {"vault": "synced"}, 30,
                   "the phone to have the shared key")
        # The phone, whose environment lacks the variable, calls the cloud with the key.
        assert ask(phone, "a question for the cloud", "--tier", "burstable").returncode == 0
        [sent] = read_record(headers_record(record))
        assert sent["authorization"] == f"Bearer {SHARED_KEY}"
        # Not a byte of it on the friend; on the members, only inside the encrypted state.
        assert clouds(friend) == {}
        secret = SHARED_KEY.encode()
        for path in friend.home.rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes()
        for n in (laptop, phone):
            for path in n.home.rglob("*"):
                if path.is_file():
                    assert secret not in path.read_bytes(), path
            assert secret not in n.log.read_bytes()  # nor in its log
        # Unshared on the laptop: gone from the phone's state, and the phone has no key.
        out = cli(laptop, "cloud", "unsync-key", "vault")
        assert out.returncode == 0, out.stderr
        wait_until(lambda: key_sources(phone) == {"vault": "missing"}, 30,
                   "the phone to drop the key")
        wait_until(lambda: secret not in load_state(phone.home, phone.device_id,
                                                    phone.key).to_bytes(),
                   30, "the phone to save its state without the key")
        assert ask(phone, "a question for the cloud", "--tier", "burstable").returncode != 0
        assert len(read_record(record)) == 1
