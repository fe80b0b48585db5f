"""Refusals at send time, end to end: a digest or notice refused for good bounces
its reader in the unit of work that records the outcome; other refusals do not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.events import EventKind
from digest.bounces.models import MailEventRecord
from digest.delivery.ledger import Outcome, claim_due_deliveries
from digest.delivery.models import Delivery, SkipReason
from digest.mail.sender import SendError
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import Notice
from tests.bounces.refusing import RefusingServer
from tests.factories import NOW, make_paper, make_subscriber


def status_of(session: Session, reader: Subscriber) -> SubscriberStatus:
    session.expire_all()
    return session.get_one(Subscriber, reader.id).status


def events_of(session: Session, reader: Subscriber) -> list[MailEventRecord]:
    return list(
        session.scalars(
            select(MailEventRecord)
            .where(MailEventRecord.subscriber_id == reader.id)
            .order_by(MailEventRecord.id)
        )
    )


def counted(kind: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "digest_mail_events_total", {"kind": kind, "source": "smtp", "result": result}
    )
    return value or 0.0


def send_digests(session: Session, runtime: Runtime, *, day: int = 0) -> dict[int, Outcome]:
    moment = NOW + timedelta(days=day)
    claimed = claim_due_deliveries(session, now=moment)
    runtime.rank_batch(claimed, now=moment)
    return runtime.mail_batch(claimed, now=moment).outcomes


def test_a_digest_refused_at_rcpt_bounces_its_reader_and_no_digest_follows(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    make_paper(session, upvotes=5)
    gone = make_subscriber(session, email="gone.reader@example.org", send_hour=0)
    fine = make_subscriber(session, email="fine.reader@example.org", send_hour=0)
    runtime = make_runtime(smtp_url=refusing_smtp.url)
    before = counted("hard_bounce", "bounced")

    outcomes = send_digests(session, runtime)

    by_reader = {
        session.get_one(Delivery, i).subscriber_id: (i, outcome) for i, outcome in outcomes.items()
    }
    delivery_id, outcome = by_reader[gone.id]
    assert outcome == Outcome.FAILED and by_reader[fine.id][1] == Outcome.SENT
    assert status_of(session, gone) == SubscriberStatus.BOUNCED
    assert status_of(session, fine) == SubscriberStatus.ACTIVE
    [event] = events_of(session, gone)
    assert (event.kind, event.source, event.status, event.delivery_id) == (
        EventKind.HARD_BOUNCE,
        "smtp",
        "5.1.1",
        delivery_id,
    )
    assert event.raw.startswith("550 5.1.1 <gone.reader@example.org>: Recipient address")
    assert "User unknown" in event.reason
    assert event.message_id is not None and event.message_id.startswith("<")
    assert session.get_one(Delivery, delivery_id).last_error == event.raw
    assert counted("hard_bounce", "bounced") == before + 1

    # The next day only the reader who can receive mail gets a digest.
    make_paper(session, upvotes=9)
    tomorrow = send_digests(session, runtime, day=1)
    assert [session.get_one(Delivery, i).subscriber_id for i in tomorrow] == [fine.id]
    assert refusing_smtp.handler.accepted == [fine.email, fine.email]


def test_a_ranked_digest_of_a_reader_bounced_meanwhile_is_skipped(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    make_paper(session, upvotes=5)
    reader = make_subscriber(session, send_hour=0)
    runtime = make_runtime(smtp_url=refusing_smtp.url)
    claimed = claim_due_deliveries(session, now=NOW)
    runtime.rank_batch(claimed, now=NOW)
    reader.status = SubscriberStatus.BOUNCED
    session.flush()

    assert runtime.mail_batch(claimed, now=NOW).outcomes == {claimed[0]: Outcome.SKIPPED}
    delivery = session.get_one(Delivery, claimed[0])
    assert delivery.skip_reason == SkipReason.BOUNCED
    assert refusing_smtp.handler.accepted == []


@pytest.mark.parametrize("local", ["blocked", "content"])
def test_a_policy_or_content_refusal_fails_the_digest_but_keeps_the_reader(
    session: Session,
    make_runtime: Callable[..., Runtime],
    refusing_smtp: RefusingServer,
    local: str,
) -> None:
    make_paper(session, upvotes=5)
    reader = make_subscriber(session, email=f"{local}.reader@example.org", send_hour=0)
    runtime = make_runtime(smtp_url=refusing_smtp.url)

    assert list(send_digests(session, runtime).values()) == [Outcome.FAILED]
    assert status_of(session, reader) == SubscriberStatus.ACTIVE
    assert events_of(session, reader) == []


def test_a_refused_sender_fails_every_digest_and_bounces_no_one(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    make_paper(session, upvotes=5)
    readers = [make_subscriber(session, send_hour=0) for _ in range(2)]
    refusing_smtp.handler.refuse_sender = True
    runtime = make_runtime(smtp_url=refusing_smtp.url)

    assert list(send_digests(session, runtime).values()) == [Outcome.FAILED] * 2
    assert {status_of(session, r) for r in readers} == {SubscriberStatus.ACTIVE}
    assert [events_of(session, r) for r in readers] == [[], []]


def test_a_full_mailbox_is_counted_and_bounces_the_reader_at_the_limit(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    reader = make_subscriber(
        session, email="full.reader@example.org", send_hour=0, confirmed_at=NOW - timedelta(30)
    )
    runtime = make_runtime(smtp_url=refusing_smtp.url, bounce_soft_limit=2)

    make_paper(session, upvotes=5)
    send_digests(session, runtime)
    assert status_of(session, reader) == SubscriberStatus.ACTIVE
    make_paper(session, upvotes=6)
    send_digests(session, runtime, day=1)

    assert status_of(session, reader) == SubscriberStatus.BOUNCED
    assert [(e.kind, e.status) for e in events_of(session, reader)] == [
        (EventKind.SOFT_BOUNCE, "5.2.2"),
        (EventKind.SOFT_BOUNCE, "5.2.2"),
    ]


def test_a_confirmation_refused_at_rcpt_bounces_the_pending_reader(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    reader = make_subscriber(
        session, email="gone.new@example.org", status=SubscriberStatus.PENDING, confirmed_at=None
    )
    runtime = make_runtime(smtp_url=refusing_smtp.url)

    with pytest.raises(SendError):
        runtime.send_notice(Notice.CONFIRM, reader.id, now=NOW)

    assert status_of(session, reader) == SubscriberStatus.BOUNCED
    [event] = events_of(session, reader)
    assert (event.kind, event.status, event.delivery_id) == (EventKind.HARD_BOUNCE, "5.1.1", None)


def test_an_address_change_refused_at_rcpt_bounces_no_one(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    # The confirmation goes to the new address; the reader's own address is fine.
    reader = make_subscriber(session, pending_email="gone.typo@example.org")
    runtime = make_runtime(smtp_url=refusing_smtp.url)

    with pytest.raises(SendError):
        runtime.send_notice(Notice.CONFIRM_EMAIL_CHANGE, reader.id, now=NOW)

    assert status_of(session, reader) == SubscriberStatus.ACTIVE
    assert session.scalars(select(MailEventRecord)).all() == []


def test_a_bounced_reader_gets_no_notice_but_a_fresh_confirmation(
    session: Session, make_runtime: Callable[..., Runtime], refusing_smtp: RefusingServer
) -> None:
    reader = make_subscriber(session, status=SubscriberStatus.BOUNCED)
    runtime = make_runtime(smtp_url=refusing_smtp.url)

    for notice in (Notice.NEW_LINKS, Notice.ALREADY_SUBSCRIBED, Notice.CONFIRM):
        assert runtime.send_notice(notice, reader.id, now=NOW) is False
    assert refusing_smtp.handler.accepted == []
