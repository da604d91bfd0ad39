"""Link quality in WAVES: what the road to an island adds to its expected latency."""

from __future__ import annotations

import time
from dataclasses import replace

from islandrun.node import waves
from islandrun.node.dispatch import TrustRecord, island_snapshots
from islandrun.node.lighthouse import IslandView, Liveness
from islandrun.node.link_latency import (
    MAX_LOSS,
    STRONG_RSSI_DBM,
    WEAK_RSSI_DBM,
    link_latency_ms,
    loss_guess,
)
from islandrun.node.waves_inputs import IslandKind, RouteRequest
from islandrun.protocol import messages as m
from islandrun.transports.base import LAN_LINK, LinkView

from .waves_helpers import IDLE, local

BLE = LinkView("ble", hops=1, rssi_dbm=-60, mtu=244, rate_bps=700_000.0)


def test_a_lan_or_no_link_adds_nothing() -> None:
    assert link_latency_ms(LAN_LINK) == 0.0
    assert link_latency_ms(None) == 0.0
    assert link_latency_ms(BLE) > 0.0


def test_more_hops_smaller_mtu_slower_rate_and_weaker_signal_each_cost_more() -> None:
    base = link_latency_ms(BLE)
    assert link_latency_ms(replace(BLE, hops=3)) > base
    assert link_latency_ms(replace(BLE, mtu=20)) > base
    assert link_latency_ms(replace(BLE, rate_bps=100_000.0)) > base
    assert link_latency_ms(replace(BLE, rssi_dbm=-90)) > base
    assert link_latency_ms(replace(BLE, mtu=None)) == link_latency_ms(replace(BLE, mtu=20))


def test_loss_guess_ramps_from_strong_to_weak_signal_and_is_bounded() -> None:
    assert loss_guess(None) == 0.0
    assert loss_guess(STRONG_RSSI_DBM) == 0.0 == loss_guess(-30)
    assert loss_guess(WEAK_RSSI_DBM) == MAX_LOSS == loss_guess(-120)
    middle = loss_guess((STRONG_RSSI_DBM + WEAK_RSSI_DBM) // 2)
    assert 0.0 < middle < MAX_LOSS
    # A weak link is penalised mildly: at worst twice the time, never removed.
    worst = link_latency_ms(replace(BLE, rssi_dbm=-120))
    assert worst == link_latency_ms(BLE) / (1 - MAX_LOSS)


class Friends:
    def lookup(self, device_id: str) -> TrustRecord | None:
        return TrustRecord(IslandKind.FRIEND, 0.7, 0.7)


def view(device_id: str, battery: float) -> IslandView:
    advert = m.Advert(
        device_id=device_id, name=device_id, models=(m.ModelInfo(name="m", context=4096),),
        capacity=1.0, battery_pct=battery, charging=False, serve_others=battery / 100,
    )  # fmt: skip
    now = time.time()
    return IslandView(device_id=device_id, name=device_id, liveness=Liveness.ALIVE,
                      last_seen=now, since=now, advert=advert)


def pick(links: dict[str, LinkView] | None, names: tuple[str, ...] = ("on-lan", "over-ble")) -> str:
    views = [view(name, battery) for name, battery in (("on-lan", 90.0), ("over-ble", 100.0))
             if name in names]
    lookup = None if links is None else links.get
    islands = island_snapshots(views, Friends(), links=lookup)
    # This device is full too but busy: only the two friends are eligible.
    here = local(battery_pct=100.0, capacity=0.0)
    busy = replace(IDLE, capacity=0.0, available=0.0, accepting=False)
    decision = waves.decide(
        RouteRequest(request_id="r"), 0.0, [*islands, here], waves.RoutePolicy(), busy
    )
    assert decision.island is not None
    return decision.island.device_id


def test_waves_prefers_the_lan_friend_over_a_weak_multi_hop_ble_friend() -> None:
    weak = LinkView("ble", hops=3, rssi_dbm=-90, mtu=244, rate_bps=700_000.0)
    # Link-blind, the fuller battery wins; seeing the road, the LAN does.
    assert pick(None) == "over-ble"
    assert pick({"on-lan": LAN_LINK, "over-ble": weak}) == "on-lan"
    # With the LAN friend gone, the weak BLE friend is still chosen (not refused).
    assert pick({"over-ble": weak}, ("over-ble",)) == "over-ble"
