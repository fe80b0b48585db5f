from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from digest.mail.message import ListUnsubscribe, build_message
from digest.mail.outgoing import OutgoingMessage, outgoing
from digest.mail.rendering import RenderedEmail
from digest.mail.sender import SendError
from digest.mail.sink import ClosingController, SmtpSink, free_port
from digest.mail.smtp import SmtpConfig, SmtpSender, wire_data
from digest.runtime import Runtime

RENDERED = RenderedEmail(subject="Your papers · digest", text="plain body", html="<p>html body</p>")
UNSUBSCRIBE = ListUnsubscribe(
    https_url="https://digest.example.org/unsubscribe/" + "x" * 90,
    mailto="mailto:unsubscribe@example.org?subject=unsubscribe%20" + "x" * 90,
)


def message(to: str = "reader@example.org") -> OutgoingMessage:
    return outgoing(
        build_message(
            RENDERED,
            to=to,
            from_address="Digest <digest@example.org>",
            message_domain="example.org",
            date=datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
            unsubscribe=UNSUBSCRIBE,
        )
    )


def test_a_digest_message_has_both_parts_and_list_headers_as_received(
    smtp_sink: SmtpSink,
) -> None:
    sender = SmtpSender(SmtpConfig.from_url(smtp_sink.url))
    with sender.connection() as connection:
        connection.send(message())

    [received] = smtp_sink.messages()
    assert received.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in received.iter_parts()] == ["text/plain", "text/html"]
    assert received["To"] == "reader@example.org"
    assert received["Message-ID"].endswith("@example.org>")
    assert parsedate_to_datetime(received["Date"]) == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    # Long URLs must survive as plain URLs, not RFC 2047 encoded words.
    raw = smtp_sink.files()[0].read_bytes().decode()
    assert f"List-Unsubscribe: <{UNSUBSCRIBE.https_url}>, <{UNSUBSCRIBE.mailto}>" in raw
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_one_connection_carries_a_whole_batch(smtp_sink: SmtpSink) -> None:
    sender = SmtpSender(SmtpConfig.from_url(smtp_sink.url))
    with sender.connection() as connection:
        for n in range(5):
            connection.send(message(to=f"reader{n}@example.org"))
    assert sorted(m["To"] for m in smtp_sink.messages()) == [
        f"reader{n}@example.org" for n in range(5)
    ]


