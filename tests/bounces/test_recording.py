"""record_event on both backends: what each kind of event does to the reader."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.events import EventKind, MailEvent
from digest.bounces.models import MailEventRecord
from digest.bounces.policy import BouncePolicy
from digest.bounces.recording import Action, record_event
from digest.delivery.models import Delivery, DeliveryStatus
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import erase_subscriber
from tests.factories import NOW, make_subscriber

POLICY = BouncePolicy(soft_limit=3, soft_window=timedelta(days=7))


def event(kind: EventKind, recipient: str = "", **fields: object) -> MailEvent:
    values: dict[str, object] = {
        "kind": kind,
        "source": "dsn",
        "occurred_at": NOW,
        "recipient": recipient,
    }
    values.update(fields)
    return MailEvent(**values)  # type: ignore[arg-type]


def delivery_for(session: Session, subscriber: Subscriber, edition: str = "2026-11-21") -> Delivery:
    delivery = Delivery(
        subscriber_id=subscriber.id, edition=edition, status=DeliveryStatus.SENT, created_at=NOW
    )
    session.add(delivery)
    session.flush()
    return delivery


def status_of(session: Session, reader: Subscriber) -> SubscriberStatus:
    """The reader's status as the database has it now."""
    session.flush()
    return session.scalars(select(Subscriber.status).where(Subscriber.id == reader.id)).one()


def stored(session: Session, subscriber: Subscriber) -> list[MailEventRecord]:
    return list(
        session.scalars(
            select(MailEventRecord)
            .where(MailEventRecord.subscriber_id == subscriber.id)
            .order_by(MailEventRecord.id)
        )
    )


