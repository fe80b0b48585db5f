"""``digest worker --metrics-port``: the main worker process serves what its prefork
children counted while they sent a real digest."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from digest.mail.sink import SmtpSink, free_port
from digest.processes import VENV_BIN, Process, run_to_end, wait_for
from tests.cli.commands import lexical_ranking_file
from tests.services import RedisDatabase, empty_redis_database

# On PostgreSQL, as docker-compose.yml runs the worker.
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def environment(database_url: str, smtp_sink: SmtpSink, tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIGEST_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    with empty_redis_database(RedisDatabase.METRICS_BROKER) as broker_url:
        yield {
            **base,
            "DIGEST_ENVIRONMENT": "test",
            "DIGEST_SECRET_KEY": "metrics-test-secret-key",
            "DIGEST_DATABASE_URL": database_url,
            "DIGEST_BROKER_URL": broker_url,
            "DIGEST_SMTP_URL": smtp_sink.url,
            "DIGEST_DATA_DIR": str(tmp_path / "data"),
            "DIGEST_SOURCES": "sample",
            "DIGEST_RANKING_FILE": lexical_ranking_file(tmp_path),
        }


def scrape(port: int) -> dict[str, float] | None:
    """Unlabelled samples by name; None while the exporter is not up."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


@pytest.mark.services
@on_postgresql
def test_the_worker_exporter_counts_what_its_pool_processes_sent(
    environment: dict[str, str],
    smtp_sink: SmtpSink,
    start: Callable[..., Process],
    tmp_path: Path,
) -> None:
    digest = str(VENV_BIN / "digest")
    run_to_end([digest, "ingest"], env=environment, cwd=tmp_path)
    run_to_end(
        [digest, "subscribers", "add", "ada@example.org", "--interests", "diffusion",
         "--confirmed", "--send-hour", "0"],
        env=environment,
        cwd=tmp_path,
    )  # fmt: skip
    port = free_port()
    worker = start(
        "worker", "worker", "--metrics-port", str(port),
        "--concurrency", "2", "--pool", "prefork", "--without-gossip",
    )  # fmt: skip

    def exporter_up() -> bool:
        assert worker.alive(), worker.report()
        return scrape(port) is not None

    assert wait_for(exporter_up, timeout=60), worker.report()
    before = scrape(port) or {}
    assert before.get("digest_messages_sent_total", 0.0) == 0.0

    run_to_end([digest, "send-due"], env=environment, cwd=tmp_path)
    assert wait_for(lambda: bool(smtp_sink.files()), timeout=120), worker.report()

    def counted() -> bool:
        return (scrape(port) or {}).get("digest_messages_sent_total") == 1.0

    assert wait_for(counted, timeout=10), f"{scrape(port)}\n{worker.report()}"
    after = scrape(port) or {}
    assert after["digest_smtp_send_seconds_count"] == 1.0
    assert len(smtp_sink.files()) == 1


def test_a_taken_metrics_port_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(VENV_BIN / "digest"), "worker", "--metrics-port", str(port)],
            env={
                **env,
                "DIGEST_BROKER_URL": "redis://127.0.0.1:1/0",
                "DIGEST_DATA_DIR": str(tmp_path),
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: cannot serve metrics on port {port}:")
