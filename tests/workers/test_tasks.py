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
from digest.subscriptions.models import Subscriber
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


def ingest_with_a_reader_due_now(app: DigestCelery) -> Subscriber:
    app.tasks["digest.ingest"].delay()
    with unit_of_work(app.runtime.session_factory) as session:
        return make_subscriber(session, send_hour=0)


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
    reader = ingest_with_a_reader_due_now(app)
    with unit_of_work(app.runtime.session_factory) as session:
        # Claimed an hour ago, but the broker was down when its task was published.
        [lost] = claim_due_deliveries(session, now=utcnow() - timedelta(hours=1))

    app.tasks["digest.dispatch_due"].delay()

    assert [m["To"] for m in smtp_sink.messages()] == [reader.email]
    with unit_of_work(app.runtime.session_factory) as session:
        assert session.get_one(Delivery, lost).status == DeliveryStatus.SENT


def test_in_process_a_transient_failure_stays_queued_for_the_next_run(
    make_app: Callable[..., DigestCelery], smtp_sink: SmtpSink
) -> None:
    app = make_app(smtp_url=f"smtp://127.0.0.1:{free_port()}", smtp_timeout_seconds=5)
    reader = ingest_with_a_reader_due_now(app)

    app.tasks["digest.dispatch_due"].delay()

    # One attempt, not the old five burned in seconds: the next run tries again.
    with unit_of_work(app.runtime.session_factory) as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.RANKED, 1)
        assert delivery.last_error is not None and "SMTP unavailable" in delivery.last_error
    assert app.runtime.pending_deliveries() == 1

    app.runtime.__dict__.pop("sender")
    app.runtime.settings = app.runtime.settings.model_copy(update={"smtp_url": smtp_sink.url})
    assert app.tasks["digest.dispatch_due"].delay().get() == 0

    assert [m["To"] for m in smtp_sink.messages()] == [reader.email]
    assert app.runtime.pending_deliveries() == 0
    with unit_of_work(app.runtime.session_factory) as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


def test_a_send_batch_task_left_in_a_broker_is_ranked_and_mailed(
    make_app: Callable[..., DigestCelery], smtp_sink: SmtpSink
) -> None:
    app = make_app(smtp_url=smtp_sink.url)
    reader = ingest_with_a_reader_due_now(app)
    with unit_of_work(app.runtime.session_factory) as session:
        claimed = claim_due_deliveries(session, now=utcnow())

    app.tasks["digest.send_batch"].delay(claimed)

    assert [m["To"] for m in smtp_sink.messages()] == [reader.email]


def test_stages_have_their_queues_and_redis_redelivers_only_after_the_longest_wait(
    make_app: Callable[..., DigestCelery],
) -> None:
    app = make_app()
    routes = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in app.tasks
        if name.startswith("digest.")
    }
    assert routes == {
        "digest.ingest": "ingest",
        "digest.dispatch_due": "rank",
        "digest.recover": "rank",
        "digest.rank": "rank",
        "digest.send_batch": "rank",
        "digest.mail": "mail",
        "digest.send_notice": "mail",
    }
    assert set(app.amqp.queues) == {"ingest", "rank", "mail", "celery"}
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    settings = app.runtime.settings
    assert isinstance(timeout, int)
    assert timeout > settings.send_retry_max_seconds and timeout > settings.send_lease_seconds
    assert "recover-lost-digests" in app.conf.beat_schedule
