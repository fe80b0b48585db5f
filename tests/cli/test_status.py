"""``digest status`` as an operator runs it, after a real send and with a broker's queues."""

from __future__ import annotations

import re
from pathlib import Path

from digest.mail.sink import SmtpSink, free_port
from tests.cli.commands import run
from tests.services import RedisDatabase, empty_redis_database


def test_status_before_anything_ran(env: dict[str, str], tmp_path: Path) -> None:
    result = run("status", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "deliveries (editions of the last 24 h, and anything still pending)",
        "  none",
        "queues",
        "  no broker: tasks run in process",
        "ingest",
        "  no runs yet",
        "bounces and complaints (last 7 days)",
        "  hard_bounce: 0",
        "  soft_bounce: 0",
        "  complaint: 0",
        "  bounced readers: 0",
    ]


def test_status_after_a_send_shows_the_edition_and_the_ingest(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run("ingest", env=env, cwd=tmp_path).returncode == 0
    for email, interests in (("ada@example.org", "diffusion"), ("bob@example.org", "robotics")):
        added = run(
            "subscribers", "add", email, "--interests", interests, "--confirmed",
            "--send-hour", "0", env=env, cwd=tmp_path,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    with SmtpSink(tmp_path / "mail") as sink:
        sent = run("send-due", env={**env, "DIGEST_SMTP_URL": sink.url}, cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert len(sink.files()) == 2

    result = run("status", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [edition] = [line for line in lines if re.match(r"  \d{4}-\d\d-\d\d: ", line)]
    assert edition.endswith(
        ": due 2, queued 0, ranked 0, sending 0, sent 2, failed 0, skipped 0"
    ), edition
    [sample] = [line for line in lines if line.startswith("  sample: ")]
    assert re.fullmatch(
        r"  sample: last run \S+ \S+ UTC \(\d+ s ago\), last success \S+ \S+ UTC \(\d+ s ago\); "
        r"1 runs \(0 failed\), 188 new, 0 updated, 0 unchanged, 0 skipped",
        sample,
    ), sample


def test_status_shows_what_waits_in_each_queue(env: dict[str, str], tmp_path: Path) -> None:
    with empty_redis_database(RedisDatabase.METRICS_BROKER) as broker:
        with_broker = {**env, "DIGEST_BROKER_URL": broker}
        # Published, and no worker to take it.
        assert run("send-due", env=with_broker, cwd=tmp_path).returncode == 0
        result = run("status", env=with_broker, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("queues")
    assert lines[start + 1 : start + 5] == [
        "  ingest: 0 waiting",
        "  rank: 1 waiting",
        "  mail: 0 waiting",
        "  celery: 0 waiting",
    ]


def test_status_says_when_the_broker_does_not_answer(env: dict[str, str], tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{free_port()}/0"
    result = run("status", env={**env, "DIGEST_BROKER_URL": broker}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  broker not reachable" in result.stdout.splitlines()


def test_skipped_digests_are_shown_by_reason() -> None:
    from digest.cli.status import status_lines
    from digest.delivery.models import DeliveryStatus, SkipReason
    from digest.delivery.progress import DeliveryCount
    from digest.metrics.status import Status
    from tests.factories import NOW

    def rows(status: DeliveryStatus, count: int, reason: SkipReason | None = None) -> DeliveryCount:
        return DeliveryCount("2026-11-21", status, reason, count, NOW)

    snapshot = Status(
        taken_at=NOW,
        deliveries=[
            rows(DeliveryStatus.SENT, 7),
            rows(DeliveryStatus.SENDING, 2),
            rows(DeliveryStatus.SKIPPED, 3, SkipReason.NOTHING_RELEVANT),
            rows(DeliveryStatus.SKIPPED, 1, SkipReason.PAUSED),
        ],
        sources=[],
        queues={"rank": 0, "mail": 4},
        broker_configured=True,
    )
    assert status_lines(snapshot)[:5] == [
        "deliveries (editions of the last 24 h, and anything still pending)",
        "  2026-11-21: due 13, queued 0, ranked 0, sending 2, sent 7, failed 0, "
        "skipped 4 (nothing_relevant 3, paused 1)",
        "queues",
        "  rank: 0 waiting",
        "  mail: 4 waiting",
    ]
