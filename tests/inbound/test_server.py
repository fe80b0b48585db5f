"""Mail to ``digest inbound``: bounces, complaints, mailto unsubscribes, and the rest.

Each test sends over a real SMTP session (smtplib) what a receiving system or a
reader's mail client sends, and looks at what a reader would notice: whether they are
still mailed.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email import message_from_bytes, policy
from urllib.parse import unquote, urlsplit

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from config.settings import Settings
from digest.bounces.models import MailEventRecord
from digest.db.unit_of_work import unit_of_work
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.tokens import Purpose, Signer
from tests.inbound.running import Inbound, Reader, serve_inbound
from tests.inbound_mail import fixture_bytes

POSTFIX_VERP = "bounces+OkGew2p6d9r5RJ5x9g1nxNq73zQDL1Zo-here-redacted.br@example.net.br"


def send(inbound: Inbound, data: bytes, to: list[str], *, sender: str = "") -> None:
    """One SMTP transaction; sender "" is the null reverse-path every bounce has."""
    with smtplib.SMTP(inbound.host, inbound.port, timeout=30) as client:
        client.sendmail(sender, to, data)


def status_of(inbound: Inbound, subscriber_id: int) -> SubscriberStatus:
    with unit_of_work(inbound.runtime.session_factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        return subscriber.status


def events_of(inbound: Inbound, subscriber_id: int) -> list[MailEventRecord]:
    with unit_of_work(inbound.runtime.session_factory) as session:
        return list(
            session.scalars(
                select(MailEventRecord).where(MailEventRecord.subscriber_id == subscriber_id)
            )
        )


def received(outcome: str) -> float:
    value = REGISTRY.get_sample_value("digest_inbound_messages_total", {"outcome": outcome})
    return value or 0.0


def refused() -> float:
    return REGISTRY.get_sample_value("digest_inbound_refused_recipients_total") or 0.0


def postfix_dsn(reader: Reader) -> bytes:
    """The recorded Postfix bounce, about this reader's digest."""
    return fixture_bytes(
        "postfix-bounce.eml",
        {
            POSTFIX_VERP: reader.verp,
            "kijitora@example.br": reader.email,
            "<original.4C2D1ABD9@example.net.br>": reader.message_id,
        },
    )


def abuse_report(reader: Reader, original: bytes) -> bytes:
    """RFC 5965's complete report, about ``original`` (returned whole) sent to the reader."""
    report = fixture_bytes("rfc5965-complete.eml", {"user@example.com": reader.email})
    head, _, _ = report.partition(b"Content-Disposition: inline\r\n\r\n")
    return (
        head
        + b"Content-Disposition: inline\r\n\r\n"
        + original
        + b"\r\n--part1_13d.2e68ed54_boundary--\r\n"
    )


def unsubscribe_mailto(reader: Reader) -> tuple[str, str]:
    """(address, subject) of the digest's List-Unsubscribe mailto, as a mail client reads it."""
    message = message_from_bytes(reader.digest, policy=policy.default)
    mailto = next(
        part.strip().strip("<>")
        for part in str(message["List-Unsubscribe"]).split(",")
        if part.strip().startswith("<mailto:")
    )
    parts = urlsplit(mailto)
    query = dict(item.split("=", 1) for item in parts.query.split("&"))
    return parts.path, unquote(query["subject"])


