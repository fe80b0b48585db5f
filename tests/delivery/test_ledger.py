from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.ranking import load_ranking_config
from config.settings import Settings
from digest.delivery.ledger import (
    SendOutcome,
    claim_due_deliveries,
    retry_delay,
    send_delivery,
    stale_deliveries,
)
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.sink import SmtpSink, free_port
from digest.mail.smtp import SmtpConfig, SmtpConnection, SmtpSender
from digest.ranking.ranker import TrendingRanker
from digest.runtime import Runtime
from digest.subscriptions.models import SubscriberStatus
from digest.subscriptions.tokens import Purpose, Signer
from tests.factories import NOW, make_paper, make_subscriber


def ranker() -> TrendingRanker:
    # A new one per use: its candidate cache must not outlive a test's rolled-back rows.
    return TrendingRanker(window=timedelta(days=7), config=load_ranking_config())


@pytest.fixture
def connection(smtp_sink: SmtpSink) -> Iterator[SmtpConnection]:
    with SmtpSender(SmtpConfig.from_url(smtp_sink.url)).connection() as connection:
        yield connection


def send(
    session: Session, delivery_id: int, settings: Settings, connection: SmtpConnection
) -> SendOutcome:
    return send_delivery(
        session,
        delivery_id,
        composer=Runtime(settings).composer,
        ranker=ranker(),
        connection=connection,
        now=NOW,
        max_attempts=3,
    )


def test_claiming_is_idempotent(session: Session) -> None:
    reader = make_subscriber(session, send_hour=0)
    first = claim_due_deliveries(session, now=NOW)
    second = claim_due_deliveries(session, now=NOW)

    assert len(first) == 1 and second == []
    delivery = session.get_one(Delivery, first[0])
    assert (delivery.subscriber_id, delivery.edition, delivery.status) == (
        reader.id,
        "2026-11-21",
        DeliveryStatus.QUEUED,
    )


