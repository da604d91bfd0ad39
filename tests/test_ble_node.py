"""The node on Bluetooth LE: battery-aware friend sharing and LAN/BLE link choice.

Real node code end to end (``run_node``: TIDE, LIGHTHOUSE adverts, WAVES,
sealed shipping, the friend battery floor) in one process, over the radio
model (``ble_radio_memory``, for the radio this machine lacks) and the
in-memory LAN. Real time, with fast BLE timers. Every node routes by the
shipped WAVES defaults (no ``[waves]`` in its config), so paper Scenario 2
(a low phone's requests run on a friend's charged one) holds out of the box.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trio

from islandrun.node import config, identity
from islandrun.node.dispatch import Refused
from islandrun.node.friend_floor import BATTERY_LOW
from islandrun.node.pairing_store import PairingRecord, PairingStore
from islandrun.node.runtime import Node, RunOptions, run_node
from islandrun.node.shipping import RequestRefused, ship_request
from islandrun.node.transports_setup import BleChoice
from islandrun.protocol import messages as m
from islandrun.transports.base import LAN_LINK, Transport
from islandrun.transports.ble import TEST_CONFIG, BleConfig
from islandrun.transports.ble_radio import Radio
from islandrun.transports.ble_radio_memory import Air, RadioSpace
from islandrun.transports.memory import MemoryNetwork

#: Fast BLE timers (real time here), and the model's link rate for WAVES's estimate.
BLE: BleConfig = replace(TEST_CONFIG, link_rate_bps=Air().rate_bps)


@dataclass
class Phone:
    home: Path
    ident: identity.Identity
    node: Node | None = None

    @property
    def id(self) -> str:
        return self.ident.device_id

    @property
    def running(self) -> Node:
        assert self.node is not None
        return self.node


def phone(tmp_path: Path, name: str, *, floor: float | None = None) -> Phone:
    home = tmp_path / name
    key = identity.create_key(home)
    config.write_initial_config(home, name)
    if floor is not None:
        config.update_config(home, lambda data: data["node"].update(friend_battery_floor=floor))
    return Phone(home, identity.Identity(key=key, name=name))


def befriend(*phones: Phone) -> None:
    """Pair every two phones as friends (both sides pin each other)."""
    for a in phones:
        store = PairingStore(a.home)
        for b in phones:
            if a is not b:
                store.add(PairingRecord(device_id=b.id, name=b.ident.name,
                                        tier=m.TrustTier.FRIEND, paired_at=time.time(),
                                        via="invite"))


def request(text: str = "how far to the hut?") -> m.InferenceRequest:
    return m.InferenceRequest(
        request_id=f"r{random.randrange(10**9)}", messages=(m.ChatMessage(role=m.Role.USER,
                                                                         content=text),),
        deadline=time.time() + 30,
    )


async def ask(p: Phone, *, peer: str | None = None) -> tuple[str, str]:
    """Ask on ``p``: (the island that answered, the answer)."""
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    outcome = await p.running.ask(request(), on_chunk, peer=peer)
    assert outcome.decision.island is not None
    return outcome.decision.island.device_id, "".join(chunks)


@asynccontextmanager
async def running(
    phones: list[tuple[Phone, float | None]],
    space: RadioSpace,
    lan: Callable[[Phone], AbstractAsyncContextManager[Transport]],
) -> AsyncIterator[None]:
    """Run every phone's node (battery fraction or None: mains) on the air and a LAN."""
    async with trio.open_nursery() as nursery:
        for i, (p, battery) in enumerate(phones):
            radio: Radio = space.radio(f"radio-{i}")
            options = RunOptions(
                mdns=False, api=None, fixed_load=0.1, fixed_battery=battery,
                ble=BleChoice(open_radio=lambda r=radio: nullcontext(r), config=BLE),
                open_lan=lambda _node, p=p: lan(p),
            )  # fmt: skip
            cfg = config.load_config(p.home)
            p.node = await nursery.start(run_node, p.home, p.ident, cfg, options)
        yield
        nursery.cancel_scope.cancel()


def alone(net: MemoryNetwork) -> Callable[[Phone], AbstractAsyncContextManager[Transport]]:
    """No LAN at all (a hike): every phone is alone on its own network."""
    partitioned: list[str] = []

    def lan(p: Phone) -> AbstractAsyncContextManager[Transport]:
        partitioned.append(p.id)
        net.partition(*([i] for i in partitioned))
        return net.node(p.id, is_allowed=lambda _: True)

    return lan


async def wait_for_advert(p: Phone, of: Phone, *, battery: float | None = None) -> None:
    """Until ``p`` holds ``of``'s advert (with that battery, if given)."""
    with trio.fail_after(20):
        while True:
            views = [v for v in p.running.membership.snapshot() if v.device_id == of.id]
            if views and (battery is None or views[0].advert.battery_pct == battery):
                return
            await trio.sleep(0.1)


@pytest.fixture
def space() -> RadioSpace:
    return RadioSpace(rng=random.Random(8), scan_window=0.1, connect_delay=0.01)


async def test_low_phone_runs_on_a_friends_full_phone_over_ble_relayed_by_a_third(
    tmp_path: Path, space: RadioSpace
) -> None:
    # A (15%) hears only C; C hears B (90%): A's requests reach B through C.
    a, b, c = phone(tmp_path, "a"), phone(tmp_path, "b"), phone(tmp_path, "c")
    befriend(a, b, c)
    space.chain(["radio-0", "radio-2", "radio-1"])
    lan = alone(MemoryNetwork(rng=random.Random(1)))
    async with running([(a, 0.15), (b, 0.9), (c, 0.1)], space, lan):
        await wait_for_advert(a, b, battery=90.0)
        await wait_for_advert(a, c, battery=10.0)
        assert not space.in_range("radio-0", "radio-1")
        island, answer = await ask(a)
        assert island == b.id  # not A itself (low), not C (below its floor)
        assert answer  # the echo executor answered on B, sealed, relayed by C
        peers = {p["device_id"]: p for p in a.running.peers()}
        assert peers[b.id]["battery_pct"] == 90.0 and peers[b.id]["charging"] is False


