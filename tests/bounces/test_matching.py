"""A reported Message-ID finds the digest sent with it, and nothing else."""

from __future__ import annotations

from sqlalchemy.orm import Session

from digest.bounces.events import EventKind, MailEvent
from digest.bounces.matching import delivery_for_message_id, with_delivery
from digest.bounces.policy import BouncePolicy
from digest.bounces.recording import record_event
from digest.delivery.compose import digest_message_id
from digest.delivery.models import Delivery, DeliveryStatus
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from tests.factories import NOW, make_subscriber


def sent(session: Session, reader: Subscriber, edition: str) -> Delivery:
    delivery = Delivery(
        subscriber_id=reader.id,
        edition=edition,
        status=DeliveryStatus.SENT,
        message_id=digest_message_id(
            edition=edition, subscriber_id=reader.id, domain="example.org"
        ),
        created_at=NOW,
    )
    session.add(delivery)
    session.flush()
    return delivery


def test_a_digests_message_id_finds_its_delivery(session: Session) -> None:
    reader = make_subscriber(session)
    daily, weekly = sent(session, reader, "2026-12-04"), sent(session, reader, "2026-W49")

    assert delivery_for_message_id(session, str(daily.message_id)) == daily.id
    assert delivery_for_message_id(session, str(weekly.message_id)) == weekly.id
    # As some reports give it, without the angle brackets.
    assert delivery_for_message_id(session, str(daily.message_id).strip("<>")) == daily.id


def test_other_message_ids_find_nothing(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = sent(session, reader, "2026-12-04")
    other_domain = str(delivery.message_id).replace("example.org", "example.net")

    for message_id in (
        other_domain,
        f"<digest.2026-12-05.{reader.id}@example.org>",
        "<0000014644fe5ef6-9a483358@email.amazonses.com>",
        "custom-message-ID",
        "",
    ):
        assert delivery_for_message_id(session, message_id) is None


def test_a_report_by_message_id_lands_on_the_digests_reader(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = sent(session, reader, "2026-12-04")
    # The address the report gives is not the reader's any more (they changed it).
    report = MailEvent(
        kind=EventKind.HARD_BOUNCE,
        source="ses",
        occurred_at=NOW,
        recipient="old-address@example.net",
        message_id=delivery.message_id,
    )

    matched = with_delivery(session, report)
    result = record_event(session, matched, now=NOW, policy=BouncePolicy())

    assert matched.delivery_id == delivery.id
    assert result is not None and result.subscriber_id == reader.id
    assert reader.status == SubscriberStatus.BOUNCED


def test_a_report_that_names_its_reader_is_left_as_it_is(session: Session) -> None:
    reader = make_subscriber(session)
    delivery = sent(session, reader, "2026-12-04")
    report = MailEvent(
        kind=EventKind.COMPLAINT,
        source="ses",
        occurred_at=NOW,
        recipient=reader.email,
        subscriber_id=reader.id,
        message_id=delivery.message_id,
    )

    assert with_delivery(session, report) is report