def test_a_due_digest_is_sent_and_recorded(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    papers = [make_paper(session, upvotes=n) for n in (5, 50, 20)]
    reader = make_subscriber(session, send_hour=0, papers_per_digest=2)
    [delivery_id] = claim_due_deliveries(session, now=NOW)

    assert send(session, delivery_id, settings, connection) == SendOutcome.SENT

    [received] = smtp_sink.messages()
    delivery = session.get_one(Delivery, delivery_id)
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.message_id == received["Message-ID"]
    assert delivery.paper_ids == [papers[1].id, papers[2].id]
    assert delivery.attempts == 1 and delivery.sent_at == NOW
    assert received["To"] == reader.email
    html = received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert papers[1].title in html and papers[0].title not in html
    assert "50 upvotes" in html


def test_every_digest_carries_a_working_signed_unsubscribe_link(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    send(session, delivery_id, settings, connection)

    [received] = smtp_sink.messages()
    https, mailto = (v.strip(" <>") for v in received["List-Unsubscribe"].split(","))
    assert https.startswith("https://digest.example.org/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@example.org?subject=unsubscribe")
    claims = Signer(settings.secret_key).verify(Purpose.UNSUBSCRIBE, https.rsplit("/", 1)[1])
    assert claims.subscriber_id == reader.id
    assert https in received.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert https in received.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_no_paper_is_sent_twice_to_the_same_reader(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    papers = [make_paper(session, upvotes=n) for n in range(4)]
    make_subscriber(session, send_hour=0, papers_per_digest=2)
    [today] = claim_due_deliveries(session, now=NOW)
    send(session, today, settings, connection)
    [tomorrow] = claim_due_deliveries(session, now=NOW + timedelta(days=1))
    send(session, tomorrow, settings, connection)

    first, second = (session.get_one(Delivery, i).paper_ids for i in (today, tomorrow))
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == {p.id for p in papers}


def test_an_unsubscribe_after_claiming_wins(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    reader.status = SubscriberStatus.UNSUBSCRIBED
    session.flush()

    assert send(session, delivery_id, settings, connection) == SendOutcome.SKIPPED
    assert smtp_sink.files() == []
    delivery = session.get_one(Delivery, delivery_id)
    assert delivery.status == DeliveryStatus.SKIPPED
    assert delivery.last_error == "subscriber is unsubscribed"


def test_nothing_new_means_no_email_and_a_recorded_reason(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    assert send(session, delivery_id, settings, connection) == SendOutcome.SKIPPED
    assert smtp_sink.files() == []
    assert session.get_one(Delivery, delivery_id).last_error == "no new papers for this reader"


def test_a_delivery_is_never_sent_twice(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    assert send(session, delivery_id, settings, connection) == SendOutcome.SENT
    # The same task delivered again by the broker (acks_late after a crash).
    assert send(session, delivery_id, settings, connection) == SendOutcome.ALREADY_DONE
    assert len(smtp_sink.files()) == 1


def test_transient_failures_are_retried_then_given_up_and_recorded(
    session: Session, settings: Settings
) -> None:
    make_paper(session)
    make_subscriber(session, send_hour=0)
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    down = SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=5))

    with down.connection() as connection:
        outcomes = [send(session, delivery_id, settings, connection) for _ in range(3)]

    assert outcomes == [SendOutcome.RETRY, SendOutcome.RETRY, SendOutcome.FAILED]
    delivery = session.get_one(Delivery, delivery_id)
    # Backed off 1 then 2 minutes before giving up.
    assert delivery.next_attempt_at == NOW + timedelta(minutes=2)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert delivery.last_error is not None and "SMTP unavailable" in delivery.last_error
    assert delivery.paper_ids == []


def test_queued_deliveries_that_lost_their_task_are_found_again(session: Session) -> None:
    reader = make_subscriber(session, send_hour=0)
    [lost] = claim_due_deliveries(session, now=NOW - timedelta(hours=1))
    [fresh] = claim_due_deliveries(session, now=NOW + timedelta(days=1))
    sent = Delivery(
        subscriber_id=reader.id,
        edition="2026-11-19",
        status=DeliveryStatus.SENT,
        next_attempt_at=NOW - timedelta(days=2),
    )
    session.add(sent)
    session.flush()

    assert stale_deliveries(session, now=NOW) == [lost]
    assert fresh not in stale_deliveries(session, now=NOW + timedelta(days=1, minutes=5))


def test_retry_delays_grow_and_are_capped() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 10)] == [60, 120, 240, 3600]


def test_a_failed_send_does_not_count_its_papers_as_sent(
    session: Session, settings: Settings, smtp_sink: SmtpSink
) -> None:
    paper = make_paper(session)
    reader = make_subscriber(session, send_hour=0)
    [failed] = claim_due_deliveries(session, now=NOW)
    down = SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=5))
    with down.connection() as connection:
        send(session, failed, settings, connection)
    picks = ranker().pick(session, reader, now=NOW).picks
    assert [p.paper.id for p in picks] == [paper.id]


def test_deliveries_are_ledgered_per_subscriber_and_edition(session: Session) -> None:
    make_subscriber(session, send_hour=0)
    make_subscriber(session, send_hour=0)
    claimed = claim_due_deliveries(session, now=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    rows = session.execute(select(Delivery.subscriber_id, Delivery.edition)).all()
    assert len(claimed) == 2 and len({tuple(r) for r in rows}) == 2


def test_a_day_with_nothing_relevant_is_skipped_with_the_reason(
    session: Session, settings: Settings, connection: SmtpConnection, smtp_sink: SmtpSink
) -> None:
    make_paper(session, title="Compilers for tensor programs", upvotes=50)
    make_subscriber(session, send_hour=0, interests="protein folding")
    [delivery_id] = claim_due_deliveries(session, now=NOW)
    assert send(session, delivery_id, settings, connection) == SendOutcome.SKIPPED
    assert smtp_sink.files() == []
    assert session.get_one(Delivery, delivery_id).last_error == "nothing relevant enough today"