def test_a_dsn_to_a_verp_address_bounces_that_reader_and_nobody_else(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader, other = make_reader(), make_reader()
    before = received("bounce")
    send(inbound, postfix_dsn(reader), [reader.verp])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.BOUNCED
    assert status_of(inbound, other.subscriber_id) == SubscriberStatus.ACTIVE
    (event,) = events_of(inbound, reader.subscriber_id)
    assert (event.kind, event.source, event.status, event.delivery_id) == (
        "hard_bounce",
        "dsn",
        "5.4.1",
        reader.delivery_id,
    )
    assert event.message_id == reader.message_id
    assert received("bounce") == before + 1
    # The same DSN again (a relay retrying) is answered and changes nothing.
    send(inbound, postfix_dsn(reader), [reader.verp])
    assert len(events_of(inbound, reader.subscriber_id)) == 1


def test_a_delay_notice_bounces_nobody(inbound: Inbound, make_reader: Callable[[], Reader]) -> None:
    reader = make_reader()
    before = received("dropped")
    dsn = postfix_dsn(reader).replace(b"Action: failed", b"Action: delayed")
    send(inbound, dsn.replace(b"Status: 5.4.1", b"Status: 4.4.1"), [reader.verp])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.ACTIVE
    assert events_of(inbound, reader.subscriber_id) == []
    assert received("dropped") == before + 1


def test_a_gmail_dsn_to_postmaster_finds_the_digest_by_its_return_path(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    # Sent to postmaster, not the VERP address: the returned message's Return-Path is ours.
    reader = make_reader()
    dsn = fixture_bytes(
        "gmail-bounce.eml",
        {"Return-Path: <sender@example.org>": f"Return-Path: <{reader.verp}>"},
    )
    send(inbound, dsn, ["postmaster@example.org"])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.BOUNCED
    (event,) = events_of(inbound, reader.subscriber_id)
    assert event.delivery_id == reader.delivery_id
    assert event.reason.startswith("510 5.1.1")


def test_an_abuse_report_to_the_verp_address_unsubscribes_the_reader(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader, other = make_reader(), make_reader()
    before = received("complaint")
    send(inbound, abuse_report(reader, reader.digest), [reader.verp])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.UNSUBSCRIBED
    assert status_of(inbound, other.subscriber_id) == SubscriberStatus.ACTIVE
    (event,) = events_of(inbound, reader.subscriber_id)
    assert (event.kind, event.source, event.delivery_id) == (
        "complaint",
        "arf",
        reader.delivery_id,
    )
    assert received("complaint") == before + 1


def test_an_abuse_report_to_the_abuse_address_finds_the_digest_by_its_signed_links(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    # A feedback loop registered for abuse@: no VERP address, no Return-Path, only our
    # digest as the reader got it (its List-Unsubscribe carries their signed token).
    reader = make_reader()
    send(
        inbound,
        abuse_report(reader, reader.digest),
        ["Abuse@Example.org"],
        sender="fbl@isp.example",
    )
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.UNSUBSCRIBED
    (event,) = events_of(inbound, reader.subscriber_id)
    assert event.delivery_id == reader.delivery_id


def test_a_report_that_only_names_a_guessable_message_id_is_dropped(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    before = received("dropped")
    forged = (
        f"Message-ID: {reader.message_id}\r\nTo: {reader.email}\r\n"
        "Subject: not really ours\r\n\r\nhello\r\n"
    ).encode()
    send(inbound, abuse_report(reader, forged), ["abuse@example.org"])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.ACTIVE
    assert events_of(inbound, reader.subscriber_id) == []
    assert received("dropped") == before + 1


def test_the_list_unsubscribe_mailto_unsubscribes_exactly_that_reader(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader, other = make_reader(), make_reader()
    address, subject = unsubscribe_mailto(reader)
    assert address == "unsubscribe@example.org" and subject.startswith("unsubscribe ")
    before = received("unsubscribe")
    mail = f"From: {reader.email}\r\nTo: {address}\r\nSubject: {subject}\r\n\r\n\r\n".encode()
    send(inbound, mail, [address], sender=reader.email)
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.UNSUBSCRIBED
    assert status_of(inbound, other.subscriber_id) == SubscriberStatus.ACTIVE
    assert received("unsubscribe") == before + 1


def test_the_token_in_the_address_unsubscribes_too(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    _, subject = unsubscribe_mailto(reader)
    token = subject.removeprefix("unsubscribe ")
    address = f"unsubscribe+{token}@example.org"
    send(inbound, b"Subject: stop\r\n\r\nplease\r\n", [address], sender=reader.email)
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.UNSUBSCRIBED


def test_a_forged_unsubscribe_token_unsubscribes_nobody(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    _, subject = unsubscribe_mailto(reader)
    token = subject.removeprefix("unsubscribe ")
    # The reader's own id in a token someone signed without our key; a token of another
    # purpose (preferences) of ours; the real one with its signature altered.
    runtime = inbound.runtime
    with unit_of_work(runtime.session_factory) as session:
        holder = session.get(Subscriber, reader.subscriber_id)
        assert holder is not None
        preferences = runtime.links.token(Purpose.PREFERENCES, holder)
    outsider = Signer("not-our-key").sign(
        Purpose.UNSUBSCRIBE, subscriber_id=reader.subscriber_id, version=0
    )
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    before = received("dropped")
    for forged in (outsider, preferences, altered, "no token at all"):
        mail = f"Subject: unsubscribe {forged}\r\n\r\n".encode()
        send(inbound, mail, ["unsubscribe@example.org"], sender="mallory@evil.example")
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.ACTIVE
    assert received("dropped") == before + 4


def test_mail_to_any_other_address_is_refused_at_rcpt(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    # Altering the VERP address's delivery id breaks its signature.
    number = str(reader.delivery_id)
    forged_verp = reader.verp.replace(f"+d{number}-", f"+d{int(number) + 1}-")
    before = refused()
    for address in (
        "random@example.org",
        "someone@elsewhere.example",  # relaying
        forged_verp,
        "bounces+d1-aaaaaaaaaaaaaaaa@example.org",
        "postmaster@elsewhere.example",
    ):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refusal:
            send(inbound, b"Subject: buy now\r\n\r\ncheap\r\n", [address], sender="spam@x.example")
        ((code, _),) = refusal.value.recipients.values()
        assert code == 550
    assert refused() == before + 5
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.ACTIVE


def test_garbage_to_a_verp_address_is_dropped_counted_and_answered_250(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    before = received("dropped")
    for garbage in (
        b"\x00\xff\xfe not mail at all\r\n",
        b"Subject: out of office\r\nAuto-Submitted: auto-replied\r\n\r\nBack Monday.\r\n",
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="x\r\n\r\n--',
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: message/feedback-report\r\n\r\n\xff\xfe: \x00\r\n--B--\r\n",
    ):
        # sendmail raises unless every reply is 2xx.
        send(inbound, garbage, [reader.verp])
    assert received("dropped") == before + 4
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.ACTIVE


def test_a_database_outage_answers_451_so_the_sender_retries(
    make_settings: Callable[..., Settings], make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    # Nothing listens on port 1: every connection is refused at once.
    runtime = Runtime(make_settings(database_url="postgresql+psycopg://digest@127.0.0.1:1/digest"))
    controller = serve_inbound(runtime)
    try:
        with (
            smtplib.SMTP(controller.hostname, controller.port, timeout=30) as client,
            pytest.raises(smtplib.SMTPDataError) as refusal,
        ):
            client.sendmail("", [reader.verp], postfix_dsn(reader))
        assert refusal.value.smtp_code == 451
    finally:
        controller.stop()
        runtime.dispose()


def test_a_message_over_the_size_limit_is_refused(
    inbound_settings: Settings, make_reader: Callable[[], Reader]
) -> None:
    reader = make_reader()
    runtime = Runtime(inbound_settings)
    controller = serve_inbound(runtime, max_bytes=64 * 1024)
    try:
        big = postfix_dsn(reader) + b"x" * 100 + b"\r\n" * 1000 + (b"y" * 998 + b"\r\n") * 80
        # smtplib announces the size (SIZE=), so the refusal comes at MAIL FROM.
        with (
            smtplib.SMTP(controller.hostname, controller.port, timeout=30) as client,
            pytest.raises(smtplib.SMTPSenderRefused) as refusal,
        ):
            client.sendmail("", [reader.verp], big)
        assert refusal.value.smtp_code == 552
        with unit_of_work(runtime.session_factory) as session:
            subscriber = session.get(Subscriber, reader.subscriber_id)
            assert subscriber is not None and subscriber.status == SubscriberStatus.ACTIVE
    finally:
        controller.stop()
        runtime.dispose()


def test_a_dsn_to_a_notice_address_bounces_its_reader(
    inbound: Inbound, make_reader: Callable[[], Reader]
) -> None:
    # Subscription notices go out from bounces+n<subscriber>-<signature>@.
    reader = make_reader()
    notice_sender = inbound.runtime.bounces.for_notice(reader.subscriber_id)
    dsn = fixture_bytes(
        "postfix-bounce.eml",
        {POSTFIX_VERP: notice_sender, "kijitora@example.br": reader.email},
    )
    send(inbound, dsn, [notice_sender])
    assert status_of(inbound, reader.subscriber_id) == SubscriberStatus.BOUNCED
    (event,) = events_of(inbound, reader.subscriber_id)
    assert event.delivery_id is None