async def test_friend_below_its_floor_is_left_out_and_refuses_at_the_door(
    tmp_path: Path, space: RadioSpace
) -> None:
    a, b = phone(tmp_path, "a"), phone(tmp_path, "b", floor=0.3)
    befriend(a, b)
    space.set_range("radio-0", "radio-1", True)
    lan = alone(MemoryNetwork(rng=random.Random(2)))
    async with running([(a, 0.15), (b, 0.25)], space, lan):
        await wait_for_advert(a, b, battery=25.0)
        # A's WAVES sees B's advert (25%, under B's 30% floor) and runs locally.
        island, _ = await ask(a)
        assert island == a.id
        # Pinned to B, WAVES refuses rather than ship to a friend that will not serve.
        with pytest.raises(Refused, match="battery"):
            await ask(a, peer=b.id)
        # An advert can be stale: B checks its battery again when a request arrives.
        transport = a.running.transport
        assert transport is not None
        with pytest.raises(RequestRefused, match=r"25%.*30%") as refused:
            async with transport.open_stream(b.id) as stream:
                await ship_request(stream, a.running.sealer, request(), _ignore)
        assert refused.value.code == BATTERY_LOW


async def test_own_devices_are_served_below_the_floor(tmp_path: Path, space: RadioSpace) -> None:
    a, b = phone(tmp_path, "a"), phone(tmp_path, "b", floor=0.3)
    for x, y in ((a, b), (b, a)):  # the owner's own devices: personal tier
        config.update_config(x.home, lambda data, y=y: data.setdefault("mesh", {}).update(
            allow=[y.id]))
    space.set_range("radio-0", "radio-1", True)
    lan = alone(MemoryNetwork(rng=random.Random(3)))
    async with running([(a, 0.15), (b, 0.25)], space, lan):
        await wait_for_advert(a, b)
        transport = a.running.transport
        assert transport is not None
        async with transport.open_stream(b.id) as stream:
            end = await ship_request(stream, a.running.sealer, request(), _ignore)
        assert end.completion_tokens > 0


async def test_lan_when_both_reach_ble_when_the_lan_goes_and_lan_again(
    tmp_path: Path, space: RadioSpace
) -> None:
    a, b = phone(tmp_path, "a"), phone(tmp_path, "b")
    befriend(a, b)
    space.set_range("radio-0", "radio-1", True)
    net = MemoryNetwork(rng=random.Random(4))

    def lan(p: Phone) -> AbstractAsyncContextManager[Transport]:
        return net.node(p.id, is_allowed=lambda _: True)

    async with running([(a, 0.15), (b, 0.9)], space, lan):
        await wait_for_advert(a, b)
        multi = a.running.transport
        assert multi is not None
        members = multi.route(b.id)  # type: ignore[attr-defined]
        on_lan, on_ble = members
        with trio.fail_after(20):
            while b.id not in on_ble.connected():
                await trio.sleep(0.1)
        for lan_up, expected in ((True, on_lan), (False, on_ble), (True, on_lan)):
            if lan_up:
                net.heal()
            else:
                net.partition([a.id], [b.id])
            assert multi.route(b.id)[0] is expected  # type: ignore[attr-defined]
            before = space.bytes_on_air
            island, answer = await ask(a, peer=b.id)
            assert island == b.id and answer
            if expected is on_ble:
                assert space.bytes_on_air > before  # the request went over the air


async def _ignore(_: str) -> None:
    return None



async def test_waves_sees_the_link_lan_friend_first_weak_ble_friend_when_alone(
    tmp_path: Path, space: RadioSpace
) -> None:
    # B (90%) is on A's LAN only; C (100%) only over two weak radio hops
    # through R (10%, under its floor). A (15%) offloads to one of them.
    a, b, c, r = (phone(tmp_path, n) for n in "abcr")
    befriend(a, b, c, r)
    space.chain(["radio-0", "radio-3", "radio-2"], rssi=-90)
    net = MemoryNetwork(rng=random.Random(5))

    def lan(p: Phone) -> AbstractAsyncContextManager[Transport]:
        net.partition([a.id, b.id], [c.id], [r.id])
        return net.node(p.id, is_allowed=lambda _: True)

    async with running([(a, 0.15), (b, 0.9), (c, 1.0), (r, 0.1)], space, lan):
        await wait_for_advert(a, b, battery=90.0)
        await wait_for_advert(a, c, battery=100.0)
        transport = a.running.transport
        assert transport is not None
        link = transport.link(c.id)
        assert link is not None and (link.medium, link.hops, link.rssi_dbm) == ("ble", 2, -90)
        assert transport.link(b.id) == LAN_LINK
        latency = {i.device_id: i.latency_ms for i in a.running.islands(None)}
        assert latency[c.id] > latency[b.id]
        island, _ = await ask(a)
        assert island == b.id  # C's battery is fuller, but its road is long and weak
        net.partition([a.id], [b.id], [c.id], [r.id])  # the LAN goes away
        before = space.bytes_on_air
        island, answer = await ask(a)
        assert island == c.id and answer
        assert space.bytes_on_air > before
