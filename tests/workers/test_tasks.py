"""The Celery tasks in-process (no broker): the embedded default's code path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from digest.clock import utcnow
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.sink import SmtpSink, free_port
from tests.factories import make_subscriber
from workers.app import DigestCelery, create_celery


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[..., DigestCelery]]:
    apps: list[DigestCelery] = []

    def build(**overrides: object) -> DigestCelery:
        app = create_celery(
            make_settings(database_url=f"sqlite:///{tmp_path / 'tasks.db'}", **overrides)
        )
        upgrade(app.runtime.engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.runtime.dispose()


def test_without_a_broker_tasks_run_in_process(make_app: Callable[..., DigestCelery]) -> None:
    app = make_app()
    assert app.in_process and app.conf.task_always_eager
    assert app.conf.task_acks_late


def test_ingest_then_dispatch_sends_each_due_digest_once(
    make_app: Callable[..., DigestCelery], smtp_sink: SmtpSink
) -> None:
    app = make_app(smtp_url=smtp_sink.url, send_batch_size=2)
    [summary] = app.tasks["digest.ingest"].delay().get()
    assert summary["new"] == 188
    with unit_of_work(app.runtime.session_factory) as session:
        emails = [make_subscriber(session, send_hour=0).email for _ in range(5)]

    assert app.tasks["digest.dispatch_due"].delay().get() == 5
    assert app.tasks["digest.dispatch_due"].delay().get() == 0

    assert sorted(m["To"] for m in smtp_sink.messages()) == sorted(emails)
    with unit_of_work(app.runtime.session_factory) as session:
        statuses = session.scalars(select(Delivery.status)).all()
    assert statuses == [DeliveryStatus.SENT] * 5


def test_dispatch_sends_again_a_queued_digest_whose_task_was_lost(
    make_app: Callable[..., DigestCelery], smtp_sink: SmtpSink
) -> None:
    app = make_app(smtp_url=smtp_sink.url)
    app.tasks["digest.ingest"].delay()
    with unit_of_work(app.runtime.session_factory) as session:
        reader = make_subscriber(session, send_hour=0)
        # Claimed an hour ago, but the broker was down when its task was published.
        [lost] = claim_due_deliveries(session, now=utcnow() - timedelta(hours=1))

    app.tasks["digest.dispatch_due"].delay()

    assert [m["To"] for m in smtp_sink.messages()] == [reader.email]
    with unit_of_work(app.runtime.session_factory) as session:
        assert session.get_one(Delivery, lost).status == DeliveryStatus.SENT


def test_transient_send_failures_are_retried_until_the_attempt_limit(
    make_app: Callable[..., DigestCelery],
) -> None:
    app = make_app(smtp_url=f"smtp://127.0.0.1:{free_port()}", send_max_attempts=3)
    app.tasks["digest.ingest"].delay()
    with unit_of_work(app.runtime.session_factory) as session:
        make_subscriber(session, send_hour=0)

    app.tasks["digest.dispatch_due"].delay()

    with unit_of_work(app.runtime.session_factory) as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
        assert delivery.last_error is not None and "SMTP unavailable" in delivery.last_error
