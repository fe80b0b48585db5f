"""A bounced reader as the reader and the operator meet them: subscribing again from
the form (double opt-in), their data export and erasure, `digest status`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select

from config.settings import Settings
from digest.bounces.events import EventKind, MailEvent
from digest.bounces.models import MailEventRecord
from digest.cli.status import status_lines
from digest.clock import utcnow
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from tests.factories import NOW, make_subscriber

CONFIRM_LINK = re.compile(r"https://digest\.example\.org(/confirm/[\w.-]+)")


@pytest.fixture
def runtime(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Runtime]:
    """A runtime on the module's database, as the workers and the CLI have one."""
    runtime = Runtime(make_settings(database_url=database_url))
    yield runtime
    runtime.dispose()


def bounced_reader(runtime: Runtime, email: str, *, at: datetime = NOW) -> int:
    """A reader a digest bounced for, through record_event as a DSN would report it."""
    with unit_of_work(runtime.session_factory) as session:
        reader = make_subscriber(session, email=email, interests="old interests")
        delivery = Delivery(
            subscriber_id=reader.id,
            edition="2026-11-21",
            status=DeliveryStatus.SENT,
            created_at=NOW,
        )
        session.add(delivery)
        session.flush()
        delivery_id, reader_id = delivery.id, reader.id
    [recorded] = runtime.record_mail_events(
        [
            MailEvent(
                kind=EventKind.HARD_BOUNCE,
                source="dsn",
                occurred_at=at,
                recipient=email,
                delivery_id=delivery_id,
                status="5.1.1",
                reason="user unknown",
                raw="Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown",
            )
        ],
        now=at + timedelta(minutes=3),
    )
    assert recorded is not None and recorded.action == "bounced"
    return reader_id


def reader_row(engine: Engine, reader_id: int) -> Subscriber | None:
    with unit_of_work(make_session_factory(engine)) as session:
        found = session.get(Subscriber, reader_id)
        if found is not None:
            session.expunge(found)
        return found


def test_a_bounced_reader_who_subscribes_again_must_confirm_by_email(
    client: TestClient,
    smtp_sink: SmtpSink,
    database_engine: Engine,
    runtime: Runtime,
) -> None:
    reader_id = bounced_reader(runtime, "came.back@example.org")

    answer = client.post(
        "/", data={"email": "Came.Back@example.org", "frequency": "weekly", "interests": "new"}
    )

    assert answer.status_code == 200 and "Check your inbox" in answer.text
    pending = reader_row(database_engine, reader_id)
    assert pending is not None and pending.status == SubscriberStatus.PENDING
    assert pending.interests == "new"
    (confirmation,) = smtp_sink.messages()
    assert confirmation["To"] == "came.back@example.org"
    body = confirmation.get_body(preferencelist=("plain",))
    assert body is not None
    found = CONFIRM_LINK.search(body.get_content())
    assert found is not None
    confirmed = client.post(found.group(1))
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    active = reader_row(database_engine, reader_id)
    assert active is not None and active.status == SubscriberStatus.ACTIVE


def test_the_data_export_shows_the_bounce_and_erasing_removes_it(
    client: TestClient,
    database_engine: Engine,
    runtime: Runtime,
) -> None:
    reader_id = bounced_reader(runtime, "exported@example.org")
    reader = reader_row(database_engine, reader_id)
    assert reader is not None
    path = runtime.links.preferences(reader).removeprefix(runtime.settings.base_url)

    data = json.loads(client.get(f"{path}/data.json").text)

    assert data["status"] == "bounced"
    assert data["mail_events"] == [
        {
            "kind": "hard_bounce",
            "source": "dsn",
            "occurred_at": NOW.isoformat(),
            "received_at": (NOW + timedelta(minutes=3)).isoformat(),
            "digest_edition": "2026-11-21",
            "status": "5.1.1",
            "reason": "user unknown",
            "raw": "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown",
        }
    ]

    page = client.get(f"{path}/delete")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    assert client.post(f"{path}/delete", data={"csrf": token.group(1)}).status_code == 200
    with unit_of_work(make_session_factory(database_engine)) as session:
        left = select(func.count()).select_from(MailEventRecord)
        assert session.scalar(left.where(MailEventRecord.subscriber_id == reader_id)) == 0


def test_digest_status_counts_bounces_complaints_and_bounced_readers(
    database_engine: Engine, runtime: Runtime
) -> None:
    # A month after the other tests' events, so that the window holds only these.
    later = NOW + timedelta(days=30)
    bounced_reader(runtime, "status.one@example.org", at=later)
    with unit_of_work(runtime.session_factory) as session:
        complainer = make_subscriber(session).email
        old = make_subscriber(session).email
    runtime.record_mail_events(
        [
            MailEvent(EventKind.COMPLAINT, "arf", later, complainer, reason="abuse"),
            # Eight days old: outside the window `digest status` counts.
            MailEvent(EventKind.SOFT_BOUNCE, "dsn", later - timedelta(days=8), old),
        ],
        now=later,
    )

    lines = status_lines(runtime.status([], now=later + timedelta(hours=1)))

    start = lines.index("bounces and complaints (last 7 days)")
    assert lines[start + 1 :] == [
        "  hard_bounce: 1 (dsn 1)",
        "  soft_bounce: 0",
        "  complaint: 1 (arf 1)",
        f"  bounced readers: {reader_count(database_engine, SubscriberStatus.BOUNCED)}",
    ]
    assert reader_count(database_engine, SubscriberStatus.BOUNCED) >= 1


def reader_count(engine: Engine, status: SubscriberStatus) -> int:
    with unit_of_work(make_session_factory(engine)) as session:
        count = session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.status == status)
        )
        return count or 0


def test_metrics_show_recent_events_and_bounced_readers(
    client: TestClient, runtime: Runtime, database_engine: Engine
) -> None:
    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = client.get("/metrics")
        assert response.status_code == 200
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    recent = ("digest_mail_events_recent", frozenset({("kind", "complaint"), ("source", "ses")}))
    before = scrape()
    with unit_of_work(runtime.session_factory) as session:
        reader = make_subscriber(session).email
    runtime.record_mail_events([MailEvent(EventKind.COMPLAINT, "ses", utcnow(), reader)])
    bounced_reader(runtime, "scraped@example.org", at=utcnow())

    after = scrape()
    assert after[recent] == before.get(recent, 0) + 1
    assert after[("digest_bounced_subscribers", frozenset())] == reader_count(
        database_engine, SubscriberStatus.BOUNCED
    )
    assert after[("digest_bounced_subscribers", frozenset())] == (
        before[("digest_bounced_subscribers", frozenset())] + 1
    )
