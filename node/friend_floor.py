"""The friend battery floor: this device serves others only above it (pure).

Paper Scenario 2: A's phone is low, B's is full; A's requests run on B. B's
owner sets how low B's own battery may go for other people's work
(``[node] friend_battery_floor``, a charge fraction). The floor acts twice:

1. **in B's advert** -- TIDE's willingness to serve others reaches 0 at the
   floor (:func:`tide_with_floor`), so A's WAVES leaves B out before it
   ships anything ("battery 15%, not charging: not serving others");
2. **at B's door** -- an advert can be a heartbeat old, so B checks its
   battery again when a request arrives (:func:`refusal`) and refuses a
   friend's or edge device's request with code ``battery_low``; A's WAVES
   then fails over to the next island or refuses.

The owner's own (personal) devices are always served: the floor protects
the owner's battery from *other people's* work. On mains power or while
charging the floor does not apply.

What this is not: the owner's own requests are never limited by it, and it
does not choose islands (WAVES does).
"""

from __future__ import annotations

import dataclasses

from .tide_capacity import CapacityReport, TideConfig
from .waves_inputs import IslandKind

#: The error code a refused requester sees (``ErrorMessage.code``).
BATTERY_LOW = "battery_low"
#: Willingness rises from 0 at the floor to 1 this many points above it (or
#: at TIDE's ``comfortable_pct``, whichever is higher).
RAMP_PCT = 20.0


def tide_with_floor(config: TideConfig, floor: float) -> TideConfig:
    """TIDE's config with its serve floor at ``floor`` (a fraction; the config allows 0-0.8)."""
    floor_pct = floor * 100.0
    comfortable = max(config.comfortable_pct, min(100.0, floor_pct + RAMP_PCT))
    return dataclasses.replace(config, serve_floor_pct=floor_pct, comfortable_pct=comfortable)


def refusal(report: CapacityReport, kind: IslandKind | None, floor: float) -> str | None:
    """Why a request from a device of ``kind`` is refused now, or None to serve it."""
    if kind is IslandKind.PERSONAL or report.battery_pct is None or report.charging:
        return None
    if report.battery_pct > floor * 100.0:
        return None
    return (
        f"this device's battery is at {report.battery_pct:.0f}%, at or below the "
        f"{floor * 100:.0f}% its owner keeps for themselves; ask another island"
    )