def test_a_hard_bounce_bounces_the_reader_and_keeps_the_evidence(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = delivery_for(session, reader)

    recorded = record_event(
        session,
        event(
            EventKind.HARD_BOUNCE,
            recipient="someone-else@example.org",
            delivery_id=delivery.id,
            status="5.1.1",
            reason="user unknown",
            raw="550 5.1.1 <x@example.org>: user unknown",
        ),
        now=NOW + timedelta(minutes=5),
        policy=POLICY,
    )

    assert recorded is not None
    assert (recorded.subscriber_id, recorded.action) == (reader.id, Action.BOUNCED)
    assert status_of(session, reader) == SubscriberStatus.BOUNCED
    [row] = stored(session, reader)
    assert (row.id, row.delivery_id, row.kind, row.status, row.reason) == (
        recorded.event_id,
        delivery.id,
        EventKind.HARD_BOUNCE,
        "5.1.1",
        "user unknown",
    )
    assert row.raw == "550 5.1.1 <x@example.org>: user unknown"
    assert row.received_at == NOW + timedelta(minutes=5)


def test_the_reader_is_found_by_subscriber_id_or_by_address_in_any_case(
    session: Session,
) -> None:
    by_id = make_subscriber(session)
    by_address = make_subscriber(session, email="mixed.case@example.org")

    first = record_event(
        session, event(EventKind.HARD_BOUNCE, subscriber_id=by_id.id), now=NOW, policy=POLICY
    )
    second = record_event(
        session,
        event(EventKind.HARD_BOUNCE, recipient=" <Mixed.Case@EXAMPLE.org>"),
        now=NOW,
        policy=POLICY,
    )

    assert first is not None and first.subscriber_id == by_id.id
    assert second is not None and second.subscriber_id == by_address.id
    assert status_of(session, by_address) == SubscriberStatus.BOUNCED


def test_an_event_about_nobody_we_know_is_dropped(session: Session) -> None:
    before = session.scalar(select(MailEventRecord.id).limit(1))
    assert (
        record_event(
            session,
            event(EventKind.HARD_BOUNCE, recipient="stranger@example.net", delivery_id=10**9),
            now=NOW,
            policy=POLICY,
        )
        is None
    )
    assert session.scalar(select(MailEventRecord.id).limit(1)) == before


def test_soft_bounces_bounce_the_reader_at_the_limit_within_the_window(
    session: Session,
) -> None:
    reader = make_subscriber(session, confirmed_at=NOW - timedelta(days=30))
    # One outside the window (8 days before the last) does not count.
    days = [0, 8, 9]
    actions = [
        record_event(
            session,
            event(
                EventKind.SOFT_BOUNCE,
                reader.email,
                occurred_at=NOW + timedelta(days=day),
                message_id=f"<m{day}@example.org>",
            ),
            now=NOW + timedelta(days=day),
            policy=POLICY,
        )
        for day in days
    ]
    assert [a.action for a in actions if a] == [Action.COUNTED] * 3
    assert status_of(session, reader) == SubscriberStatus.ACTIVE

    third = record_event(
        session,
        event(
            EventKind.SOFT_BOUNCE,
            reader.email,
            occurred_at=NOW + timedelta(days=10),
            message_id="<m10@example.org>",
        ),
        now=NOW + timedelta(days=10),
        policy=POLICY,
    )
    assert third is not None and third.action == Action.BOUNCED
    assert status_of(session, reader) == SubscriberStatus.BOUNCED
    assert len(stored(session, reader)) == 4


def test_soft_bounces_from_before_the_reader_confirmed_again_do_not_count(
    session: Session,
) -> None:
    reader = make_subscriber(session, confirmed_at=NOW - timedelta(days=30))
    for hours in (0, 1):
        record_event(
            session,
            event(EventKind.SOFT_BOUNCE, reader.email, occurred_at=NOW + timedelta(hours=hours)),
            now=NOW,
            policy=POLICY,
        )
    reader.confirmed_at = NOW + timedelta(hours=2)

    after = record_event(
        session,
        event(EventKind.SOFT_BOUNCE, reader.email, occurred_at=NOW + timedelta(hours=3)),
        now=NOW,
        policy=POLICY,
    )

    assert after is not None and after.action == Action.COUNTED
    assert status_of(session, reader) == SubscriberStatus.ACTIVE


def test_a_complaint_unsubscribes_at_once(session: Session) -> None:
    reader = make_subscriber(session)
    later = NOW + timedelta(hours=1)

    recorded = record_event(
        session,
        event(EventKind.COMPLAINT, reader.email, source="arf", reason="abuse"),
        now=later,
        policy=POLICY,
    )

    assert recorded is not None and recorded.action == Action.UNSUBSCRIBED
    assert status_of(session, reader) == SubscriberStatus.UNSUBSCRIBED
    assert reader.unsubscribed_at == later


def test_an_unsubscribed_reader_who_bounces_stays_unsubscribed(session: Session) -> None:
    reader = make_subscriber(
        session, status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=NOW - timedelta(days=1)
    )

    recorded = record_event(
        session, event(EventKind.HARD_BOUNCE, reader.email), now=NOW, policy=POLICY
    )

    assert recorded is not None and recorded.action == Action.RECORDED
    assert status_of(session, reader) == SubscriberStatus.UNSUBSCRIBED
    assert len(stored(session, reader)) == 1


def test_the_same_report_twice_is_stored_and_counted_once(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = delivery_for(session, reader)
    retried = event(EventKind.SOFT_BOUNCE, source="ses", delivery_id=delivery.id, status="4.2.2")

    results = [record_event(session, retried, now=NOW, policy=POLICY) for _ in range(3)]

    assert [r.action for r in results if r] == [
        Action.COUNTED,
        Action.DUPLICATE,
        Action.DUPLICATE,
    ]
    assert len({r.event_id for r in results if r}) == 1
    assert len(stored(session, reader)) == 1
    # Another kind or status about the same message is another event.
    other = record_event(
        session,
        event(EventKind.SOFT_BOUNCE, source="ses", delivery_id=delivery.id, status="4.4.7"),
        now=NOW,
        policy=POLICY,
    )
    assert other is not None and other.action == Action.COUNTED


def test_one_report_about_several_recipients_bounces_each_of_them(session: Session) -> None:
    # SES's "bounce without DSN" example names two recipients of one message.
    jane, richard = make_subscriber(session), make_subscriber(session)
    report = [
        event(EventKind.HARD_BOUNCE, reader.email, source="ses", message_id="<one@example.org>")
        for reader in (jane, richard)
    ]

    results = [record_event(session, e, now=NOW, policy=POLICY) for e in report]

    assert [r.action for r in results if r] == [Action.BOUNCED, Action.BOUNCED]
    assert status_of(session, jane) == status_of(session, richard) == SubscriberStatus.BOUNCED


def test_erasing_a_reader_erases_their_events(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = delivery_for(session, reader)
    record_event(
        session, event(EventKind.HARD_BOUNCE, delivery_id=delivery.id), now=NOW, policy=POLICY
    )
    reader_id = reader.id

    erase_subscriber(session, reader)
    session.flush()

    assert (
        session.scalars(
            select(MailEventRecord).where(MailEventRecord.subscriber_id == reader_id)
        ).all()
        == []
    )


def test_a_complaint_about_a_bounced_reader_keeps_them_bounced(session: Session) -> None:
    # Unsubscribed, they could come back from an old resubscribe link without opt-in.
    reader = make_subscriber(session, status=SubscriberStatus.BOUNCED)

    recorded = record_event(
        session, event(EventKind.COMPLAINT, reader.email, source="arf"), now=NOW, policy=POLICY
    )

    assert recorded is not None and recorded.action == Action.RECORDED
    assert status_of(session, reader) == SubscriberStatus.BOUNCED
    assert len(stored(session, reader)) == 1


def test_a_bounce_of_an_address_change_notice_is_not_the_subscribers(session: Session) -> None:
    # The notice went to the new address under the subscriber's own bounce address.
    reader = make_subscriber(session, pending_email="typo@example.org")

    recorded = record_event(
        session,
        event(EventKind.HARD_BOUNCE, "Typo@example.org", subscriber_id=reader.id),
        now=NOW,
        policy=POLICY,
    )

    assert recorded is None
    assert status_of(session, reader) == SubscriberStatus.ACTIVE
