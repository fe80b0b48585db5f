"""The SMTP counters: what a real server accepted, refused (by reply code), and how long it took."""

from __future__ import annotations

from prometheus_client import REGISTRY

from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError
from digest.mail.sink import free_port
from digest.mail.smtp import SmtpConfig, SmtpSender
from digest.metrics.instruments import mail_metrics
from tests.mail.scripted import ScriptedServer


def message(recipient: str) -> OutgoingMessage:
    data = f"From: digest@example.org\r\nTo: {recipient}\r\nSubject: papers\r\n\r\nhello\r\n"
    return OutgoingMessage("digest@example.org", recipient, f"<{recipient}>", data.encode())


def reading(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counters() -> dict[str, float]:
    return {
        "sent": reading("digest_messages_sent_total"),
        "timed": reading("digest_smtp_send_seconds_count"),
        "550": reading("digest_smtp_errors_total", code="550", permanent="true"),
        "421": reading("digest_smtp_errors_total", code="421", permanent="false"),
        "none": reading("digest_smtp_errors_total", code="none", permanent="false"),
    }


def test_accepted_and_refused_messages_are_counted_by_reply_code(
    smtp_server: ScriptedServer,
) -> None:
    sender = SmtpSender(SmtpConfig.from_url(smtp_server.url, connections=2), mail_metrics())
    before = counters()
    outcomes: list[SendError | None] = []
    batch = ["a@example.org", "gone@example.org", "b@example.org", "busy@example.org"]
    sender.send_many((message(r) for r in batch), lambda _, error: outcomes.append(error))
    after = counters()

    assert smtp_server.accepted() == ["a@example.org", "b@example.org"]
    assert sorted(e.code or 0 for e in outcomes if e is not None) == [421, 550]
    assert after["sent"] - before["sent"] == 2
    assert after["550"] - before["550"] == 1
    assert after["421"] - before["421"] == 1
    # Every exchange is timed, refused ones too.
    assert after["timed"] - before["timed"] == 4


def test_an_unreachable_server_counts_as_an_error_without_a_code() -> None:
    config = SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=5)
    sender = SmtpSender(config, mail_metrics())
    before = counters()
    outcomes: list[SendError | None] = []
    sender.send_many([message("a@example.org")], lambda _, error: outcomes.append(error))
    assert [e is not None and e.code is None for e in outcomes] == [True]
    assert counters()["none"] - before["none"] == 1
    assert counters()["sent"] == before["sent"]
