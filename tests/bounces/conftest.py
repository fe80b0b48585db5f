"""The bounce tests' SMTP server, which refuses some recipients as real servers do, a
runtime whose units of work are savepoints of the test's transaction, and the web app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import load_ranking_config
from config.settings import Settings
from digest.mail.sink import ClosingController, SmtpSink, free_port
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from digest.web.app import create_app
from tests.bounces.refusing import RefusingHandler, RefusingServer


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingServer]:
    handler = RefusingHandler()
    controller = ClosingController(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield RefusingServer(controller, handler)
    controller.stop()


@pytest.fixture
def make_runtime(
    session: Session, make_settings: Callable[..., Settings]
) -> Callable[..., Runtime]:
    def build(**overrides: object) -> Runtime:
        runtime = Runtime(make_settings(**overrides))
        runtime.__dict__["session_factory"] = sessionmaker(
            bind=session.connection(),
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )
        # A new ranker per runtime: its candidate cache must not outlive the test's rows.
        runtime.__dict__["ranker"] = TrendingRanker(
            window=timedelta(days=7), config=load_ranking_config()
        )
        return runtime

    return build


@pytest.fixture
def client(
    make_settings: Callable[..., Settings], database_url: str, smtp_sink: SmtpSink
) -> Iterator[TestClient]:
    """The web app on the module's database, its mail caught by a real sink."""
    settings = make_settings(database_url=database_url, smtp_url=smtp_sink.url)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client
