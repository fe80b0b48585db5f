"""The real pipeline: a ``digest worker`` and a ``digest beat`` process on Redis.

Beat schedules ingestion and dispatch every few seconds; the worker ingests the
sample papers, claims the due digest, sends it to a local SMTP sink and records
it. Later dispatch cycles must not send it again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from digest.delivery.models import Delivery
from digest.mail.sink import SmtpSink
from digest.processes import VENV_BIN, Process, run_to_end, wait_for
from digest.subscriptions.models import Subscriber
from tests.services import RedisDatabase, empty_redis_database

READER = "reader@example.org"
INGEST_EVERY_MINUTES = 0.02  # 1.2 s
DISPATCH_EVERY_MINUTES = 0.05  # 3 s: the first dispatch finds the papers already ingested
DISPATCHED = re.compile(r"Task digest\.dispatch_due\[[^\]]+\] succeeded")

# On PostgreSQL, as docker-compose.yml runs the worker and beat.
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def environment(database_url: str, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    with empty_redis_database(RedisDatabase.WORKER_BROKER) as broker_url:
        yield {
            **base,
            "DIGEST_ENVIRONMENT": "test",
            "DIGEST_SECRET_KEY": "worker-test-secret-key",
            "DIGEST_DATABASE_URL": database_url,
            "DIGEST_BROKER_URL": broker_url,
            "DIGEST_SMTP_URL": smtp_sink.url,
            "DIGEST_DATA_DIR": str(tmp_path / "data"),
            "DIGEST_BASE_URL": "https://digest.example.org",
            "DIGEST_FROM_ADDRESS": "Digest <digest@example.org>",
            "DIGEST_INGEST_INTERVAL_MINUTES": str(INGEST_EVERY_MINUTES),
            "DIGEST_DISPATCH_INTERVAL_MINUTES": str(DISPATCH_EVERY_MINUTES),
            # No internet here: beat ingests the shipped sample only.
            "DIGEST_SOURCES": "sample",
        }


def deliveries(database_engine: Engine) -> list[tuple[str, str, str | None, str | None]]:
    """(email, status, message_id, last_error) for every delivery row."""
    with database_engine.connect() as connection:
        rows = connection.execute(
            select(Subscriber.email, Delivery.status, Delivery.message_id, Delivery.last_error)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .order_by(Delivery.id)
        ).all()
    return [(email, str(status), message_id, error) for email, status, message_id, error in rows]


@pytest.mark.services
def test_beat_and_worker_send_each_due_digest_once(
    database_engine: Engine,
    environment: dict[str, str],
    smtp_sink: SmtpSink,
    start: Callable[..., Process],
    tmp_path: Path,
) -> None:
    command = ["subscribers", "add", READER, "--interests", "diffusion", "--confirmed"]
    run_to_end(
        [str(VENV_BIN / "digest"), *command, "--send-hour", "0", "--timezone", "UTC"],
        env=environment,
        cwd=tmp_path,
    )
    day = datetime.now(UTC).date()

    worker = start("worker", "worker", "--pool=solo", "--without-gossip")
    beat = start("beat", "beat")

    def logs() -> str:
        return (
            "\n".join(p.report() for p in (worker, beat))
            + f"\ndeliveries: {deliveries(database_engine)}"
        )

    def mail_arrived() -> bool:
        assert worker.alive() and beat.alive(), logs()
        return bool(smtp_sink.files())

    # The first send loads the embedding model and embeds the sample: ~30 s on a quiet
    # machine, over 90 s with other tests (or other people's) busy on both cores.
    arrival = 240
    assert wait_for(mail_arrived, timeout=arrival), f"no digest within {arrival} s\n{logs()}"
    [message] = smtp_sink.messages()
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == READER
    assert message["List-Unsubscribe"] and "https://digest.example.org/" in str(
        message["List-Unsubscribe"]
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"]

    # The row is committed right after the SMTP exchange that delivered the message.
    def recorded() -> bool:
        return any(status == "sent" for _, status, _, _ in deliveries(database_engine))

    assert wait_for(recorded, timeout=15), logs()
    assert deliveries(database_engine) == [(READER, "sent", str(message["Message-ID"]), None)]

    # Idempotent dispatch: several further cycles claim nothing and send nothing.
    cycles_before = len(DISPATCHED.findall(worker.output()))
    assert wait_for(
        lambda: len(DISPATCHED.findall(worker.output())) >= cycles_before + 3, timeout=30
    ), logs()
    if datetime.now(UTC).date() != day:
        pytest.skip("crossed midnight UTC: a new daily edition is legitimately due")
    assert len(smtp_sink.files()) == 1, logs()
    assert [status for _, status, _, _ in deliveries(database_engine)] == ["sent"], logs()
    assert worker.alive() and beat.alive(), logs()
