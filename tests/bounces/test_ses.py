"""SES notifications, as its documentation shows them, read as mail events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.bounces.events import EventKind
from digest.bounces.ses import NotAnSesNotification, original_message_id, ses_events
from digest.mail.bounces import BounceAddresses
from tests.sns_signing import fixture

RECEIVED = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
ADDRESSES = BounceAddresses("test-secret-key", "example.org")


def test_a_permanent_bounce_with_a_dsn_is_a_hard_bounce() -> None:
    [event] = ses_events(
        fixture("ses_bounce_with_dsn.json"), addresses=ADDRESSES, received_at=RECEIVED
    )

    assert event.kind == EventKind.HARD_BOUNCE
    assert event.source == "ses"
    assert event.recipient == "jane@example.com"
    assert event.status == "5.1.1"
    assert event.reason == "smtp; 550 5.1.1 <jane@example.com>... User"
    assert event.occurred_at == datetime(2016, 1, 27, 14, 59, 38, 237000, tzinfo=UTC)
    # The original header, not SES's own id.
    assert event.message_id == "custom-message-ID"
    assert '"feedbackId"' in event.raw


def test_a_bounce_without_a_dsn_names_each_recipient() -> None:
    events = ses_events(
        fixture("ses_bounce_without_dsn.json"), addresses=ADDRESSES, received_at=RECEIVED
    )

    assert [(e.kind, e.recipient, e.status) for e in events] == [
        (EventKind.HARD_BOUNCE, "jane@example.com", None),
        (EventKind.HARD_BOUNCE, "richard@example.com", None),
    ]
    assert {e.reason for e in events} == {"Permanent/General"}


def test_a_complaint_is_a_complaint() -> None:
    [event] = ses_events(
        fixture("ses_complaint_with_feedback.json"), addresses=ADDRESSES, received_at=RECEIVED
    )

    assert (event.kind, event.recipient, event.reason) == (
        EventKind.COMPLAINT,
        "richard@example.com",
        "abuse",
    )


def test_event_publishing_records_read_the_same() -> None:
    [bounce] = ses_events(
        fixture("ses_event_bounce.json"), addresses=ADDRESSES, received_at=RECEIVED
    )
    [complaint] = ses_events(
        fixture("ses_event_complaint.json"), addresses=ADDRESSES, received_at=RECEIVED
    )

    assert (bounce.kind, bounce.recipient, bounce.status) == (
        EventKind.HARD_BOUNCE,
        "recipient@example.com",
        "5.1.1",
    )
    assert (complaint.kind, complaint.recipient) == (EventKind.COMPLAINT, "recipient@example.com")


def test_a_delivery_reports_nothing() -> None:
    assert ses_events(fixture("ses_delivery.json"), addresses=ADDRESSES, received_at=RECEIVED) == []
    assert ses_events({"eventType": "Open"}, addresses=ADDRESSES, received_at=RECEIVED) == []


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("Permanent", EventKind.HARD_BOUNCE),
        ("Transient", EventKind.SOFT_BOUNCE),
        ("Undetermined", EventKind.SOFT_BOUNCE),
    ],
)
def test_bounce_types(bounce_type: str, kind: EventKind) -> None:
    # The documented example with each documented bounceType.
    notification = fixture("ses_bounce_with_dsn.json")
    notification["bounce"]["bounceType"] = bounce_type

    [event] = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert event.kind == kind


def test_a_recipient_only_delayed_is_no_hard_bounce() -> None:
    # The bounce object example of "notification-contents": one failed, one delayed.
    notification = fixture("ses_bounce_with_dsn.json")
    notification["bounce"]["bouncedRecipients"] = [
        {
            "status": "5.0.0",
            "action": "failed",
            "diagnosticCode": "smtp; 550 user unknown",
            "emailAddress": "recipient1@example.com",
        },
        {"status": "4.0.0", "action": "delayed", "emailAddress": "recipient2@example.com"},
    ]

    events = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert [(e.recipient, e.kind, e.status) for e in events] == [
        ("recipient1@example.com", EventKind.HARD_BOUNCE, "5.0.0"),
        ("recipient2@example.com", EventKind.SOFT_BOUNCE, "4.0.0"),
    ]


def test_our_verp_envelope_sender_names_the_delivery() -> None:
    # SES reports the envelope MAIL FROM we sent with in mail.source.
    notification = fixture("ses_bounce_with_dsn.json")
    notification["mail"]["source"] = ADDRESSES.for_delivery(1234)

    [event] = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert (event.delivery_id, event.subscriber_id) == (1234, None)


def test_a_notices_verp_address_names_the_subscriber() -> None:
    notification = fixture("ses_complaint_with_feedback.json")
    notification["mail"]["source"] = f"Digest <{ADDRESSES.for_notice(77)}>"

    [event] = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert (event.delivery_id, event.subscriber_id) == (None, 77)


def test_a_forged_verp_address_names_nobody() -> None:
    notification = fixture("ses_bounce_with_dsn.json")
    notification["mail"]["source"] = "bounces+d1234-aaaaaaaaaaaaaaaa@example.org"

    [event] = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert event.delivery_id is None


def test_a_report_for_several_recipients_is_not_pinned_on_one_delivery() -> None:
    notification = fixture("ses_bounce_without_dsn.json")
    notification["mail"]["source"] = ADDRESSES.for_delivery(1234)

    events = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert [e.delivery_id for e in events] == [None, None]


def test_without_original_headers_the_ses_id_tells_retries_apart() -> None:
    notification = fixture("ses_bounce_with_dsn.json")
    for name in ("headers", "commonHeaders", "headersTruncated"):
        del notification["mail"][name]

    [event] = ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)

    assert event.message_id == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"
    assert original_message_id(notification["mail"]) is None


def test_common_headers_alone_give_the_message_id() -> None:
    mail = fixture("ses_bounce_with_dsn.json")["mail"]
    del mail["headers"]

    assert original_message_id(mail) == "custom-message-ID"


def test_not_spam_feedback_is_no_complaint() -> None:
    notification = fixture("ses_complaint_with_feedback.json")
    notification["complaint"]["complaintFeedbackType"] = "not-spam"

    assert ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED) == []


@pytest.mark.parametrize(
    "notification",
    [
        {},
        {"eventType": 7},
        {"notificationType": "Bounce"},
        {"notificationType": "Bounce", "mail": {}},
        {"notificationType": "Bounce", "mail": {}, "bounce": {"bounceType": "Sideways"}},
        {
            "notificationType": "Complaint",
            "mail": {},
            "complaint": {"complainedRecipients": [{"address": "x@example.org"}]},
        },
    ],
)
def test_what_is_no_ses_notification_is_refused(notification: dict[str, object]) -> None:
    with pytest.raises(NotAnSesNotification):
        ses_events(notification, addresses=ADDRESSES, received_at=RECEIVED)
