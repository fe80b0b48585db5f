"""The machine's PostgreSQL and Redis, as the tests use them.

Several pytest-xdist workers (and other people's runs) share both servers:
PostgreSQL databases get unique names, and each worker empties only Redis
databases of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import IntEnum

import redis

from digest.db.engine import scratch_postgres_database

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379")


class RedisDatabase(IntEnum):
    """Every Redis database a test empties, so that no two tests share one."""

    RATE_LIMITS = 0
    COMPOSE_BROKER = 1
    WORKER_BROKER = 2
    WHEEL_BROKER = 3
    FAULTS_BROKER = 4


def redis_database_number(database: RedisDatabase) -> int:
    """Each xdist worker (``gw0``, ``gw1``, …) gets its own block of databases;
    database 0 stays a developer's own stack's."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    return 1 + worker * len(RedisDatabase) + database


def fresh_postgres_database(prefix: str = "digest_test") -> AbstractContextManager[str]:
    """A new, empty PostgreSQL database for this run; dropped afterwards."""
    return scratch_postgres_database(POSTGRES_URL, prefix)


@contextmanager
def empty_redis_database(database: RedisDatabase) -> Iterator[str]:
    """The URL of this worker's Redis database for ``database``, flushed before and after use."""
    number = redis_database_number(database)
    client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
    available = int(str(client.config_get("databases")["databases"]))
    if number >= available:
        client.close()
        raise RuntimeError(
            f"Redis at {REDIS_URL} has {available} databases: too few for this many "
            f"xdist workers ({len(RedisDatabase)} each, after database 0); run fewer"
        )
    client.flushdb()
    try:
        yield f"{REDIS_URL}/{number}"
    finally:
        client.flushdb()
        client.close()
