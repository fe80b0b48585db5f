"""Abuse reports (ARF), from RFC 5965's examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from digest.bounces.arf import arf_events, read_arf
from digest.bounces.events import EventKind
from digest.bounces.reports import parse_message
from tests.inbound_mail import fixture_message

RECEIVED = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
EDT = timezone(timedelta(hours=-4))


def test_a_complete_report_is_a_complaint() -> None:
    (event,) = arf_events(
        fixture_message("rfc5965-complete.eml"), received_at=RECEIVED, delivery_id=9
    )
    assert event.kind == EventKind.COMPLAINT
    assert event.source == "arf"
    assert event.recipient == "user@example.com"
    assert event.delivery_id == 9
    assert event.status is None
    assert event.reason == "feedback-type abuse from SomeGenerator/1.0"
    assert event.occurred_at == datetime(2005, 3, 8, 14, 0, tzinfo=EDT)
    # RFC 5965's example writes the Message-ID without angle brackets.
    assert event.message_id == "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>"
    assert "Removal-Recipient: user@example.com" in event.raw


def test_a_simple_report_without_optional_fields() -> None:
    message = fixture_message("rfc5965-simple.eml")
    report = read_arf(message)
    assert report is not None
    assert report.feedback_type == "abuse"
    # No Original-Rcpt-To, and the original's To names nobody.
    assert report.recipient is None
    (event,) = arf_events(message, received_at=RECEIVED)
    assert event.recipient == ""
    # No Arrival-Date: the report's own Date.
    assert event.occurred_at == datetime(2005, 3, 8, 17, 40, 36, tzinfo=EDT)


def test_not_spam_and_unknown_types_are_no_complaint() -> None:
    for kind in ("not-spam", "auth-failure", "something-new"):
        message = fixture_message(
            "rfc5965-complete.eml", {"Feedback-Type: abuse": f"Feedback-Type: {kind}"}
        )
        assert read_arf(message) is not None
        assert arf_events(message, received_at=RECEIVED) == []
    for kind in ("fraud", "virus", "other", "ABUSE"):
        message = fixture_message(
            "rfc5965-complete.eml", {"Feedback-Type: abuse": f"Feedback-Type: {kind}"}
        )
        assert [e.kind for e in arf_events(message, received_at=RECEIVED)] == [EventKind.COMPLAINT]


def test_the_original_header_alone_names_the_recipient() -> None:
    # Many feedback loops return only the header (text/rfc822-headers).
    raw = (
        "Content-Type: multipart/report; report-type=feedback-report; boundary=F\r\n"
        "\r\n--F\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 0.1\r\n"
        "Received-Date: Wed, 22 Jan 2020 03:38:34 +0000\r\n\r\n"
        "--F\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Return-Path: <bounces+d5-abc@example.org>\r\n"
        "Message-ID: <digest.2026-12-03.42@example.org>\r\n"
        "To: Reader <reader@example.org>\r\n\r\n"
        "--F--\r\n"
    )
    message = parse_message(raw.encode())
    (event,) = arf_events(message, received_at=RECEIVED)
    assert event.recipient == "reader@example.org"
    assert event.occurred_at == datetime(2020, 1, 22, 3, 38, 34, tzinfo=UTC)
    report = read_arf(message)
    assert report is not None and report.original is not None
    assert report.original.return_path == "<bounces+d5-abc@example.org>"


def test_what_is_not_a_report_yields_nothing() -> None:
    assert arf_events(fixture_message("rfc3464-simple.eml"), received_at=RECEIVED) == []
    for raw in (b"", b"Subject: spam\r\n\r\nbuy now\r\n", b"\xff\xfe\x00"):
        assert arf_events(parse_message(raw), received_at=RECEIVED) == []
