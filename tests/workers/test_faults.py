"""Faults injected into the real pipeline: ``digest worker`` and ``digest beat`` on
Redis (or RabbitMQ) and PostgreSQL, mail into a recording SMTP server this test controls.

Leases, sweeps and back-offs are set to seconds so that each fault plays out in
seconds; every wait polls the database or the recorded mail for a condition.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from datetime import timedelta
from email import message_from_bytes, policy
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiosmtpd.smtp import Envelope
from sqlalchemy import Engine, select, text

from digest.clock import utcnow
from digest.db.engine import make_engine, make_session_factory
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries
from digest.delivery.models import Delivery
from digest.mail.sink import ClosingController, free_port
from digest.processes import VENV_BIN, Process, run_to_end, wait_for
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from tests.factories import make_subscriber
from tests.services import (
    RedisDatabase,
    broker_url,
    fresh_postgres_database,
    own_redis_server,
)

LEASE_SECONDS = 4
COMMIT_EVERY = 5
DISPATCHED = re.compile(r"Task digest\.dispatch_due\[[^\]]+\] succeeded")


class RecordingHandler:
    """Keeps (recipient, Message-ID) of every message; can be slow, or answer 421."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.delay = 0.0
        self.busy = False
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.busy:
            return "421 4.3.2 Service not available, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        with self._lock:
            self.received.append((str(message["To"]), str(message["Message-ID"])))
        return "250 Message accepted for delivery"

    def copies(self) -> Counter[str]:
        with self._lock:
            return Counter(to for to, _ in self.received)


class RecordingServer:
    """An SMTP server on a fixed port that can be taken down (connections refused)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self._controller: ClosingController | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def up(self) -> None:
        self._controller = ClosingController(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def engine() -> Iterator[Engine]:
    with fresh_postgres_database("digest_faults") as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def environment(
    broker: str, engine: Engine, smtp: RecordingServer, tmp_path: Path
) -> Iterator[dict[str, str]]:
    ranking = tmp_path / "ranking.toml"
    # Delivery is under test, not the embedding model: lexical ranking starts at once.
    ranking.write_text('[relevance]\nsemantic = "off"\n')
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    with broker_url(broker, RedisDatabase.FAULTS_BROKER) as url:
        yield {
            **base,
            "DIGEST_ENVIRONMENT": "test",
            "DIGEST_SECRET_KEY": "faults-test-secret-key",
            "DIGEST_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "DIGEST_BROKER_URL": url,
            "DIGEST_SMTP_URL": smtp.url,
            "DIGEST_SMTP_TIMEOUT_SECONDS": "2",
            "DIGEST_DATA_DIR": str(tmp_path / "data"),
            "DIGEST_BASE_URL": "https://digest.example.org",
            "DIGEST_FROM_ADDRESS": "Digest <digest@example.org>",
            "DIGEST_SOURCES": "sample",
            "DIGEST_RANKING_FILE": str(ranking),
            "DIGEST_INGEST_INTERVAL_MINUTES": "600",
            "DIGEST_DISPATCH_INTERVAL_MINUTES": "0.05",
            "DIGEST_SWEEP_INTERVAL_SECONDS": "1",
            "DIGEST_SWEEP_AFTER_SECONDS": "2",
            "DIGEST_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
            "DIGEST_MAIL_COMMIT_EVERY": str(COMMIT_EVERY),
            "DIGEST_SEND_RETRY_FIRST_SECONDS": "0.5",
            "DIGEST_SEND_RETRY_MAX_SECONDS": "1",
            "DIGEST_SEND_BATCH_SIZE": "50",
        }


def run_digest(environment: dict[str, str], cwd: Path, *args: str) -> None:
    run_to_end([str(VENV_BIN / "digest"), *args], env=environment, cwd=cwd)


def add_readers(engine: Engine, count: int) -> list[str]:
    with unit_of_work(make_session_factory(engine)) as session:
        return [
            make_subscriber(session, send_hour=0, email=f"fault{n}@example.org").email
            for n in range(count)
        ]


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        return Counter(str(s) for s in connection.scalars(select(Delivery.status)))


def max_attempts(engine: Engine) -> int:
    with engine.connect() as connection:
        return max(connection.scalars(select(Delivery.attempts)), default=0)


def kill(process: Process) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.process.pid, signal.SIGKILL)
    process.process.wait(timeout=10)


def report(engine: Engine, *processes: Process) -> str:
    return "\n".join(p.report()[-4000:] for p in processes) + f"\nstatuses: {statuses(engine)}"


def assert_one_digest_each(smtp: RecordingServer, readers: list[str], *, faults: int) -> None:
    """Every reader got a digest; only the group in flight at each fault went out
    again, with the first copy's Message-ID."""
    received = list(smtp.handler.received)
    copies = Counter(to for to, _ in received)
    assert set(copies) == set(readers), copies
    again = [to for to, n in copies.items() if n > 1]
    assert len(again) <= faults * COMMIT_EVERY and max(copies.values()) <= 1 + faults, copies
    ids: dict[str, set[str]] = {}
    for to, message_id in received:
        ids.setdefault(to, set()).add(message_id)
    assert all(len(found) == 1 for found in ids.values()), ids
    assert len({found.pop() for found in ids.values()}) == len(readers)


