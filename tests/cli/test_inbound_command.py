"""``digest inbound`` as a process: it listens where the settings say, records a bounce
sent to it, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import smtplib
import socket
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from config.settings import Settings
from digest.cli.main import cli
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import Delivery, DeliveryStatus
from digest.mail.sink import free_port
from digest.processes import VENV_BIN, start_process, stop, wait_for
from digest.ranking.picks import Pick
from digest.runtime import Runtime
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from tests.factories import NOW, make_subscriber
from tests.inbound_mail import fixture_bytes
from tests.samples import recorded_papers

SECRET = "inbound-command-test-secret"
FROM = "Digest <digest@example.org>"
POSTFIX_VERP = "bounces+OkGew2p6d9r5RJ5x9g1nxNq73zQDL1Zo-here-redacted.br@example.net.br"


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            return connection.recv(3) == b"220"
    except OSError:
        return False


def test_digest_inbound_records_a_bounce_and_stops_on_sigterm(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_values(
        environment="test", secret_key=SECRET, from_address=FROM, data_dir=env["DIGEST_DATA_DIR"]
    )
    runtime = Runtime(settings)
    try:
        with unit_of_work(runtime.session_factory) as session:
            reader, other = make_subscriber(session), make_subscriber(session)
            delivery = Delivery(
                subscriber_id=reader.id, edition="2026-11-21", status=DeliveryStatus.SENT
            )
            session.add(delivery)
            session.flush()
            composed = runtime.composer.compose(
                reader,
                [Pick(paper=recorded_papers(1)[0], reason="", upvotes=None)],
                delivery_id=delivery.id,
                edition="2026-11-21",
                now=NOW,
            )
            delivery.message_id = composed.message_id
            reader_id, other_id, email = reader.id, other.id, reader.email
        verp = composed.outgoing.sender

        port, metrics_port = free_port(), free_port()
        process = start_process(
            "inbound",
            [str(VENV_BIN / "digest"), "inbound", "--metrics-port", str(metrics_port)],
            workdir=tmp_path,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
                **env,
                "DIGEST_ENVIRONMENT": "test",
                "DIGEST_SECRET_KEY": SECRET,
                "DIGEST_FROM_ADDRESS": FROM,
                "DIGEST_INBOUND_HOST": "127.0.0.1",
                "DIGEST_INBOUND_PORT": str(port),
            },
        )
        try:

            def listening() -> bool:
                assert process.alive(), process.report()
                return accepts_connections(port)

            assert wait_for(listening, timeout=60), process.report()
            dsn = fixture_bytes(
                "postfix-bounce.eml",
                {
                    POSTFIX_VERP: verp,
                    "kijitora@example.br": email,
                    "<original.4C2D1ABD9@example.net.br>": composed.message_id,
                },
            )
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("", [verp], dsn)
                # Not ours: refused, the process goes on.
                client.mail("spam@spam.example")
                code, _ = client.rcpt("someone@elsewhere.example")
                assert code == 550
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            assert 'digest_inbound_messages_total{outcome="bounce"} 1.0' in metrics
            assert 'digest_inbound_messages_total{outcome="dropped"} 0.0' in metrics
            assert "digest_inbound_refused_recipients_total 1.0" in metrics
        finally:
            stop(process.process)
        assert process.process.returncode == 0, process.report()
        output = process.output()
        assert f"inbound mail on 127.0.0.1:{port} for example.org" in output
        assert "bounce (hard_bounce for delivery" in output

        with unit_of_work(runtime.session_factory) as session:
            statuses = {
                s.id: s.status
                for s in session.query(Subscriber).filter(Subscriber.id.in_([reader_id, other_id]))
            }
        assert statuses == {reader_id: SubscriberStatus.BOUNCED, other_id: SubscriberStatus.ACTIVE}
    finally:
        runtime.dispose()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "mail.example.org"])
def test_the_default_secret_key_is_refused_where_others_can_mail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("DIGEST_SECRET_KEY", "DIGEST_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["inbound", "--host", host, "--port", str(free_port())])
    assert result.exit_code == 1
    assert "refusing to receive mail" in result.output and "DIGEST_SECRET_KEY" in result.output
