"""Rate limits for what the public can make us do (send a confirmation email).

Counters live in Redis when several web processes share them, else in this
process's memory. The ``limits`` package keeps the moving windows.
"""

from __future__ import annotations

from limits import parse_many, storage, strategies


class RateLimiter:
    def __init__(self, storage_url: str = "") -> None:
        self._storage = storage.storage_from_string(storage_url or "memory://")
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)

    def allow(self, rules: str, *key: str) -> bool:
        """Count one hit for ``key`` against every rule in ``rules``
        (``"1/2minutes;3/day"``); False when any of them is exhausted."""
        limits = parse_many(rules)
        # Test every window before counting, so a refused attempt costs no quota.
        if not all(self._limiter.test(limit, *key) for limit in limits):
            return False
        return all([self._limiter.hit(limit, *key) for limit in limits])
