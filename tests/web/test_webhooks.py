"""Provider webhooks through the ASGI app: SES over SNS and Postmark, with payloads
shaped as their documentation shows them and the module's real database.

SNS messages are signed as Amazon signs them, with a key and certificate made
here; the certificate is served by the injected fetch at the documentation's
SigningCertURL, since Amazon's hosts are outside the machine.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from config.settings import Settings
from digest.bounces.models import MailEventRecord
from digest.db.engine import make_session_factory
from digest.db.unit_of_work import unit_of_work
from digest.delivery.compose import digest_message_id
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.bounces import BounceAddresses
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.web.app import create_app
from tests.sns_signing import CERT_URL, TOPIC_ARN, RecordingFetch, SnsSigner, fixture, sns_time
from tests.web.readers import make_reader, subscriber

POSTMARK_USER = "postmark"
POSTMARK_PASSWORD = "correct horse battery staple"
EDITION = "2026-12-04"


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner(datetime.now(UTC))


@pytest.fixture
def fetch(signer: SnsSigner) -> RecordingFetch:
    return RecordingFetch({CERT_URL: signer.pem})


@pytest.fixture
def hook_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        ses_topic_arn=f"arn:aws:sns:eu-west-1:123456789012:other, {TOPIC_ARN}",
        postmark_webhook_user=POSTMARK_USER,
        postmark_webhook_password=POSTMARK_PASSWORD,
    )


@pytest.fixture
def client(hook_settings: Settings, fetch: RecordingFetch) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings, provider_fetch=fetch)) as client:
        yield client


@pytest.fixture
def db(database_engine: Engine) -> Engine:
    return database_engine


def sent_digest(engine: Engine, reader: Subscriber) -> Delivery:
    with unit_of_work(make_session_factory(engine)) as session:
        delivery = Delivery(
            subscriber_id=reader.id,
            edition=EDITION,
            status=DeliveryStatus.SENT,
            message_id=digest_message_id(
                edition=EDITION, subscriber_id=reader.id, domain="example.org"
            ),
        )
        session.add(delivery)
        session.flush()
        session.expunge(delivery)
        return delivery


def events_of(engine: Engine, reader: Subscriber) -> list[MailEventRecord]:
    with unit_of_work(make_session_factory(engine)) as session:
        rows = list(
            session.scalars(
                select(MailEventRecord)
                .where(MailEventRecord.subscriber_id == reader.id)
                .order_by(MailEventRecord.id)
            )
        )
        session.expunge_all()
        return rows


def status(engine: Engine, reader: Subscriber) -> SubscriberStatus:
    found = subscriber(engine, reader.email)
    assert found is not None
    return found.status


def ses_bounce(reader: Subscriber, delivery: Delivery | None, **bounce: Any) -> dict[str, Any]:
    """The documentation's "bounce notification with a DSN", about our reader's
    digest: their address, our Message-ID in the original headers."""
    notification = fixture("ses_bounce_with_dsn.json")
    notification["bounce"]["bouncedRecipients"][0]["emailAddress"] = reader.email
    notification["bounce"].update(bounce)
    mail = notification["mail"]
    mail["destination"] = [reader.email]
    message_id = delivery.message_id if delivery else "<unrelated@example.net>"
    for header in mail["headers"]:
        if header["name"] == "Message-ID":
            header["value"] = message_id
    mail["commonHeaders"]["messageId"] = message_id
    return notification


def post_sns(client: TestClient, message: dict[str, Any]) -> Any:
    # As SNS posts: text/plain, the type in a header of its own.
    return client.post(
        "/webhooks/ses",
        content=json.dumps(message, indent=2),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": message["Type"],
            "x-amz-sns-message-id": message["MessageId"],
            "x-amz-sns-topic-arn": message["TopicArn"],
            "User-Agent": "Amazon Simple Notification Service Agent",
        },
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_ses_bounce_bounces_the_reader_of_that_digest(
    client: TestClient, db: Engine, signer: SnsSigner, version: str
) -> None:
    reader = make_reader(db)
    delivery = sent_digest(db, reader)
    now = datetime.now(UTC)

    response = post_sns(
        client, signer.notification(ses_bounce(reader, delivery), now=now, version=version)
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 1, "unknown": 0}
    assert status(db, reader) == SubscriberStatus.BOUNCED
    [event] = events_of(db, reader)
    assert (event.source, event.kind, event.delivery_id, event.status) == (
        "ses",
        "hard_bounce",
        delivery.id,
        "5.1.1",
    )


def test_an_ses_complaint_unsubscribes_the_reader(
    client: TestClient, db: Engine, signer: SnsSigner
) -> None:
    reader = make_reader(db)
    # Event publishing's complaint record, about our reader.
    record = fixture("ses_event_complaint.json")
    record["complaint"]["complainedRecipients"][0]["emailAddress"] = reader.email.upper()

    response = post_sns(client, signer.notification(record, now=datetime.now(UTC)))

    assert response.status_code == 200, response.text
    assert status(db, reader) == SubscriberStatus.UNSUBSCRIBED


def test_our_envelope_sender_names_the_digest_without_original_headers(
    client: TestClient, db: Engine, signer: SnsSigner, hook_settings: Settings
) -> None:
    reader = make_reader(db)
    delivery = sent_digest(db, reader)
    notification = ses_bounce(reader, None)
    for name in ("headers", "commonHeaders", "headersTruncated"):
        del notification["mail"][name]
    notification["mail"]["source"] = BounceAddresses(
        hook_settings.secret_key, "example.org"
    ).for_delivery(delivery.id)

    post_sns(client, signer.notification(notification, now=datetime.now(UTC)))

    [event] = events_of(db, reader)
    assert event.delivery_id == delivery.id


def test_a_retried_notification_is_counted_once(
    client: TestClient, db: Engine, signer: SnsSigner
) -> None:
    reader = make_reader(db)
    delivery = sent_digest(db, reader)
    message = signer.notification(
        ses_bounce(reader, delivery, bounceType="Transient", bounceSubType="MailboxFull"),
        now=datetime.now(UTC),
    )

    for _ in range(3):
        assert post_sns(client, message).status_code == 200

    assert len(events_of(db, reader)) == 1
    # One soft bounce, not three: below the limit, the reader still gets mail.
    assert status(db, reader) == SubscriberStatus.ACTIVE


def test_a_tampered_notification_is_refused_and_changes_nothing(
    client: TestClient, db: Engine, signer: SnsSigner
) -> None:
    reader, victim = make_reader(db), make_reader(db)
    message = signer.notification(ses_bounce(reader, None), now=datetime.now(UTC))
    # Someone who caught a real notification points it at another reader.
    message["Message"] = message["Message"].replace(reader.email, victim.email)

    response = post_sns(client, message)

    assert response.status_code == 403
    assert status(db, victim) == SubscriberStatus.ACTIVE
    assert events_of(db, victim) == events_of(db, reader) == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
def test_a_certificate_from_elsewhere_is_never_fetched(
    client: TestClient, db: Engine, signer: SnsSigner, fetch: RecordingFetch, cert_url: str
) -> None:
    reader = make_reader(db)
    fetch.answers[cert_url] = signer.pem
    message = fixture("sns_notification.json") | {
        "Message": json.dumps(ses_bounce(reader, None)),
        "Timestamp": sns_time(datetime.now(UTC)),
        "SigningCertURL": cert_url,
    }

    response = post_sns(client, signer.sign(message))

    assert response.status_code == 403
    assert fetch.calls == []
    assert status(db, reader) == SubscriberStatus.ACTIVE


def test_another_accounts_topic_is_refused(
    client: TestClient, db: Engine, signer: SnsSigner
) -> None:
    reader = make_reader(db)
    message = fixture("sns_notification.json") | {
        "Message": json.dumps(ses_bounce(reader, None)),
        "Timestamp": sns_time(datetime.now(UTC)),
        "TopicArn": "arn:aws:sns:us-west-2:999999999999:MyTopic",
    }

    response = post_sns(client, signer.sign(message))

    assert response.status_code == 403
    assert status(db, reader) == SubscriberStatus.ACTIVE


def test_a_subscription_is_confirmed_by_getting_its_url_once(
    client: TestClient, signer: SnsSigner, fetch: RecordingFetch
) -> None:
    confirmation = fixture("sns_subscription_confirmation.json")
    confirmation["Timestamp"] = sns_time(datetime.now(UTC))
    fetch.answers[confirmation["SubscribeURL"]] = b"<ConfirmSubscriptionResponse/>"

    response = post_sns(client, signer.sign(confirmation))

    assert response.status_code == 200, response.text
    assert fetch.calls == [CERT_URL, confirmation["SubscribeURL"]]


def test_a_subscribe_url_off_sns_is_not_visited(
    client: TestClient, signer: SnsSigner, fetch: RecordingFetch
) -> None:
    confirmation = fixture("sns_subscription_confirmation.json")
    confirmation["Timestamp"] = sns_time(datetime.now(UTC))
    confirmation["SubscribeURL"] = "https://internal.example/admin?delete=all"

    response = post_sns(client, signer.sign(confirmation))

    assert response.status_code == 403
    assert fetch.calls == [CERT_URL]


def test_an_unreachable_certificate_asks_sns_to_retry(
    client: TestClient, db: Engine, signer: SnsSigner, fetch: RecordingFetch
) -> None:
    reader = make_reader(db)
    del fetch.answers[CERT_URL]

    response = post_sns(
        client, signer.notification(ses_bounce(reader, None), now=datetime.now(UTC))
    )

    # 5xx: SNS retries; a 4xx it would not.
    assert response.status_code == 502
    assert status(db, reader) == SubscriberStatus.ACTIVE


def test_an_unsubscribe_confirmation_is_taken_and_does_nothing(
    client: TestClient, signer: SnsSigner, fetch: RecordingFetch
) -> None:
    message = fixture("sns_unsubscribe_confirmation.json")
    message["Timestamp"] = sns_time(datetime.now(UTC))

    assert post_sns(client, signer.sign(message)).status_code == 200
    assert fetch.calls == [CERT_URL]


def test_a_delivery_notification_records_nothing(
    client: TestClient, db: Engine, signer: SnsSigner
) -> None:
    response = post_sns(
        client, signer.notification(fixture("ses_delivery.json"), now=datetime.now(UTC))
    )

    assert response.json() == {"recorded": 0, "unknown": 0}


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", json.dumps({"Type": "Notification"}).encode(), b"\xff" * 10]
)
def test_what_is_no_sns_message_is_a_bad_request(client: TestClient, body: bytes) -> None:
    response = client.post("/webhooks/ses", content=body, headers={"Content-Type": "text/plain"})

    assert response.status_code == 400


def test_a_type_header_contradicting_the_body_is_a_bad_request(
    client: TestClient, signer: SnsSigner
) -> None:
    message = signer.notification(fixture("ses_delivery.json"), now=datetime.now(UTC))

    response = client.post(
        "/webhooks/ses",
        content=json.dumps(message),
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
    )

    assert response.status_code == 400


def test_a_signed_notification_of_plain_text_is_taken_and_ignored(
    client: TestClient, signer: SnsSigner
) -> None:
    # The documentation's own notification: "Hello world!" (SES's topic validation
    # message is plain text too).
    message = fixture("sns_notification.json")
    message["Timestamp"] = sns_time(datetime.now(UTC))

    response = post_sns(client, signer.sign(message))

    assert (response.status_code, response.json()) == (200, {"recorded": 0, "unknown": 0})


def test_a_signed_bounce_of_the_wrong_shape_is_a_bad_request(
    client: TestClient, signer: SnsSigner
) -> None:
    notification = fixture("ses_bounce_with_dsn.json")
    del notification["bounce"]

    response = post_sns(client, signer.notification(notification, now=datetime.now(UTC)))

    assert response.status_code == 400


def test_a_body_past_the_limit_is_refused_unread(client: TestClient) -> None:
    response = client.post("/webhooks/ses", content=b"{" + b" " * (1024 * 1024) + b"}", headers={})

    assert response.status_code == 413


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def post_postmark(
    client: TestClient, record: dict[str, Any], password: str = POSTMARK_PASSWORD
) -> Any:
    # As Postmark posts: JSON, with the credentials of the webhook's URL.
    return client.post(
        "/webhooks/postmark",
        content=json.dumps(record),
        headers={"Content-Type": "application/json", **basic(POSTMARK_USER, password)},
    )


def test_a_postmark_hard_bounce_bounces_the_reader(client: TestClient, db: Engine) -> None:
    reader = make_reader(db)
    record = fixture("postmark_bounce.json") | {"Email": reader.email}

    response = post_postmark(client, record)

    assert response.status_code == 200, response.text
    assert status(db, reader) == SubscriberStatus.BOUNCED
    [event] = events_of(db, reader)
    assert (event.source, event.kind, event.message_id) == (
        "postmark",
        "hard_bounce",
        "883953f4-6105-42a2-a16a-77a8eac79483",
    )


def test_a_postmark_spam_complaint_unsubscribes_the_reader(client: TestClient, db: Engine) -> None:
    reader = make_reader(db)
    record = fixture("postmark_spam_complaint.json") | {"Email": reader.email}

    assert post_postmark(client, record).status_code == 200
    assert status(db, reader) == SubscriberStatus.UNSUBSCRIBED


def test_a_retried_postmark_webhook_is_counted_once(client: TestClient, db: Engine) -> None:
    reader = make_reader(db)
    record = fixture("postmark_bounce.json") | {
        "Email": reader.email,
        "Type": "SoftBounce",
        "TypeCode": 4096,
        "MessageID": f"retried-{reader.id}",
    }

    for _ in range(3):
        assert post_postmark(client, record).status_code == 200

    assert len(events_of(db, reader)) == 1
    assert status(db, reader) == SubscriberStatus.ACTIVE


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(POSTMARK_USER, "wrong"),
        basic("someone", POSTMARK_PASSWORD),
        {"Authorization": "Bearer " + POSTMARK_PASSWORD},
    ],
)
def test_wrong_postmark_credentials_are_refused_and_change_nothing(
    client: TestClient, db: Engine, headers: dict[str, str]
) -> None:
    reader = make_reader(db)
    record = fixture("postmark_bounce.json") | {"Email": reader.email}

    response = client.post("/webhooks/postmark", content=json.dumps(record), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert status(db, reader) == SubscriberStatus.ACTIVE


def test_a_postmark_post_that_is_no_record_is_a_bad_request(client: TestClient) -> None:
    response = client.post(
        "/webhooks/postmark", content=b"[1]", headers=basic(POSTMARK_USER, POSTMARK_PASSWORD)
    )

    assert response.status_code == 400


def test_an_unknown_address_is_taken_and_dropped(client: TestClient) -> None:
    record = fixture("postmark_bounce.json") | {"Email": "nobody-here@example.net"}

    response = post_postmark(client, record)

    assert response.json() == {"recorded": 0, "unknown": 1}


def test_unconfigured_webhooks_do_not_exist(
    make_settings: Callable[..., Settings], database_url: str, signer: SnsSigner
) -> None:
    settings = make_settings(database_url=database_url)
    with TestClient(create_app(settings, provider_fetch=RecordingFetch({}))) as client:
        ses = post_sns(
            client, signer.notification(fixture("ses_delivery.json"), now=datetime.now(UTC))
        )
        postmark = client.post(
            "/webhooks/postmark",
            content=json.dumps(fixture("postmark_bounce.json")),
            headers=basic(POSTMARK_USER, POSTMARK_PASSWORD),
        )

    assert (ses.status_code, postmark.status_code) == (404, 404)


def test_recorded_reports_are_counted_on_the_metrics_page(client: TestClient, db: Engine) -> None:
    reader = make_reader(db)
    series = 'digest_mail_events_total{kind="complaint",result="unsubscribed",source="postmark"}'

    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(series):
                return float(line.split()[-1])
        return 0.0

    before = count()
    # Postmark's MessageID is unique per message; the example's is not.
    record = fixture("postmark_spam_complaint.json") | {
        "Email": reader.email,
        "MessageID": f"00000000-0000-0000-0000-{reader.id:012d}",
    }
    post_postmark(client, record)

    assert count() == before + 1
