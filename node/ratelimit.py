"""Per-client rate limiting for routing requests: one token bucket per client (pure).

The paper's Attack 4 ("denial of service via island flooding", §VIII) floods a
node with requests to exhaust local resources and push work to paid, less
private clouds. The mitigation is rate limiting at WAVES by user identity: each
client (a paired device id, or ``local`` for the owner's own apps) has a bucket
of ``burst`` tokens refilled at ``rate_per_s``; a request takes one token or is
turned away with the time after which it would be admitted.

Pure: time is passed in (``now``, seconds on any monotonic clock). A clock that
goes backwards refills nothing rather than raising. At most ``max_clients``
buckets are kept; the least recently seen client is forgotten first, which
bounds memory when an attacker invents client ids (a forgotten client comes
back with a full bucket, which is no more than a new client gets).

What this is not: not a queue (a turned-away request is the caller's to
answer), and not authentication (the client id must already be verified).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from islandrun.protocol.errors import IslandRunError


class RateLimitConfigError(IslandRunError):
    """A rate-limit setting is out of range; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    # Sustained requests per second each client may send.
    rate_per_s: float = 2.0
    # Requests a client may send at once after being idle (the bucket size).
    burst: float = 10.0
    # Buckets remembered; bounds memory under a flood of invented client ids.
    max_clients: int = 4096

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0.0):
            raise RateLimitConfigError(f"rate_per_s must be positive, got {self.rate_per_s!r}")
        if not (math.isfinite(self.burst) and self.burst >= 1.0):
            raise RateLimitConfigError(f"burst must be at least 1, got {self.burst!r}")
        if self.max_clients < 1:
            raise RateLimitConfigError(f"max_clients must be at least 1, got {self.max_clients!r}")


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: float  # ``now`` of the last refill


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: float  # 0.0 when allowed


def take(bucket: Bucket, now: float, config: RateLimitConfig) -> tuple[Bucket, Verdict]:
    """Refill ``bucket`` up to ``now`` and take one token if there is one."""
    elapsed = max(0.0, now - bucket.updated)
    tokens = min(config.burst, bucket.tokens + elapsed * config.rate_per_s)
    updated = max(now, bucket.updated)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, updated), Verdict(True, 0.0)
    return Bucket(tokens, updated), Verdict(False, (1.0 - tokens) / config.rate_per_s)


class RateLimiter:
    """The buckets of every client seen recently. No clock, no I/O."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        # Invariant: least recently seen client first; len <= config.max_clients.
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def admit(self, client_id: str, now: float) -> Verdict:
        """Whether ``client_id`` may send one more request at ``now``."""
        bucket = self._buckets.pop(client_id, None)
        if bucket is None:
            bucket = Bucket(self.config.burst, now)
            if len(self._buckets) >= self.config.max_clients:
                self._buckets.popitem(last=False)
        bucket, verdict = take(bucket, now, self.config)
        self._buckets[client_id] = bucket
        return verdict

    def __len__(self) -> int:
        return len(self._buckets)
