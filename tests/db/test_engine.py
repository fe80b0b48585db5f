from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from digest.db.engine import make_session_factory
from digest.db.unit_of_work import after_commit, unit_of_work
from digest.subscriptions.models import Subscriber
from tests.factories import make_subscriber


def test_after_commit_callbacks_run_only_once_the_transaction_committed(engine: Engine) -> None:
    factory = make_session_factory(engine)
    seen: list[bool] = []

    def published() -> None:
        # A task published here must find its row: read it from another session.
        with factory() as other:
            seen.append(
                other.scalar(select(Subscriber).where(Subscriber.email == "hook@example.org"))
                is not None
            )

    with unit_of_work(factory) as session:
        make_subscriber(session, email="hook@example.org")
        after_commit(session, published)
        assert seen == []
    assert seen == [True]

    with unit_of_work(factory) as session:
        session.delete(
            session.scalars(select(Subscriber).where(Subscriber.email == "hook@example.org")).one()
        )


def test_after_commit_callbacks_are_dropped_on_rollback(engine: Engine) -> None:
    factory = make_session_factory(engine)
    calls: list[str] = []
    with pytest.raises(RuntimeError), unit_of_work(factory) as session:
        after_commit(session, lambda: calls.append("published"))
        raise RuntimeError("the unit of work failed")
    with unit_of_work(factory) as session:
        pass
    assert calls == []


def test_datetimes_come_back_aware_in_utc(engine: Engine) -> None:
    factory = make_session_factory(engine)
    paris_morning = datetime(2026, 11, 21, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    with unit_of_work(factory) as session:
        subscriber = make_subscriber(session, email="tz@example.org", created_at=paris_morning)
        subscriber_id = subscriber.id
    with unit_of_work(factory) as session:
        stored = session.get_one(Subscriber, subscriber_id)
        assert stored.created_at == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
        assert stored.created_at.tzinfo == UTC
        session.delete(stored)


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(Exception, match="naive datetime"), unit_of_work(factory) as session:
        make_subscriber(session, email="naive@example.org", created_at=datetime(2026, 1, 1))
