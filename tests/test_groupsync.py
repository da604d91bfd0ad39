"""The group-state wire protocol (node/groupsync.py) over the in-memory network."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from islandrun.node.executor import EchoExecutor
from islandrun.node.groupstate import GroupState, OpRejected
from islandrun.node.groupsync import SyncFailed, pull, serve_pull
from islandrun.node.shipping import Session, ShippingConfig, serve_request
from islandrun.protocol import messages as m
from islandrun.protocol.errors import IslandRunError
from islandrun.protocol.sealing import Sealer
from islandrun.transports.memory import MemoryNetwork
from tests.test_groupstate import IDS, KEYS, member, replica, view

CONFIG = ShippingConfig()


@asynccontextmanager
async def serving(state: GroupState) -> AsyncIterator[tuple[MemoryNetwork, list[bytes]]]:
    """``state``'s device serving pulls; a client transport; what the client received."""
    net = MemoryNetwork(rng=random.Random(1))
    received: list[bytes] = []

    async def handler(stream):  # type: ignore[no-untyped-def]
        await serve_request(
            stream, Sealer(KEYS[IDS.index(state.me)]), EchoExecutor(), is_allowed=lambda _: True,
            config=CONFIG, others={m.GroupPull: partial(serve_pull, state=state,
                                                         is_member=member)},
        )

    async with net.node(state.me, is_allowed=lambda _: True) as server:
        server.serve(handler)
        yield net, received


async def pull_as(
    net: MemoryNetwork, who: GroupState, server: str, seen: list[bytes],
    is_member: Callable[[str], bool] = member,
) -> int | IslandRunError:
    """Pull ``server``'s state into ``who``; the number of new ops, or the error."""
    async with net.node(who.me, is_allowed=lambda _: True) as client, \
            client.open_stream(server) as stream:
        original = stream.receive

        async def spy() -> bytes:  # every sealed byte the puller gets, on the wire
            data = await original()
            seen.append(data)
            return data

        stream.receive = spy  # type: ignore[method-assign]
        session = Session(stream, Sealer(KEYS[IDS.index(who.me)]), CONFIG)
        try:
            return await pull(session, who, is_member)
        except IslandRunError as exc:
            return exc


async def test_a_pull_pages_through_a_long_delta_and_converges() -> None:
    laptop, phone = replica(0), replica(1)
    for i in range(m.MAX_DELTA_OPS * 2 + 5):
        laptop.add_turn(f"c{i % 7}", m.Role.USER, f"turn {i}", i)
    laptop.add_vault_entry("c1", "PERSON", 4821, "Maria", 9999)
    async with serving(laptop) as (net, seen):
        assert await pull_as(net, phone, laptop.me, seen) == len(laptop)
        assert len(seen) == 3  # three pages
        assert view(phone) == view(laptop) and phone.vector() == laptop.vector()
        assert await pull_as(net, phone, laptop.me, seen) == 0  # nothing new: one empty page
    assert laptop.acks[phone.me] == laptop.vector()  # the second pull said "I have it all"


async def test_a_friend_gets_no_state_on_the_wire() -> None:
    laptop, friend = replica(0), replica(3)
    laptop.add_turn("c", m.Role.USER, "Maria Gonzalez has diabetes", 1)
    laptop.add_vault_entry("c", "PERSON", 4821, "Maria Gonzalez", 2)

    def everyone(_: str) -> bool:  # the friend's node thinks the laptop is in its group
        return True

    async with serving(laptop) as (net, seen):
        failed = await pull_as(net, friend, laptop.me, seen, everyone)
    assert isinstance(failed, SyncFailed) and "not_personal" in str(failed)
    assert len(friend) == 0 and friend.me not in laptop.acks
    # What reached the friend, opened with its own key: an error and nothing else.
    _, payload = Sealer(KEYS[3]).open(seen[0])
    reply = m.decode(payload)
    assert isinstance(reply, m.ErrorMessage) and reply.code == "not_personal"
    assert len(seen) == 1 and b"Maria" not in payload


async def test_a_member_never_pulls_from_a_friend() -> None:
    laptop, friend = replica(0), replica(3)
    friend.add_turn("c", m.Role.USER, "injected", 1)
    async with serving(friend) as (net, seen):
        failed = await pull_as(net, laptop, friend.me, seen)
    assert isinstance(failed, SyncFailed) and "only pulled from personal" in str(failed)
    assert len(laptop) == 0 and seen == []


async def test_ops_a_friend_authored_are_refused_even_via_a_member() -> None:
    laptop, phone, friend = replica(0), replica(1), replica(3)
    phone._integrate(friend.add_turn("c", m.Role.USER, "injected", 1))  # a buggy phone kept it
    async with serving(phone) as (net, seen):
        failed = await pull_as(net, laptop, phone.me, seen)
    assert isinstance(failed, OpRejected) and "outside the personal group" in str(failed)
    assert laptop.history("c") == []
