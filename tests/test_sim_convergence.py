"""LIGHTHOUSE convergence at small N, and the Serf model it is compared with."""

from __future__ import annotations

import pytest

from islandrun.node.lighthouse_config import LAN
from islandrun.simulations.convergence import GOSSIP_INTERVAL_S, measure, serf_model_s


def test_serf_model_matches_its_published_lan_figures() -> None:
    assert serf_model_s(1000, 0.0) == pytest.approx(2.2)
    assert serf_model_s(1000, 0.5) == pytest.approx(4.4)
    assert serf_model_s(10, 0.0) < serf_model_s(1000, 0.0)


@pytest.mark.parametrize("nodes", [10, 50])
def test_relay_gossip_reaches_every_node_within_seconds(nodes: int) -> None:
    clean = measure(nodes, 0.0, "relay", seed=1)
    lossy = measure(nodes, 0.5, "relay", seed=1)
    assert clean["converged_s"] is not None and lossy["converged_s"] is not None
    assert GOSSIP_INTERVAL_S <= clean["converged_s"] <= lossy["converged_s"] < 10.0


def test_direct_broadcast_waits_for_heartbeats_when_adverts_are_lost() -> None:
    clean = measure(20, 0.0, "direct", seed=1)
    lossy = measure(20, 0.5, "direct", seed=1)
    assert clean["converged_s"] < LAN.heartbeat_interval
    assert lossy["converged_s"] >= LAN.heartbeat_interval
    assert lossy["messages"] > clean["messages"]
