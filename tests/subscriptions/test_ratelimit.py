"""Rate limits, in this process's memory and in the machine's real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from digest.subscriptions.ratelimit import RateLimiter
from tests.services import RedisDatabase, empty_redis_database


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield RateLimiter()
        return
    with empty_redis_database(RedisDatabase.RATE_LIMITS) as url:
        yield RateLimiter(url)


def test_every_window_is_counted_and_keys_are_apart(limiter: RateLimiter) -> None:
    rules = "2/minute;3/day"
    assert [limiter.allow(rules, "notice", "a@example.org") for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert limiter.allow(rules, "notice", "b@example.org")
    assert limiter.allow(rules, "subscribe-ip", "a@example.org")


def test_a_refused_attempt_uses_no_quota(limiter: RateLimiter) -> None:
    # Refused by the per-minute rule: the per-day rule must not count it.
    assert limiter.allow("1/minute;2/day", "k")
    assert not limiter.allow("1/minute;2/day", "k")
    assert not limiter.allow("1/minute;2/day", "k")
    assert limiter.allow("5/minute;2/day", "k")
