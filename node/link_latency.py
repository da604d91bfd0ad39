"""What the road to an island adds to a request's latency: link quality for WAVES (pure).

Paper Scenario 2: A's WAVES weighs B by its advert (battery, charging) *and*
by the link A has to B. The link is what A observes, not what B claims, so
it comes from A's transport (:meth:`~islandrun.transports.base.Transport.link`)
and enters WAVES the one way WAVES already understands: as expected latency
(``IslandSnapshot.latency_ms``). WAVES stays pure and link-blind.

The estimate, for one request and its streamed answer:

* **LAN**: nothing beyond the LAN round trip already in the island's
  measured (or default) latency.
* **BLE**: the bytes one exchange puts on one hop at the link's MTU, over its
  nominal rate (a stream pipelines through relays, so the slowest hop bounds
  it), plus a store-and-forward delay per hop; divided by ``1 - loss``, where
  the loss is guessed from the first hop's signal (RSSI): a weak link costs
  retransmissions. That is the mild penalty a weak link gets.

Calibrated on ``bench/ble.py`` (3 hops; 20-byte MTU at 100 kbit/s: 2.44 s;
244-byte MTU at 700 kbit/s: 0.20 s), which this estimate reproduces within
about 5 %. What this is not: a measurement (``dispatch.LatencyBook`` holds
those, net of this estimate) and not the choice of link (``linkchoice``).
"""

from __future__ import annotations

from islandrun.protocol.fragments import HEADER
from islandrun.transports.base import LinkView
from islandrun.transports.ble_radio import WRITE_OVERHEAD

#: Application bytes of one exchange: a short sealed request (~600 B) and a
#: sealed answer streamed in 20 chunks (~4.6 KB), as in bench/ble.py.
EXCHANGE_BYTES = 5_253
#: Packet headers, signatures and stream ACKs on top of the fragments
#: (measured: bench/ble.py's bytes on air per hop over its fragment bytes).
PACKET_OVERHEAD = 2.2
#: Store-and-forward and connection-interval delay per hop, ms.
HOP_MS = 20.0
#: MTU assumed when the radio does not report one (ATT_MTU 23, no DLE).
DEFAULT_MTU = 20
#: Signal at or above which a link loses next to nothing, and at or below
#: which it loses :data:`MAX_LOSS` of its writes (dBm); linear between.
STRONG_RSSI_DBM = -70
WEAK_RSSI_DBM = -95
MAX_LOSS = 0.5


def loss_guess(rssi_dbm: int | None) -> float:
    """The share of writes a link at ``rssi_dbm`` is expected to lose (0 if unknown)."""
    if rssi_dbm is None:
        return 0.0
    weakness = (STRONG_RSSI_DBM - rssi_dbm) / (STRONG_RSSI_DBM - WEAK_RSSI_DBM)
    return MAX_LOSS * min(1.0, max(0.0, weakness))


def link_latency_ms(link: LinkView | None) -> float:
    """Milliseconds ``link`` adds to one request and its answer (0 for a LAN or no link)."""
    if link is None or link.rate_bps is None:
        return 0.0
    mtu = max(link.mtu or DEFAULT_MTU, HEADER.size + 1)
    on_air = EXCHANGE_BYTES * PACKET_OVERHEAD * (mtu + WRITE_OVERHEAD) / (mtu - HEADER.size)
    transfer_ms = on_air * 8 / link.rate_bps * 1000 + HOP_MS * link.hops
    return transfer_ms / (1.0 - loss_guess(link.rssi_dbm))
