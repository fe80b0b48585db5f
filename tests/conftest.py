"""Shared fixtures: real databases (SQLite and PostgreSQL), a real SMTP server.

Every test that takes ``session`` runs twice, once per backend, inside an outer
transaction that is rolled back afterwards; code under test may commit (it
releases a savepoint) without leaking into the next test.

The service tests take a fresh PostgreSQL database and an emptied Redis database
from the context managers here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config.settings import Settings
from digest.db.engine import make_engine, scratch_postgres_database
from digest.db.migrate import upgrade
from digest.mail.sink import SmtpSink

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def fresh_postgres_database(prefix: str = "digest_test") -> AbstractContextManager[str]:
    """A new, empty PostgreSQL database for this run; dropped afterwards."""
    return scratch_postgres_database(POSTGRES_URL, prefix)


@contextmanager
def empty_redis_database(db: int) -> Iterator[str]:
    """The URL of Redis database ``db``, flushed before and after use."""
    url = f"{REDIS_URL}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'digest.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "secret_key": "test-secret-key",
            "data_dir": tmp_path / "data",
            "base_url": "https://digest.example.org",
            "from_address": "Digest <digest@example.org>",
            "smtp_url": "smtp://127.0.0.1:1",
            # No internet here: the offline sample is the one configured source.
            "sources": "sample",
        }
        values.update(overrides)
        return Settings.from_values(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "mail") as sink:
        yield sink