def terminate_connections(engine: Engine) -> int:
    """Every other session on the test's database ends, as a PostgreSQL restart or
    a failover ends them; returns how many there were."""
    with engine.connect() as connection:
        ended = connection.scalars(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": engine.url.database},
        ).all()
    return len(ended)


def received_at_least(smtp: RecordingServer, count: int) -> bool:
    return len(smtp.handler.received) >= count


def ingest_and_add_readers(
    environment: dict[str, str], engine: Engine, tmp_path: Path, count: int
) -> list[str]:
    run_digest(environment, tmp_path, "ingest")
    return add_readers(engine, count)


def wait_until(
    condition: Callable[[], bool], engine: Engine, *processes: Process, timeout: float = 90
) -> None:
    """Waits for the condition; on time-out fails with the processes' output."""
    assert wait_for(condition, timeout=timeout, interval=0.05), report(engine, *processes)


def recovers_within_a_minute(engine: Engine, expected: dict[str, int], *processes: Process) -> None:
    """From now (the fault's end), every delivery reaches the expected states within 60 s."""
    fault_ended = time.monotonic()
    wait_until(lambda: statuses(engine) == expected, engine, *processes, timeout=60)
    assert time.monotonic() - fault_ended < 60


class Rig(NamedTuple):
    """What every fault test drives: the database, the processes' environment,
    the SMTP server and the process starter."""

    engine: Engine
    environment: dict[str, str]
    smtp: RecordingServer
    start: Callable[..., Process]
    tmp_path: Path


@pytest.fixture
def rig(
    engine: Engine,
    environment: dict[str, str],
    smtp: RecordingServer,
    start: Callable[..., Process],
    tmp_path: Path,
) -> Rig:
    return Rig(engine, environment, smtp, start, tmp_path)


def open_for_mail(rig: Rig, *, readers: int, smtp_delay: float) -> list[str]:
    """Papers ingested, readers due now, the SMTP server up and this slow per message."""
    addresses = ingest_and_add_readers(rig.environment, rig.engine, rig.tmp_path, readers)
    rig.smtp.handler.delay = smtp_delay
    rig.smtp.up()
    return addresses


def worker(start: Callable[..., Process], name: str) -> Process:
    return start(name, "worker", "--pool=solo", "--without-gossip", "-n", f"{name}@%h")


@pytest.mark.services
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_a_worker_killed_mid_send_is_replaced_within_a_minute_and_resends_one_group_at_most(
    rig: Rig,
) -> None:
    engine, smtp, start = rig.engine, rig.smtp, rig.start
    readers = open_for_mail(rig, readers=40, smtp_delay=0.15)

    first = worker(start, "first")
    beat = start("beat", "beat")
    wait_until(partial(received_at_least, smtp, 12), engine, first, beat)
    kill(first)
    assert statuses(engine)["sending"] > 0, report(engine, first, beat)

    second = worker(start, "second")
    recovers_within_a_minute(engine, {"sent": 40}, second, beat)
    assert_one_digest_each(smtp, readers, faults=1)


@pytest.mark.services
def test_redis_restarted_empty_mid_run_delays_no_digest_past_a_minute_and_doubles_none(
    rig: Rig,
) -> None:
    engine, environment, smtp, start = rig.engine, rig.environment, rig.smtp, rig.start
    readers = open_for_mail(rig, readers=40, smtp_delay=0.1)
    with own_redis_server() as redis_server:
        environment["DIGEST_BROKER_URL"] = redis_server.url
        # Several mail tasks: those waiting in Redis are what the restart loses.
        environment["DIGEST_SEND_BATCH_SIZE"] = "8"
        first = worker(start, "worker")
        beat = start("beat", "beat")
        wait_until(partial(received_at_least, smtp, 10), engine, first, beat)
        redis_server.kill()
        assert statuses(engine)["sent"] < 40, report(engine, first, beat)
        redis_server.start()

        recovers_within_a_minute(engine, {"sent": 40}, first, beat)
        assert_one_digest_each(smtp, readers, faults=1)
        assert first.alive() and beat.alive(), report(engine, first, beat)


