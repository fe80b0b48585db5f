"""Delivery status notifications, from RFC 3464's examples and real bounces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from digest.bounces.dsn import dsn_events, read_dsn
from digest.bounces.events import EventKind
from digest.bounces.reports import parse_message
from tests.inbound_mail import fixture_message

RECEIVED = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def test_a_temporary_failure_given_up_on_is_a_soft_bounce() -> None:
    events = dsn_events(fixture_message("rfc3464-simple.eml"), received_at=RECEIVED, delivery_id=7)
    assert len(events) == 1
    event = events[0]
    assert event.kind == EventKind.SOFT_BOUNCE
    assert event.source == "dsn"
    assert event.recipient == "louisl@larry.slip.umd.edu"
    assert event.status == "4.0.0"
    assert event.reason == "426 connection timed out"
    assert event.delivery_id == 7
    # Last-Attempt-Date, not the time we received it.
    assert event.occurred_at == datetime(
        1994, 7, 7, 17, 15, 49, tzinfo=timezone(timedelta(hours=-4))
    )
    assert "Reporting-MTA: dns; cs.utk.edu" in event.raw


def test_each_failed_recipient_is_an_event_and_a_delay_is_none() -> None:
    events = dsn_events(fixture_message("rfc3464-multi-recipient.eml"), received_at=RECEIVED)
    assert [(e.kind, e.recipient, e.status) for e in events] == [
        (EventKind.HARD_BOUNCE, "arathib@vnet.ibm.com", "5.0.0"),
        (EventKind.HARD_BOUNCE, "wsnell@sdcc13.ucsd.edu", "5.0.0"),
    ]
    # The folded Diagnostic-Code is one line.
    assert events[0].reason == "550 'arathib@vnet.IBM.COM' is not a registered gateway user"
    # No Last-Attempt-Date: the DSN's own Date.
    assert events[0].occurred_at == datetime(
        1994, 7, 8, 9, 21, 47, tzinfo=timezone(timedelta(hours=-4))
    )


def test_a_delay_report_yields_nothing() -> None:
    message = fixture_message("rfc3464-delayed.eml")
    report = read_dsn(message)
    assert report is not None and [r.action for r in report.recipients] == ["delayed"]
    assert dsn_events(message, received_at=RECEIVED) == []


def test_postfix_bounce() -> None:
    events = dsn_events(fixture_message("postfix-bounce.eml"), received_at=RECEIVED)
    assert len(events) == 1
    event = events[0]
    assert (event.kind, event.recipient, event.status) == (
        EventKind.HARD_BOUNCE,
        "kijitora@example.br",
        "5.4.1",
    )
    assert event.reason.startswith("550 5.4.1 <kijitora@example.br>: Recipient address rejected")
    assert event.message_id == "<original.4C2D1ABD9@example.net.br>"


def test_gmail_bounce() -> None:
    message = fixture_message("gmail-bounce.eml")
    events = dsn_events(message, received_at=RECEIVED, subscriber_id=3)
    assert len(events) == 1
    event = events[0]
    assert (event.kind, event.recipient, event.status, event.subscriber_id) == (
        EventKind.HARD_BOUNCE,
        "nobody@groups.example",
        "5.1.1",
        3,
    )
    assert event.message_id == "<60627444-420d-42a1-b7b6-d74dec2479e0@example.org>"
    assert event.occurred_at == datetime(2025, 7, 23, 14, 27, 29, tzinfo=UTC)


def test_the_message_id_from_the_returned_header_alone() -> None:
    # text/rfc822-headers (RFC 6522): only the returned message's header comes back.
    raw = (
        "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n"
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; Reader@Example.org\r\nAction: failed\r\nStatus: 5.2.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Message-ID: <digest.2026-12-03.42@example.org>\r\nTo: reader@example.org\r\n\r\n"
        "--B--\r\n"
    )
    (event,) = dsn_events(parse_message(raw.encode()), received_at=RECEIVED)
    assert event.message_id == "<digest.2026-12-03.42@example.org>"
    assert event.recipient == "Reader@Example.org"
    # No diagnostic: the status text says why.
    assert event.reason == "5.2.1"
    assert event.occurred_at == RECEIVED


def test_what_is_not_a_dsn_yields_nothing() -> None:
    assert dsn_events(fixture_message("rfc5965-complete.eml"), received_at=RECEIVED) == []

    for raw in (
        b"",
        b"Subject: hello\r\n\r\nhi\r\n",
        b"\x00\xff garbage",
        # A status part that ends before any recipient block.
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=X\r\n\r\n"
        b"--X\r\nContent-Type: message/delivery-status\r\n\r\n",
    ):
        assert dsn_events(parse_message(raw), received_at=RECEIVED) == []
