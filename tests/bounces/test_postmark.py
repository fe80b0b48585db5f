"""Postmark webhook records, as its documentation shows them, read as mail events."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from digest.bounces.events import EventKind
from digest.bounces.postmark import NotAPostmarkRecord, credentials_match, postmark_events
from tests.sns_signing import fixture

RECEIVED = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def test_a_hard_bounce() -> None:
    [event] = postmark_events(fixture("postmark_bounce.json"), received_at=RECEIVED)

    assert event.kind == EventKind.HARD_BOUNCE
    assert event.source == "postmark"
    assert event.recipient == "john@example.com"
    assert event.message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert event.reason == "Test bounce details"
    assert event.occurred_at == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
    # The bounce dump is left out of what is kept.
    assert "Full dump" not in event.raw
    assert '"ServerID": 23' in event.raw


def test_a_spam_complaint() -> None:
    [event] = postmark_events(fixture("postmark_spam_complaint.json"), received_at=RECEIVED)

    assert (event.kind, event.recipient, event.message_id) == (
        EventKind.COMPLAINT,
        "john@example.com",
        "00000000-0000-0000-0000-000000000000",
    )


@pytest.mark.parametrize(
    ("bounce_type", "code", "kind"),
    [
        ("HardBounce", 1, EventKind.HARD_BOUNCE),
        ("BadEmailAddress", 100000, EventKind.HARD_BOUNCE),
        ("SoftBounce", 4096, EventKind.SOFT_BOUNCE),
        ("Transient", 2, EventKind.SOFT_BOUNCE),
        ("DnsError", 256, EventKind.SOFT_BOUNCE),
        ("AutoResponder", 64, None),
        ("Unsubscribe", 16, None),
        ("ManuallyDeactivated", 100002, None),
        ("Blocked", 100006, None),
        ("Unknown", 2048, None),
    ],
)
def test_bounce_types(bounce_type: str, code: int, kind: EventKind | None) -> None:
    # The documented record with each type of Postmark's bounce types table.
    record = fixture("postmark_bounce.json") | {"Type": bounce_type, "TypeCode": code}

    events = postmark_events(record, received_at=RECEIVED)

    assert [e.kind for e in events] == ([kind] if kind else [])


def test_an_enhanced_status_in_the_details_is_kept() -> None:
    record = fixture("postmark_bounce.json") | {
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist."
    }

    [event] = postmark_events(record, received_at=RECEIVED)

    assert event.status == "5.1.1"


def test_other_record_types_report_nothing() -> None:
    record = fixture("postmark_bounce.json") | {"RecordType": "Delivery"}

    assert postmark_events(record, received_at=RECEIVED) == []


@pytest.mark.parametrize(
    "record",
    [{}, {"RecordType": 7}, {"RecordType": "Bounce", "Type": "HardBounce", "Email": None}],
)
def test_what_is_no_record_is_refused(record: dict[str, object]) -> None:
    with pytest.raises(NotAPostmarkRecord):
        postmark_events(record, received_at=RECEIVED)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (basic("postmark", "s3cret:with:colons"), True),
        (basic("postmark", "s3cret"), False),
        (basic("Postmark", "s3cret:with:colons"), False),
        ("Bearer abc", False),
        ("Basic not-base64!", False),
        (None, False),
        ("", False),
    ],
)
def test_credentials(header: str | None, matches: bool) -> None:
    assert credentials_match(header, user="postmark", password="s3cret:with:colons") is matches
