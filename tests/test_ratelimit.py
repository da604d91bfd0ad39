"""Per-client token buckets (paper Attack 4), with time passed in."""

from __future__ import annotations

import pytest

from islandrun.node.ratelimit import (
    Bucket,
    RateLimitConfig,
    RateLimitConfigError,
    RateLimiter,
    take,
)

CONFIG = RateLimitConfig(rate_per_s=2.0, burst=3.0, max_clients=2)


def test_burst_then_refused_with_retry_after() -> None:
    limiter = RateLimiter(CONFIG)
    assert [limiter.admit("a", 0.0).allowed for _ in range(3)] == [True, True, True]
    verdict = limiter.admit("a", 0.0)
    assert not verdict.allowed
    assert verdict.retry_after_s == pytest.approx(0.5)
    assert limiter.admit("a", 0.5).allowed  # one token back after 1 / rate
    assert not limiter.admit("a", 0.5).allowed


def test_sustained_rate_is_enforced() -> None:
    limiter = RateLimiter(RateLimitConfig(rate_per_s=2.0, burst=1.0))
    admitted = sum(limiter.admit("a", t / 10).allowed for t in range(100))  # 10 per s for 10 s
    assert admitted == 20


def test_clients_are_independent() -> None:
    limiter = RateLimiter(CONFIG)
    for _ in range(3):
        limiter.admit("flood", 0.0)
    assert not limiter.admit("flood", 0.0).allowed
    assert limiter.admit("owner", 0.0).allowed


def test_refill_is_capped_at_burst() -> None:
    bucket, _ = take(Bucket(0.0, 0.0), 1000.0, CONFIG)
    assert bucket.tokens == CONFIG.burst - 1.0


def test_clock_going_backwards_refills_nothing() -> None:
    bucket, verdict = take(Bucket(0.5, 10.0), 5.0, CONFIG)
    assert not verdict.allowed
    assert bucket == Bucket(0.5, 10.0)


def test_memory_is_bounded_and_least_recent_client_is_forgotten() -> None:
    limiter = RateLimiter(CONFIG)
    for _ in range(3):
        limiter.admit("a", 0.0)
    limiter.admit("b", 0.0)
    limiter.admit("c", 0.0)  # evicts "a", the least recently seen
    assert len(limiter) == 2
    assert limiter.admit("a", 0.0).allowed  # back with a fresh bucket, evicting "b"
    assert len(limiter) == 2


@pytest.mark.parametrize(
    "bad", [{"rate_per_s": 0.0}, {"burst": 0.5}, {"max_clients": 0}, {"rate_per_s": float("inf")}]
)
def test_bad_config_is_our_error(bad: dict[str, float]) -> None:
    with pytest.raises(RateLimitConfigError):
        RateLimitConfig(**bad)  # type: ignore[arg-type]