class Refusing:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("gone"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def refusing_server() -> Iterator[str]:
    controller = ClosingController(Refusing(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


@pytest.mark.parametrize(
    ("address", "permanent"), [("gone@example.org", True), ("busy@example.org", False)]
)
def test_refusals_are_classified(refusing_server: str, address: str, permanent: bool) -> None:
    sender = SmtpSender(SmtpConfig.from_url(refusing_server))
    with sender.connection() as connection, pytest.raises(SendError) as error:
        connection.send(message(to=address))
    assert error.value.permanent is permanent
    assert error.value.code == (550 if permanent else 451)
    assert ("550 5.1.1 No such user" if permanent else "451 4.3.0 Try again") in str(error.value)


def test_a_refusal_does_not_spoil_the_connection_for_the_next_reader(
    refusing_server: str,
) -> None:
    sender = SmtpSender(SmtpConfig.from_url(refusing_server))
    with sender.connection() as connection:
        with pytest.raises(SendError):
            connection.send(message(to="gone@example.org"))
        connection.send(message(to="fine@example.org"))


def test_an_unreachable_server_is_a_transient_error() -> None:
    sender = SmtpSender(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=5))
    with sender.connection() as connection, pytest.raises(SendError) as error:
        connection.send(message())
    assert error.value.permanent is False


def test_smtp_urls() -> None:
    config = SmtpConfig.from_url("smtps://user%40x:p%3Ass@mail.example.org")
    assert (config.hostname, config.port, config.use_tls) == ("mail.example.org", 465, True)
    assert (config.username, config.password) == ("user@x", "p:ss")
    assert SmtpConfig.from_url("smtp://localhost").port == 25
    with pytest.raises(ValueError, match="smtp://host:port"):
        SmtpConfig.from_url("http://localhost")


def test_connections_and_rate_come_from_the_url_before_the_defaults() -> None:
    assert (SmtpConfig.from_url("smtp://h").connections, SmtpConfig.from_url("smtp://h").rate) == (
        1,
        None,
    )
    config = SmtpConfig.from_url("smtp://h:587?connections=8&rate=14", connections=4, rate=100)
    assert (config.port, config.connections, config.rate) == (587, 8, 14.0)
    config = SmtpConfig.from_url("smtp://h?rate=0.5", connections=4)
    assert (config.connections, config.rate) == (4, 0.5)


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("?connection=2", "options are connections and rate"),
        ("?connections=two", "must be numbers"),
        ("?connections=0", "at least 1"),
        ("?rate=0", "positive"),
        ("?rate=-3", "positive"),
    ],
)
def test_bad_url_options_are_refused(query: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        SmtpConfig.from_url("smtp://h" + query)


def test_settings_give_the_defaults_and_the_url_wins(tmp_path: Path) -> None:
    settings = Settings.from_values(
        data_dir=tmp_path, smtp_url="smtp://h?rate=5", smtp_connections=6, smtp_rate=50
    )
    sender = Runtime(settings).sender
    assert isinstance(sender, SmtpSender)
    assert (sender.config.connections, sender.config.rate) == (6, 5.0)
    default = Runtime(Settings.from_values(data_dir=tmp_path)).sender
    assert isinstance(default, SmtpSender)
    assert (default.config.connections, default.config.rate) == (4, None)


def test_leading_dots_and_bare_line_feeds_survive_the_data_phase(smtp_sink: SmtpSink) -> None:
    data = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two\r\nbare\nline feed\r\n."
    with SmtpSender(SmtpConfig.from_url(smtp_sink.url)).connection() as connection:
        connection.send(OutgoingMessage("a@example.org", "b@example.org", "<m@x>", data))
    [received] = smtp_sink.files()
    assert received.read_bytes() == (
        b"Return-Path: <a@example.org>\r\n" + data.replace(b"bare\n", b"bare\r\n") + b"\r\n"
    )


def test_wire_data_stuffs_dots_and_ends_the_data() -> None:
    assert wire_data(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert wire_data(b"a\nb") == b"a\r\nb\r\n.\r\n"


@pytest.mark.parametrize("recipient", ["rëader@example.org", "a@example.org\r\nDATA"])
def test_an_address_that_cannot_be_sent_is_a_permanent_refusal(
    ascii_only_sink: SmtpSink, recipient: str
) -> None:
    smtp_sink = ascii_only_sink
    with SmtpSender(SmtpConfig.from_url(smtp_sink.url)).connection() as connection:
        connection.send(message("first@example.org"))
        with pytest.raises(SendError) as error:
            connection.send(OutgoingMessage("a@example.org", recipient, "<m@x>", b"x\r\n"))
        # The session is as it was: the next reader's message goes through.
        connection.send(message("next@example.org"))
    assert error.value.permanent and error.value.code is None
    assert [m["To"] for m in smtp_sink.messages()] == ["first@example.org", "next@example.org"]


@pytest.fixture
def ascii_only_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    # A server that does not offer SMTPUTF8 (aiosmtpd's default, postfix before 3.0).
    with SmtpSink(tmp_path / "ascii-only", smtputf8=False) as sink:
        yield sink


def test_a_local_part_beyond_ascii_goes_over_smtputf8_when_the_server_offers_it(
    smtp_sink: SmtpSink,
) -> None:
    with SmtpSender(SmtpConfig.from_url(smtp_sink.url)).connection() as connection:
        connection.send(message(to="jörg@bücher.example"))

    [received] = smtp_sink.messages()
    assert received["To"] == "jörg@xn--bcher-kva.example"
    assert received.get_body(("plain",)).get_content().strip() == "plain body"  # type: ignore[union-attr]


def test_without_smtputf8_such_an_address_fails_alone_and_says_why(
    ascii_only_sink: SmtpSink,
) -> None:
    with SmtpSender(SmtpConfig.from_url(ascii_only_sink.url)).connection() as connection:
        with pytest.raises(SendError) as error:
            connection.send(message(to="jörg@example.org"))
        # An international domain needs nothing of the server: it goes in IDNA.
        connection.send(message(to="leser@bücher.example"))

    assert error.value.permanent is True
    assert "jörg@example.org" in str(error.value) and "SMTPUTF8" in str(error.value)
    assert [m["To"] for m in ascii_only_sink.messages()] == ["leser@xn--bcher-kva.example"]