@pytest.mark.services
def test_database_connections_terminated_mid_send_resend_only_the_group_in_flight(
    rig: Rig,
) -> None:
    engine, smtp, start = rig.engine, rig.smtp, rig.start
    readers = open_for_mail(rig, readers=40, smtp_delay=0.1)

    first = worker(start, "worker")
    beat = start("beat", "beat")
    faults = 0
    for count in (8, 16, 24):
        wait_until(partial(received_at_least, smtp, count), engine, first, beat)
        assert terminate_connections(engine) > 0
        faults += 1

    recovers_within_a_minute(engine, {"sent": 40}, first, beat)
    assert_one_digest_each(smtp, readers, faults=faults)
    assert first.alive() and beat.alive(), report(engine, first, beat)


@pytest.mark.services
def test_two_beats_at_once_send_each_reader_one_digest(
    rig: Rig,
) -> None:
    engine, environment, smtp, start, tmp_path = rig
    readers = open_for_mail(rig, readers=30, smtp_delay=0.05)
    environment["DIGEST_SEND_BATCH_SIZE"] = "5"

    workers = [worker(start, "worker-1"), worker(start, "worker-2")]
    # Each beat keeps its own schedule file, as two hosts would.
    beats = [
        start("beat-1", "beat"),
        start("beat-2", "beat", f"--schedule={tmp_path / 'second-beat-schedule'}"),
    ]
    wait_until(lambda: statuses(engine) == {"sent": 30}, engine, *workers, *beats, timeout=60)

    # Both beats go on dispatching and sweeping: a few more rounds of each find nothing.
    def dispatches() -> int:
        return sum(len(DISPATCHED.findall(p.output())) for p in workers)

    before = dispatches()
    wait_until(lambda: dispatches() >= before + 4, engine, *workers, *beats, timeout=30)
    assert smtp.handler.copies() == Counter(dict.fromkeys(readers, 1)), report(
        engine, *workers, *beats
    )
    assert all(p.alive() for p in (*workers, *beats)), report(engine, *workers, *beats)
    assert all("Sending due task dispatch-due-digests" in p.output() for p in beats)


@pytest.mark.services
@pytest.mark.parametrize("fault", ["refused", "421"])
def test_an_smtp_outage_longer_than_the_old_retry_window_delays_mail_and_loses_none(
    fault: str,
    rig: Rig,
) -> None:
    engine, environment, smtp, start, tmp_path = rig
    readers = ingest_and_add_readers(environment, engine, tmp_path, 8)
    if fault == "421":
        smtp.handler.busy = True
        smtp.up()

    mailer = worker(start, "worker")
    beat = start("beat", "beat")
    # More attempts than the five after which the old ledger gave up for good.
    wait_until(lambda: max_attempts(engine) > 6, engine, mailer, beat)
    assert statuses(engine)["failed"] == 0 and smtp.handler.received == []

    if fault == "421":
        smtp.handler.busy = False
    else:
        smtp.up()
    recovers_within_a_minute(engine, {"sent": 8}, mailer, beat)
    assert smtp.handler.copies() == Counter(dict.fromkeys(readers, 1))


@pytest.mark.services
def test_a_reader_who_unsubscribes_while_queued_is_skipped_with_the_reason(
    rig: Rig,
) -> None:
    engine, environment, smtp, start, tmp_path = rig
    readers = ingest_and_add_readers(environment, engine, tmp_path, 3)
    with unit_of_work(make_session_factory(engine)) as session:
        # Claimed a minute ago, its rank task lost (a broker restarted empty).
        claim_due_deliveries(session, now=utcnow() - timedelta(minutes=1))
        leaver = session.scalars(select(Subscriber).where(Subscriber.email == readers[0])).one()
        leaver.status = SubscriberStatus.UNSUBSCRIBED
    smtp.up()

    mailer = worker(start, "worker")
    beat = start("beat", "beat")
    wait_until(
        lambda: statuses(engine) == {"sent": 2, "skipped": 1}, engine, mailer, beat, timeout=60
    )

    with engine.connect() as connection:
        skipped = connection.execute(
            select(Subscriber.email, Delivery.skip_reason, Delivery.note, Delivery.last_error)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.status == "skipped")
        ).one()
    assert tuple(skipped) == (readers[0], "unsubscribed", "subscriber is unsubscribed", None)
    assert smtp.handler.copies() == Counter(dict.fromkeys(readers[1:], 1))
