"""The shared radio model (``ble_air``) and its client radio (``ble_radio_air``), in one process.

The air server and every client run here over a real Unix socket in the
test's tmp dir, in real time. The same ``BleTransport`` that runs over the
in-process model passes the shared transport contract over the shared air;
the topology decides who hears whom; bad clients and a vanished air fail
clearly. ``tests/test_ble_air_processes.py`` runs real ``islandnode``
processes on it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import msgpack
import pytest
import trio
from nacl.signing import SigningKey

from islandrun.node import config
from islandrun.node.errors import ConfigError
from islandrun.node.transports_setup import ble_choice
from islandrun.protocol.errors import LocalProtocolError
from islandrun.protocol.fragments import ReassemblyLimits
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.transports.base import TOPIC_ADVERTS, IsAllowed, Transport
from islandrun.transports.ble import TEST_CONFIG, BleConfig, BleTransport, open_ble_transport
from islandrun.transports.ble_air import (
    AirError,
    AirLimits,
    AirServer,
    Pair,
    build_space,
    parse_topology,
    read_statistics,
)
from islandrun.transports.ble_air_wire import (
    FIELDS,
    AirConnection,
    AirProtocolError,
    Message,
    Op,
    decode,
    encode,
)
from islandrun.transports.ble_radio import BluetoothUnavailable, LinkLost
from islandrun.transports.ble_radio_air import open_air_radio, sim_path
from islandrun.transports.ble_radio_memory import Air, RadioSpace

from .ble_helpers import device_key, radio_address
from .transport_contract import (
    Cluster,
    OpenCluster,
    Policy,
    TransportContract,
    deliver,
    echo_handler,
    policy_for,
    run_cluster,
)

#: The contract sends a 2 MiB message in one packet. Every fragment crosses the
#: socket twice, so the largest ATT MTU and a fast air keep it quick, and the
#: streams wait a little longer for the peer (2.8 s of silence) than in
#: ``test_ble_transport``.
FAST_AIR = Air(mtu=514, rate_bps=1e10)
CONTRACT_CONFIG = dataclasses.replace(
    TEST_CONFIG, reassembly=ReassemblyLimits(max_message_size=4 * 1024 * 1024), rto=0.35
)


@asynccontextmanager
async def air_server(
    path: Path, pairs: list[Pair], air: Air = FAST_AIR, limits: AirLimits | None = None
) -> AsyncIterator[RadioSpace]:
    space = build_space(pairs, air, seed=1, scan_window=0.1, connect_delay=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(AirServer(space, limits or AirLimits()).serve, path)
        yield space
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def ble_on_air(
    path: Path, index: int, is_allowed: IsAllowed, config: BleConfig
) -> AsyncIterator[BleTransport]:
    key: SigningKey = device_key(index)
    async with (
        open_air_radio(str(path), radio_address(index)) as radio,
        open_ble_transport(key, radio, is_allowed, config, rng=random.Random(index)) as ble,
    ):
        yield ble


def everyone(n: int) -> list[Pair]:
    return [(radio_address(i), radio_address(j), -60) for i in range(n) for j in range(i + 1, n)]


async def wait_neighbours(nodes: list[BleTransport], expected: list[int]) -> None:
    with trio.fail_after(20):
        while [n.statistics().neighbours for n in nodes] != expected:
            await trio.sleep(0.05)


@asynccontextmanager
async def air_cluster(
    path: Path, n: int, pairs: list[Pair], policies: list[IsAllowed], config: BleConfig
) -> AsyncIterator[tuple[RadioSpace, list[BleTransport], list[trio.CancelScope]]]:
    async with air_server(path, pairs) as space:
        opens = [partial(ble_on_air, path, i, policies[i], config) for i in range(n)]
        async with run_cluster(opens) as (nodes, scopes):  # type: ignore[arg-type]
            yield space, [x for x in nodes if isinstance(x, BleTransport)], scopes


class TestBleOverSharedAirContract(TransportContract):
    @pytest.fixture
    def open_cluster(self, tmp_path: Path) -> OpenCluster:
        @asynccontextmanager
        async def cluster(n: int, policy: Policy) -> AsyncIterator[Cluster]:
            ids = [device_id_from_public_key(bytes(device_key(i).verify_key)) for i in range(n)]
            policies = [policy_for(i, ids, policy) for i in range(n)]
            path = tmp_path / "air.sock"
            async with air_cluster(path, n, everyone(n), policies, CONTRACT_CONFIG) as (
                _, nodes, scopes
            ):
                await wait_neighbours(nodes, [n - 1] * n)

                async def kill(index: int) -> None:
                    scopes[index].cancel()  # the process dies: its radio leaves the air
                    await trio.lowlevel.checkpoint()

                yield Cluster(list[Transport](nodes), kill)

        return cluster


# -- the topology decides -------------------------------------------------------------


async def test_a_reaches_c_only_through_b_on_the_shared_air(tmp_path: Path) -> None:
    a, b, c = (radio_address(i) for i in range(3))
    pairs = parse_topology(f"{a}<>{b},{b}<>{c}@-80")
    allow = [lambda _: True] * 3
    async with air_cluster(tmp_path / "air.sock", 3, pairs, allow, TEST_CONFIG) as (
        space, nodes, _
    ):
        await wait_neighbours(nodes, [1, 2, 1])
        assert not space.in_range(a, c)
        await deliver(nodes[2], TOPIC_ADVERTS, b"advert-c", nodes[0].gossip(TOPIC_ADVERTS))
        assert nodes[2].local_id in nodes[0].connected()
        link = nodes[0].link(nodes[2].local_id)
        assert link is not None and link.hops == 2
        nodes[2].serve(echo_handler)
        before = space.bytes_on_air
        with trio.fail_after(20):
            async with nodes[0].open_stream(nodes[2].local_id) as stream:
                await stream.send(b"over two hops")
                assert await stream.receive() == b"over two hops"
        assert space.bytes_on_air > before  # the model, not the socket, carried it
        with trio.fail_after(5):  # C's next scan reports B's signal as the topology says
            while (seen := nodes[2].link(nodes[1].local_id)) is None or seen.rssi_dbm != -80:
                await trio.sleep(0.05)


# -- failures are clear ----------------------------------------------------------------


async def test_no_air_taken_address_and_empty_address_are_bluetooth_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "air.sock"
    with pytest.raises(BluetoothUnavailable, match="no radio model listens"):
        async with open_air_radio(str(path), "a"):
            pass
    async with air_server(path, []):
        with pytest.raises(BluetoothUnavailable, match=r"\[ble\] address"):
            async with open_air_radio(str(path), ""):
                pass
        async with open_air_radio(str(path), "a"):
            with pytest.raises(BluetoothUnavailable, match="already on the air"):
                async with open_air_radio(str(path), "a"):
                    pass
        async with open_air_radio(str(path), "a") as radio:  # "a" left: free again
            with pytest.raises(LinkLost, match="not in range"):
                await radio.connect("nobody")


async def test_the_air_refuses_clients_past_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"
    async with (
        air_server(path, [], limits=AirLimits(max_clients=1)),
        open_air_radio(str(path), "a"),
    ):
        with pytest.raises(BluetoothUnavailable, match="full"):
            async with open_air_radio(str(path), "b"):
                pass


async def test_a_client_that_breaks_the_protocol_is_dropped_alone(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"
    async with (
        air_server(path, [("a", "b", -60)]) as space,
        open_air_radio(str(path), "a") as a,
        open_air_radio(str(path), "b") as b,
    ):
        await b.advertise(b"id-b")
        rogue = AirConnection(await trio.open_unix_socket(str(path)))
        await rogue.send(Op.JOIN, "rogue")
        assert (await rogue.receive()) == Message(Op.JOINED)
        await rogue.send(Op.WROTE, 1)  # only the air may send that
        with trio.fail_after(5):
            assert await rogue.receive() is None  # hung up on
        sightings = await a.scan()
        assert [(s.address, s.payload, s.rssi) for s in sightings] == [("b", b"id-b", -60)]
        link = await a.connect("b")
        theirs = await b.accept()
        await link.write(b"hello")
        assert await theirs.receive() == b"hello" and space.writes == 1
        with pytest.raises(LocalProtocolError, match="MTU"):
            await link.write(bytes(link.mtu + 1))
        await theirs.aclose()
        with trio.fail_after(5), pytest.raises(LinkLost):
            await link.receive()


async def test_a_silent_connection_is_dropped_after_the_join_timeout(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"
    async with air_server(path, [], limits=AirLimits(join_timeout=0.2)):
        silent = AirConnection(await trio.open_unix_socket(str(path)))
        with trio.fail_after(5):
            assert await silent.receive() is None


async def test_the_air_going_away_is_bluetooth_unavailable_in_the_block(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"

    async def stoppable_air(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with air_server(path, []):
                task_status.started(scope)
                await trio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as raised:
        async with trio.open_nursery() as nursery:
            air = await nursery.start(stoppable_air)
            async with open_air_radio(str(path), "a"):
                air.cancel()
                with trio.fail_after(5):
                    await trio.sleep_forever()  # until the radio says the air is gone
    assert raised.group_contains(BluetoothUnavailable, match="went away")


async def test_statistics_are_the_models_counters(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"
    async with air_server(path, [("a", "b", -60)]) as space:
        async with open_air_radio(str(path), "a") as a, open_air_radio(str(path), "b") as b:
            link = await a.connect("b")
            await link.write(b"x" * 10)
            assert await (await b.accept()).receive() == b"x" * 10
            counters = await read_statistics(path)
        assert counters == {"bytes_on_air": space.bytes_on_air, "payload_bytes": 10,
                            "writes": 1, "lost": 0, "links": 1}


async def test_the_socket_is_private_and_an_existing_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "air.sock"
    async with air_server(path, []):
        assert path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(AirError, match="exists"):
            await AirServer(build_space([], FAST_AIR, seed=1)).serve(path)
    assert not path.exists()


# -- pure parts ---------------------------------------------------------------------


def test_topology_parses_pairs_and_signal() -> None:
    assert parse_topology("a<>b, radio-b <> c@-80,") == [("a", "b", -60), ("radio-b", "c", -80)]
    assert parse_topology("") == []
    for bad in ("a", "a-b", "a<>a", "a<>b@x", "a<>b@-300", "<>b", "a<>b@5", "a<>b<>c"):
        with pytest.raises(AirError):
            parse_topology(bad)


def test_sim_adapter_names_a_socket_path() -> None:
    assert sim_path("sim:/tmp/x/air.sock") == "/tmp/x/air.sock"
    assert sim_path("sim:") is None and sim_path("bleak") is None


@pytest.mark.parametrize("message", [
    Message(Op.JOIN, ("radio-a",)), Message(Op.SCAN, (3,)),
    Message(Op.SIGHTINGS, (3, [["b", b"\x01" * 8, -70]])),
    Message(Op.CONNECTED, (4, 9, "b", 244)), Message(Op.WRITE, (9, b"frag")),
    Message(Op.STATISTICS, ({"writes": 1},)), Message(Op.JOINED),
])  # fmt: skip
def test_messages_round_trip(message: Message) -> None:
    assert decode(encode(message)[4:]) == message


@pytest.mark.parametrize("frame", [
    b"", b"\xc1", msgpack.packb("x"), msgpack.packb([]), msgpack.packb([99]),
    msgpack.packb([int(Op.JOIN)]), msgpack.packb([int(Op.JOIN), ""]),
    msgpack.packb([int(Op.JOIN), "x" * 65]), msgpack.packb([int(Op.ADVERTISE), b"x" * 32]),
    msgpack.packb([int(Op.WRITE), 1, b""]), msgpack.packb([int(Op.WRITE), -1, b"x"]),
    msgpack.packb([int(Op.SIGHTINGS), 1, [["b", b"x", 99]]]),
    msgpack.packb([int(Op.SCAN), True]),
])  # fmt: skip
def test_bad_messages_are_protocol_errors(frame: bytes) -> None:
    with pytest.raises(AirProtocolError):
        decode(frame)


def test_every_op_has_its_fields_listed() -> None:
    assert set(FIELDS) == set(Op)
    with pytest.raises(LocalProtocolError):
        encode(Message(Op.JOIN, ("",)))


# -- the node's side ----------------------------------------------------------------


async def test_the_node_opens_its_radio_on_the_air_its_config_or_flag_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "air.sock"
    text = f'[node]\nname = "b"\n[ble]\nenabled = true\nadapter = "sim:{path}"\naddress = "b"\n'
    cfg = config.parse_config(text, tmp_path / "config.toml")
    plain = config.parse_config('[node]\nname = "b"\n[ble]\naddress = "c"\n', tmp_path / "c.toml")
    from_config = ble_choice(cfg.ble, enabled=False, required=False)
    from_flag = ble_choice(plain.ble, enabled=False, required=False, adapter=f"sim:{path}")
    assert from_config is not None and from_flag is not None  # the flag switches BLE on
    async with air_server(path, []), from_config.open_radio() as b, from_flag.open_radio() as c:
        assert (b.address, c.address) == ("b", "c")
    with pytest.raises(ConfigError, match="sim:PATH"):
        config.parse_config('[node]\nname = "b"\n[ble]\nadapter = "sim:"\n', tmp_path / "x.toml")
