"""Which refusals at send time are the reader's bounce, as a real server words them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.bounces.events import EventKind
from digest.bounces.smtp import enhanced_status, refusal_event
from digest.mail.message import build_message
from digest.mail.outgoing import outgoing
from digest.mail.rendering import RenderedEmail
from digest.mail.sender import SendError
from digest.mail.smtp import SmtpConfig, SmtpSender
from tests.bounces.refusing import RefusingServer

AT = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def refusal(server: RefusingServer, to: str) -> SendError:
    message = outgoing(
        build_message(
            RenderedEmail(subject="Your papers", text="plain", html="<p>html</p>"),
            to=to,
            from_address="Digest <digest@example.org>",
            message_domain="example.org",
            date=AT,
        )
    )
    sender = SmtpSender(SmtpConfig.from_url(server.url))
    with sender.connection() as connection, pytest.raises(SendError) as refused:
        connection.send(message)
    return refused.value


@pytest.mark.parametrize(
    ("address", "command", "kind", "status"),
    [
        ("gone@example.org", "RCPT", EventKind.HARD_BOUNCE, "5.1.1"),
        ("bare@example.org", "RCPT", EventKind.HARD_BOUNCE, None),
        ("full@example.org", "RCPT", EventKind.SOFT_BOUNCE, "5.2.2"),
        ("late@example.org", "DATA", EventKind.HARD_BOUNCE, "5.1.1"),
        # Policy and content refusals are about our mail, not the reader's address.
        ("blocked@example.org", "RCPT", None, "5.7.1"),
        ("content@example.org", "DATA", None, "5.6.0"),
    ],
)
def test_a_refusal_is_a_bounce_only_when_it_is_about_the_mailbox(
    refusing_smtp: RefusingServer,
    address: str,
    command: str,
    kind: EventKind | None,
    status: str | None,
) -> None:
    error = refusal(refusing_smtp, address)
    assert (error.command, error.permanent) == (command, True)
    assert enhanced_status(str(error)) == status

    event = refusal_event(error, recipient=address, occurred_at=AT, delivery_id=7)

    if kind is None:
        assert event is None
        return
    assert event is not None
    assert (event.kind, event.source, event.status, event.delivery_id) == (
        kind,
        "smtp",
        status,
        7,
    )
    assert event.raw == str(error) and event.raw.startswith("55")
    # The reason is the server's words, without the codes in front.
    assert event.reason and not event.reason[0].isdigit()


def test_a_refused_sender_is_not_the_readers_bounce(refusing_smtp: RefusingServer) -> None:
    refusing_smtp.handler.refuse_sender = True
    error = refusal(refusing_smtp, "reader@example.org")
    assert (error.command, error.permanent) == ("MAIL", True)
    assert refusal_event(error, recipient="reader@example.org", occurred_at=AT) is None
