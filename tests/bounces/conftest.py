"""The bounce tests' SMTP server, which refuses some recipients as real servers do,
and a runtime whose units of work are savepoints of the test's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from config.ranking import load_ranking_config
from config.settings import Settings
from digest.mail.sink import free_port
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from tests.bounces.refusing import RefusingHandler, RefusingServer


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingServer]:
    handler = RefusingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
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
