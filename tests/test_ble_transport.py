"""The BLE mesh transport over the radio model: the shared contract, then the mesh itself."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from islandrun.protocol.fragments import ReassemblyLimits
from islandrun.protocol.ids import device_id_from_public_key
from islandrun.transports.ble import TEST_CONFIG
from islandrun.transports.ble_radio_memory import Air

from .ble_helpers import ble_mesh, device_key
from .transport_contract import Cluster, OpenCluster, Policy, TransportContract, policy_for

#: The contract sends a 2 MiB message; the fast air keeps real-time tests quick.
CONTRACT_CONFIG = dataclasses.replace(
    TEST_CONFIG, reassembly=ReassemblyLimits(max_message_size=4 * 1024 * 1024)
)
FAST_AIR = Air(mtu=244, rate_bps=1e10)


@asynccontextmanager
async def ble_cluster(n: int, policy: Policy) -> AsyncIterator[Cluster]:
    ids = [device_id_from_public_key(bytes(device_key(i).verify_key)) for i in range(n)]
    policies = [policy_for(i, ids, policy) for i in range(n)]
    async with ble_mesh(n, air=FAST_AIR, config=CONTRACT_CONFIG, policies=policies) as mesh:
        await mesh.wait_linked([n - 1] * n)

        async def kill(index: int) -> None:
            mesh.kill(index)
            await trio.lowlevel.checkpoint()

        yield Cluster(list(mesh.nodes), kill)


class TestBleContract(TransportContract):
    @pytest.fixture
    def open_cluster(self) -> OpenCluster:
        return ble_cluster
