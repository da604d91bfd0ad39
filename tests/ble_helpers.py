"""Build BLE meshes over the radio model for the tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio
from nacl.signing import SigningKey

from islandrun.transports.base import IsAllowed, Transport
from islandrun.transports.ble import TEST_CONFIG, BleConfig, BleTransport, open_ble_transport
from islandrun.transports.ble_radio_memory import Air, RadioSpace

from .transport_contract import run_cluster

DEFAULT_AIR = Air()


def device_key(index: int) -> SigningKey:
    return SigningKey(bytes([index + 1]) * 32)


def radio_address(index: int) -> str:
    return f"radio-{index:02d}"


def allow_everyone(_: str) -> bool:
    return True


@dataclass
class Mesh:
    space: RadioSpace
    nodes: list[BleTransport]
    scopes: list[trio.CancelScope]

    def ids(self) -> list[str]:
        return [n.local_id for n in self.nodes]

    def kill(self, index: int) -> None:
        """The device's battery dies: off the air, its transport gone."""
        self.space.remove(radio_address(index))
        self.scopes[index].cancel()

    async def wait_linked(self, expected: list[int], timeout: float = 30.0) -> None:
        """Wait until node i has expected[i] named neighbours."""
        with trio.fail_after(timeout):
            while [n.statistics().neighbours for n in self.nodes] != expected:
                await trio.sleep(0.05)


@asynccontextmanager
async def ble_mesh(
    n: int,
    *,
    chain: bool = False,
    air: Air = DEFAULT_AIR,
    config: BleConfig = TEST_CONFIG,
    policies: list[IsAllowed] | None = None,
    seed: int = 1,
    space: RadioSpace | None = None,
) -> AsyncIterator[Mesh]:
    """``n`` devices on the air: all in range of each other, or in a chain."""
    space = space or RadioSpace(rng=random.Random(seed), air=air)
    addresses = [radio_address(i) for i in range(n)]
    if chain:
        space.chain(addresses)
    else:
        for i in range(n):
            for j in range(i + 1, n):
                space.set_range(addresses[i], addresses[j], True)
    opens = [
        partial(
            open_ble_transport,
            device_key(i),
            space.radio(addresses[i]),
            (policies or [allow_everyone] * n)[i],
            config,
            rng=random.Random(seed * 1000 + i),
            wall_clock=trio.current_time,
        )
        for i in range(n)
    ]
    async with run_cluster(opens) as (nodes, scopes):  # type: ignore[arg-type]
        ble_nodes = [node for node in nodes if isinstance(node, BleTransport)]
        yield Mesh(space, ble_nodes, scopes)


def as_transports(mesh: Mesh) -> list[Transport]:
    return list(mesh.nodes)
