"""LIGHTHOUSE's one config: heartbeats, suspicion, reaping and advert pacing.

What it is: the numbers that decide how soon a silent or failing island is
suspected, declared dead and forgotten (read by
:class:`~islandrun.node.lighthouse.Membership`), and how often this node
publishes its own advert (read by :class:`~islandrun.node.advertiser.Advertiser`).
Both sides of the heartbeat read the same object, so they cannot disagree.
What it is not: a clock, or the node's TOML config (which may pick a preset).

The timeline of a peer that goes quiet, memberlist / Lifeguard style::

    last advert --suspect_after = missed_heartbeats x heartbeat_interval--> SUSPECT
    SUSPECT --suspicion timeout: suspicion_max, shrinking toward suspicion_min
              as confirmations (failed requests) arrive--> DEAD
    DEAD --reap_after--> forgotten

so a peer that stops talking and is never confirmed dead is declared dead
:attr:`LighthouseConfig.dead_after` seconds after its last advert, at most.
Each preset says why each default is what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import ConfigError

_MUST_BE_POSITIVE = (
    "heartbeat_interval",
    "missed_heartbeats",
    "suspicion_min",
    "max_adverts_per_s",
    "capacity_band",
    "battery_band",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LighthouseConfig:
    #: Seconds between the adverts a node publishes when nothing material
    #: changed (its heartbeat). Lower = a silent peer is noticed sooner, at the
    #: cost of one ~1 KB signed advert per interval per node (airtime, CPU).
    heartbeat_interval: float
    #: Heartbeats a peer may miss before it is suspected:
    #: ``suspect_after = missed_heartbeats * heartbeat_interval``. Higher =
    #: fewer false suspicions from lost or late adverts, slower detection.
    missed_heartbeats: int
    #: Seconds a suspicion lasts once ``confirmations`` independent failures
    #: confirmed it (the floor of the Lifeguard timeout).
    suspicion_min: float
    #: Seconds an unconfirmed suspicion lasts before the peer is declared dead:
    #: the time it has to refute it with a newer advert or a successful request.
    suspicion_max: float
    #: Confirmations (further failure reports) that shrink the suspicion from
    #: ``suspicion_max`` all the way to ``suspicion_min``; the timeout falls
    #: logarithmically in between (``suspicion_timeout``). 0 = always the minimum.
    confirmations: int
    #: Seconds a dead peer stays listed (as dead, with its last-seen time, in
    #: ``islandnode peers`` and the cached island list) before it is forgotten.
    reap_after: float
    #: Seconds an advert this node signs stays valid (``expires = now + ttl``).
    #: Longer than ``suspect_after`` so a heartbeat is valid until silence
    #: would matter anyway, and tolerant of clock skew between devices; shorter
    #: = a captured advert is useful to a replayer for less time.
    advert_ttl: float
    #: Most adverts this node publishes per second, changes included.
    max_adverts_per_s: float
    #: A change of free capacity (0..1) at least this large is material: the
    #: advert goes out now instead of with the next heartbeat.
    capacity_band: float
    #: A change of battery level (percentage points) at least this large is
    #: material; so is appearing, disappearing or starting/stopping charging.
    battery_band: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"lighthouse {f.name} must be a finite number >= 0")
        for name in _MUST_BE_POSITIVE:
            if getattr(self, name) == 0:
                raise ConfigError(f"lighthouse {name} must be greater than 0")
        if self.suspicion_min > self.suspicion_max:
            raise ConfigError("lighthouse suspicion_min must not exceed suspicion_max")
        if self.advert_ttl <= self.heartbeat_interval:
            raise ConfigError(
                "lighthouse advert_ttl must exceed heartbeat_interval, or adverts expire "
                "before the next one replaces them"
            )

    @property
    def suspect_after(self) -> float:
        """Seconds of silence after which a peer is suspected."""
        return self.missed_heartbeats * self.heartbeat_interval

    @property
    def dead_after(self) -> float:
        """Longest silence, in seconds, before a peer is declared dead."""
        return self.suspect_after + self.suspicion_max

    @property
    def min_publish_gap(self) -> float:
        """Seconds between two of our adverts, at least."""
        return 1.0 / self.max_adverts_per_s


#: A home or office LAN over libp2p gossipsub.
LAN = LighthouseConfig(
    # Changes go out at once (below); the heartbeat only bounds how stale a
    # quiet peer can look. Five nodes x 1 KB every 2 s is noise on a LAN.
    heartbeat_interval=2.0,
    # Gossipsub on a LAN rarely loses a message, but busy Wi-Fi can delay two
    # in a row; one late advert must never suspect anyone. Suspect after 6 s.
    missed_heartbeats=3,
    # memberlist's LAN floor is SuspicionMult 4 x log10(N) x 1 s probe, ~3 s
    # for five nodes; rounded up. WAVES fails over per request within 5 s
    # anyway, so a faster death would buy nothing.
    suspicion_min=4.0,
    # memberlist's SuspicionMaxTimeoutMult 6 x the floor: an unconfirmed
    # suspicion (one failed request, a laptop lid closing for a moment) gets
    # a dozen heartbeats to be refuted.
    suspicion_max=24.0,
    # memberlist asks for SuspicionMult - 2 = 2 confirmations from other
    # members; ours are separate failed requests from this node, which are
    # less independent (same path, often the same moment), so one more.
    confirmations=3,
    # Long enough to cover a reboot: the peer stays listed as dead with its
    # last-seen time instead of vanishing and reappearing.
    reap_after=600.0,
    # Valid past suspect_after, tolerant of tens of seconds of clock skew,
    # worthless to a replayer after a minute.
    advert_ttl=60.0,
    # Gossipsub's spam protection drops above 10 messages/s per topic
    # (LIBP2P_NOTES.md); at 2/s a change waits at most 0.5 s, well inside the
    # 2 s convergence target.
    max_adverts_per_s=2.0,
    # WAVES' thresholds (the secondary tier's 50 % capacity, battery-aware
    # sharing) are coarser than 10 %; smaller moves ride the heartbeat.
    capacity_band=0.1,
    battery_band=10.0,
)

#: Bluetooth LE links: little bandwidth, radio time costs phone battery,
#: adverts are fragmented and may arrive late via store-and-forward.
BLE = LighthouseConfig(
    # A ~1 KB advert is dozens of BLE fragments; every 30 s keeps the radio
    # mostly idle, and a hike tolerates a half-minute-old view.
    heartbeat_interval=30.0,
    # Devices drift at the edge of range; three misses = 90 s of silence.
    missed_heartbeats=3,
    # Fewer requests travel over BLE, so confirmations are rarer and slower
    # to arrive; the floor and ceiling scale with the heartbeat (6x apart).
    suspicion_min=30.0,
    suspicion_max=180.0,
    # Rarely more than a couple of requests in flight over one BLE link.
    confirmations=2,
    # People walk in and out of range for many minutes; keep them listed.
    reap_after=1800.0,
    # Store-and-forward can deliver an advert minutes late.
    advert_ttl=300.0,
    # One advert per 5 s at most: the link is shared with requests.
    max_adverts_per_s=0.2,
    # Coarser bands: every extra advert costs battery on both ends.
    capacity_band=0.2,
    battery_band=20.0,
)

#: Tests and simulations: round numbers so exact times can be asserted. With
#: K = 3 between 2 s and 8 s the suspicion lasts 8, 5, 3.25 (~) and 2 s.
TEST = LighthouseConfig(
    heartbeat_interval=1.0,
    missed_heartbeats=3,
    suspicion_min=2.0,
    suspicion_max=8.0,
    confirmations=3,
    reap_after=10.0,
    advert_ttl=30.0,
    max_adverts_per_s=10.0,
    capacity_band=0.1,
    battery_band=10.0,
)
