"""Shared fixtures: real databases (SQLite and PostgreSQL), a real SMTP server.

Every test that takes ``session`` runs twice, once per backend, inside an outer
transaction that is rolled back afterwards; code under test may commit (it
releases a savepoint) without leaking into the next test.

Code that owns its transactions (the web app, the CLI's processes, the workers)
gets ``database_url`` instead: a migrated database of the test module's own,
once per backend, whose rows stay until the module ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import load_ranking_config
from config.settings import Settings
from digest.db.engine import make_engine
from digest.db.migrate import upgrade
from digest.mail.sink import SmtpSink
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from tests.services import fresh_postgres_database


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


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for this module alone (a module limits it to one backend
    with ``pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)``)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('database') / 'digest.db'}"
        migrate(url)
        yield url
        return
    # Named after the module, to tell whose database a leftover one was.
    with fresh_postgres_database(f"digest_{request.module.__name__.rsplit('.', 1)[-1]}") as url:
        migrate(url)
        yield url


def migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


@pytest.fixture
def database_engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url``: what the code under test committed is there."""
    engine = make_engine(database_url)
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


@pytest.fixture
def make_runtime(
    session: Session, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., Runtime]]:
    """A runtime whose units of work are savepoints of the test's transaction;
    ``sender`` stands in for SMTP when given."""

    def build(sender: object = None, **overrides: object) -> Runtime:
        runtime = Runtime(make_settings(**overrides))
        bind = session.connection()
        runtime.__dict__["session_factory"] = sessionmaker(
            bind=bind, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        # Its own ranker: a candidate cache must not outlive a test's rolled-back rows.
        runtime.__dict__["ranker"] = TrendingRanker(
            window=timedelta(days=7), config=load_ranking_config()
        )
        if sender is not None:
            runtime.__dict__["sender"] = sender
        return runtime

    yield build
