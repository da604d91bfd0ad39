"""Bad adverts injected over the real wire never enter a node's table (issue 5).

One real node A (``islandnode run``, loopback, no mDNS) pairs with M and P.
M is paired but malicious: the test runs a libp2p transport with M's key and
publishes, on the advert topic, every kind of bad advert -- forged (claiming
P, the paired device that stays offline), tampered, expired, signed for
another domain, replayed, older, and a conflicting one with an accepted
seq. U is not paired at all and publishes a perfectly valid advert of its
own. A must list M with its one valid advert only, never P, never U, and
keep answering.

Why "no effect" is not just a message that never arrived: the adverts
refused for their envelope or content travel on the same gossip stream just
before M's valid advert, which A must list; and each carries a seq above the
valid one's, so had any been accepted the valid one would be stale and never
listed. Replays (older seq, same seq) only the table can catch; A (run with
``-v``) logs each refusal, and the test waits for those lines.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import pytest
import trio
from nacl.signing import SigningKey

from islandrun.node.lighthouse import seal_advert
from islandrun.protocol import envelope
from islandrun.protocol.errors import RejectReason
from islandrun.protocol.ids import device_id_from_public_key, short_id
from islandrun.protocol.messages import Advert, encode
from islandrun.transports.base import TOPIC_ADVERTS
from islandrun.transports.libp2p import Libp2pTransport, open_libp2p_transport
from tests.mesh_procs import NodeProc

pytestmark = pytest.mark.slow

T = TypeVar("T")
WAIT_S = 30.0
#: Pause between injected messages: gossipsub queues hold 32 and drop the rest.
PACE_S = 0.05


def device_id(key: SigningKey) -> str:
    return device_id_from_public_key(bytes(key.verify_key))


def advert(key: SigningKey, name: str, device: str | None = None) -> bytes:
    """An advert payload (not signed) for ``device`` (default: the key's own)."""
    return encode(Advert(device_id=device or device_id(key), name=name, capacity=0.5))


def seal(
    key: SigningKey, payload: bytes, seq: int, *, expires_in: float = 60.0,
    domain: str = envelope.DOMAIN_ADVERT,
) -> bytes:
    return envelope.seal_envelope(
        key, domain=domain, payload_type=envelope.PAYLOAD_ADVERT, payload=payload,
        seq=seq, expires=time.time() + expires_in,
    )


def claiming(sealed: bytes, device: str) -> bytes:
    """``sealed`` with its (unsigned) claimed-device field rewritten."""
    body = msgpack.unpackb(sealed, raw=False)
    body["id"] = device
    return msgpack.packb(body, use_bin_type=True)


def tampered(sealed: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and sealed.count(old) == 1
    return sealed.replace(old, new)


async def until(check: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    """Poll a blocking ``check`` (in a thread) until truthy; bounded."""
    with trio.move_on_after(timeout):
        while not (result := await trio.to_thread.run_sync(check)):
            await trio.sleep(0.1)
        return result
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def entry(node: NodeProc, device: str) -> dict[str, Any] | None:
    """``device``'s row in ``node``'s ``peers --json``, or ``None``."""
    return next((p for p in node.peers_json() if p["device_id"] == device), None)


def named(node: NodeProc, device: str, name: str) -> dict[str, Any] | None:
    """``device``'s row if its advert in the table is the one called ``name``."""
    row = entry(node, device)
    return row if row is not None and row["name"] == name else None


def refusals(node: NodeProc, sender: str) -> Counter[str]:
    """Why ``node`` refused adverts from ``sender``, from its debug log."""
    marker = f"advert from {short_id(sender)} refused: "
    lines = node.log.read_text().splitlines()
    return Counter(line.split(marker, 1)[1] for line in lines if marker in line)


@pytest.fixture
def alpha(tmp_path: Path) -> Iterator[tuple[NodeProc, dict[str, SigningKey]]]:
    """Node A, started, pairing with M and P (not U); the three keys."""
    keys = {name: SigningKey(bytes([seed]) * 32) for seed, name in enumerate("MPU", 1)}
    node = NodeProc(tmp_path, "alpha")
    node.configure([device_id(keys["M"]), device_id(keys["P"])])
    node.start("--no-mdns", "-v")
    try:
        yield node, keys
    finally:
        node.stop()


async def publish_paced(transport: Libp2pTransport, messages: list[bytes]) -> None:
    for data in messages:
        await transport.publish(TOPIC_ADVERTS, data)
        await trio.sleep(PACE_S)


async def publish_until_listed(transport: Libp2pTransport, key: SigningKey, a: NodeProc) -> None:
    """Hello adverts (seq 1, 2, ...) until A lists the device: the mesh is up."""
    with trio.fail_after(WAIT_S):
        for seq in range(1, 1000):
            await transport.publish(TOPIC_ADVERTS, seal(key, advert(key, "hello"), seq))
            if await trio.to_thread.run_sync(entry, a, device_id(key)):
                return
            await trio.sleep(0.3)


async def wait_for_gossip_from(transport: Libp2pTransport, origin: str) -> None:
    """Until ``origin``'s gossip reaches ``transport``: the two are in one mesh."""
    with trio.fail_after(WAIT_S):
        async for sender, _ in transport.gossip(TOPIC_ADVERTS):
            if sender == origin:
                return


async def test_forged_replayed_expired_tampered_and_unpaired_adverts_never_enter(
    alpha: tuple[NodeProc, dict[str, SigningKey]],
) -> None:
    a, keys = alpha
    m_key, p_key, u_key = keys["M"], keys["P"], keys["U"]
    m_id, p_id, u_id = device_id(m_key), device_id(p_key), device_id(u_key)
    a_address = await trio.to_thread.run_sync(lambda: a.address)
    a_id = a_address.rsplit("/", 1)[1]

    def anyone(_: str) -> bool:  # the attackers' own transports take any gossip
        return True

    async with (
        open_libp2p_transport(m_key, anyone, rng=random.Random(1), bootstrap=[a_address]) as m,
        open_libp2p_transport(u_key, anyone, rng=random.Random(2), bootstrap=[a_address]) as u,
    ):
        # U, unpaired: once U and A share a gossip mesh, a valid self-signed advert.
        await wait_for_gossip_from(u, a_id)
        await publish_paced(u, [seal_advert(u_key, Advert(device_id=u_id, name="u-unpaired",
                                                          capacity=0.9), seq=1,
                                            expires=time.time() + 60)] * 3)

        # M, paired but malicious. Every bad advert carries a seq above the
        # valid one's, so had any been accepted, the valid one would be stale.
        await publish_until_listed(m, m_key, a)
        await publish_paced(m, [
            b"\xc1 not an envelope",
            seal(m_key, advert(m_key, "forged-p", device=p_id), 3000),
            claiming(seal(m_key, advert(m_key, "forged-id"), 3001), p_id),
            tampered(seal(m_key, advert(m_key, "m-tampered"), 3002), b"m-tampered",
                     b"m-tampereD"),
            seal(m_key, advert(m_key, "m-expired"), 3003, expires_in=-60.0),
            seal(m_key, advert(m_key, "m-other-domain"), 3004,
                 domain=envelope.DOMAIN_REVOCATION),
        ])
        valid = seal(m_key, advert(m_key, "m-valid"), 2000)
        await publish_paced(m, [valid])
        listed = await until(lambda: named(a, m_id, "m-valid"), "A to list M's valid advert")
        await publish_paced(m, [
            valid,  # the exact bytes again
            seal(m_key, advert(m_key, "m-older"), 1500),
            seal(m_key, advert(m_key, "m-same-seq"), 2000),
        ])
        replays = Counter({str(RejectReason.STALE_SEQ): 2, str(RejectReason.CONFLICTING_SEQ): 1})
        await until(lambda: refusals(a, m_id) >= replays, "A to refuse M's replayed adverts")

    peers = await trio.to_thread.run_sync(a.peers_json)
    assert [p["device_id"] for p in peers] == [m_id]  # never P, never U
    (m_entry,) = peers
    assert m_entry["name"] == "m-valid"
    assert m_entry["last_seen"] == listed["last_seen"]  # the replay refreshed nothing
    log = a.log.read_text()
    assert f"island {short_id(p_id)}" not in log and f"island {short_id(u_id)}" not in log
    assert "Traceback" not in log
    assert a.proc is not None and a.proc.poll() is None
    status = await trio.to_thread.run_sync(a.status)
    assert status["device_id"] == a_id
