"""``/metrics`` after real work: an ingest of the sample and a digest sent to the SMTP sink."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from digest.clock import utcnow
from digest.db.unit_of_work import unit_of_work
from digest.delivery.ledger import claim_due_deliveries
from digest.mail.sink import SmtpSink
from digest.runtime import Runtime
from digest.web.app import create_app
from tests.cli.commands import lexical_ranking_file
from tests.factories import make_subscriber

# The figures as Prometheus reads them: (name, labels) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_client(web_settings: Settings, tmp_path: Path) -> TestClient:
    settings = web_settings.model_copy(
        update={"ranking_file": Path(lexical_ranking_file(tmp_path))}
    )
    return TestClient(create_app(settings), follow_redirects=False)


def send_a_digest(runtime: Runtime) -> None:
    now = utcnow()
    with unit_of_work(runtime.session_factory) as session:
        make_subscriber(session, interests="diffusion", send_hour=0, created_at=now)
        claimed = claim_due_deliveries(session, now=now)
    assert len(claimed) == 1
    assert list(runtime.send_batch(claimed).outcomes.values()) == ["sent"]


def test_metrics_count_the_ingest_and_the_digest_sent(
    metrics_client: TestClient, smtp_sink: SmtpSink
) -> None:
    with metrics_client as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        before = scrape(client)
        assert value(before, "digest_database_up") == 1
        [summary] = runtime.run_ingest("sample")
        send_a_digest(runtime)
        after = scrape(client)

    assert len(smtp_sink.files()) == 1
    # Counters of this process: one message accepted, its exchange timed.
    assert (
        value(after, "digest_messages_sent_total")
        == value(before, "digest_messages_sent_total") + 1
    )
    assert (
        value(after, "digest_smtp_send_seconds_count")
        == value(before, "digest_smtp_send_seconds_count") + 1
    )
    # Read from the database at the scrape.
    assert value(after, "digest_deliveries", state="sent", skip_reason="") == 1
    assert value(after, "digest_deliveries", state="queued", skip_reason="") == 0
    assert value(after, "digest_ingest_runs_total", source="sample", outcome="ok") == 1
    assert (
        value(after, "digest_ingest_entries_total", source="sample", result="new")
        == (summary.new)
        > 0
    )
    last_success = value(after, "digest_ingest_last_success_timestamp_seconds", source="sample")
    assert abs(last_success - utcnow().timestamp()) < 300
    # No broker configured: tasks run in process, so no queue is reported.
    assert not any(name.startswith("digest_queue") for name, _ in after)


def test_a_database_that_does_not_answer_is_a_gauge_not_a_failed_scrape(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as client:
        samples = scrape(client)
    assert value(samples, "digest_database_up") == 0
    # The process's own figures still go out.
    assert value(samples, "process_cpu_seconds_total") > 0
