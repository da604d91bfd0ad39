"""When this node publishes its own advert: at start, on a material change, as
a heartbeat -- and never more often than the rate limit allows.

What it is: a pure pacing policy over :class:`~islandrun.protocol.messages.Advert`
values and times passed in. What it is not: the publisher (the runtime seals
with :func:`~islandrun.node.lighthouse.seal_advert` and hands the bytes to the
transport) or a sampler (TIDE measures capacity and battery).

A change is *material* when WAVES could route differently because of it:

* free capacity or the battery level moved by at least a band
  (``capacity_band``, ``battery_band``) since the last *published* advert --
  measured from what peers saw, not from the previous sample, so a slow drift
  is published once it adds up and a value wobbling across a boundary is not;
* the battery appeared or vanished, or charging started or stopped;
* ``serve_others`` moved by a capacity band (it is battery-driven);
* anything else peers see changed: models, datasets, cost, name, addresses,
  software version.

``in_flight`` and ``link_quality`` change with every request or packet and are
never material: they ride on the heartbeat.
"""

from __future__ import annotations

from dataclasses import replace

from islandrun.protocol.messages import Advert

from .lighthouse_config import LighthouseConfig

#: So that a move of exactly one band counts despite float rounding (0.6 - 0.5 < 0.1).
_ROUNDING = 1e-9


def _moved(old: float | None, new: float | None, band: float) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) + _ROUNDING >= band


def _steady(advert: Advert) -> Advert:
    """The advert with its banded and noisy fields blanked, for exact comparison."""
    return replace(
        advert, capacity=0.0, battery_pct=None, serve_others=0.0, in_flight=0, link_quality=1.0
    )


def material_change(old: Advert, new: Advert, config: LighthouseConfig) -> bool:
    """Whether peers must hear about ``new`` now rather than at the next heartbeat."""
    return (
        _moved(old.capacity, new.capacity, config.capacity_band)
        or _moved(old.battery_pct, new.battery_pct, config.battery_band)
        or _moved(old.serve_others, new.serve_others, config.capacity_band)
        or _steady(old) != _steady(new)
    )


class Advertiser:
    """Remembers what we last published and when; says when to publish next.

    ``now`` is Unix seconds, like the advert's expiry. If it steps back before
    the last publication the schedule means nothing any more, and the advert
    is due at once: an extra advert is harmless, a silent node is suspected.
    """

    def __init__(self, config: LighthouseConfig) -> None:
        self._config = config
        self._last: Advert | None = None
        self._last_at = 0.0

    def due_at(self, current: Advert, now: float) -> float:
        """The time from which ``current`` should be published (may be past)."""
        if self._last is None or now < self._last_at:
            return now
        earliest = self._last_at + self._config.min_publish_gap
        if material_change(self._last, current, self._config):
            return max(now, earliest)
        return max(earliest, self._last_at + self._config.heartbeat_interval)

    def due(self, current: Advert, now: float) -> bool:
        """Whether ``current`` should be published now."""
        return self.due_at(current, now) <= now

    def published(self, advert: Advert, now: float) -> None:
        """Record that ``advert`` went out at ``now``."""
        self._last, self._last_at = advert, now
