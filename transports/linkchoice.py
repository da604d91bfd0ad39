"""Which of several transports to use for one peer (pure).

A phone at home reaches a friend's laptop over the LAN *and* over
Bluetooth; on a hike, only over Bluetooth. The rule: transports are ranked
by preference (LAN first: faster, cheaper on battery per byte), and a
request goes over the most preferred one that reaches the peer right now
(the peer is in its ``connected()``). When the LAN goes away the peer drops
out of the LAN transport's ``connected()`` and BLE is next; when the LAN
comes back, so does the preference -- no state, so no hysteresis to tune.
Transports that do not list the peer stay at the end as a last resort (a
dial may still find it).

What this is not: choosing *which island* (that is WAVES); this only picks
the road to an island already chosen.
"""

from __future__ import annotations

from collections.abc import Sequence


def link_order(peer: str, reaches: Sequence[frozenset[str]]) -> tuple[int, ...]:
    """Indexes of the transports to try for ``peer``, best first.

    ``reaches[i]`` is transport ``i``'s ``connected()``; index order is
    preference order.
    """
    reaching = tuple(i for i, peers in enumerate(reaches) if peer in peers)
    return reaching + tuple(i for i in range(len(reaches)) if i not in reaching)
