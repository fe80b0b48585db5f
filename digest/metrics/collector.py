"""The figures read at scrape time (database and broker) as Prometheus metrics.

A custom collector, as the Prometheus client's documentation suggests for values
that live elsewhere: nothing is kept in the process, each scrape reads
:func:`digest.metrics.status.read_status` once. A database that does not answer
makes ``digest_database_up`` 0 rather than failing the scrape (the process's own
counters still go out).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from digest.delivery.models import DeliveryStatus
from digest.delivery.progress import RECENT
from digest.metrics.status import RECENT_EVENTS, Status

log = logging.getLogger(__name__)


class StatusCollector(Collector):
    def __init__(self, read: Callable[[], Status]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        database_up = GaugeMetricFamily(
            "digest_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            status = self._read()
        except Exception as exc:
            log.warning("metrics: the database did not answer: %s", exc)
            database_up.add_metric([], 0)
            yield database_up
            return
        database_up.add_metric([], 1)
        yield database_up
        yield from deliveries(status)
        yield from mail_events(status)
        yield from ingest(status)
        yield from queues(status)


def deliveries(status: Status) -> Iterator[Metric]:
    hours = int(RECENT.total_seconds() // 3600)
    family = GaugeMetricFamily(
        "digest_deliveries",
        f"Digests claimed in the last {hours} h, and pending ones of any age, by state "
        "and skip reason (skip_reason is empty unless the state is skipped).",
        labels=["state", "skip_reason"],
    )
    counts: Counter[tuple[str, str]] = Counter(
        {(state.value, ""): 0 for state in DeliveryStatus if state != DeliveryStatus.SKIPPED}
    )
    for row in status.deliveries:
        reason = row.skip_reason.value if row.skip_reason else ""
        counts[row.status.value, reason if row.status == DeliveryStatus.SKIPPED else ""] += (
            row.count
        )
    for (state, reason), count in sorted(counts.items()):
        family.add_metric([state, reason], count)
    yield family


def mail_events(status: Status) -> Iterator[Metric]:
    recent = GaugeMetricFamily(
        "digest_mail_events_recent",
        f"Bounces and complaints that happened in the last {RECENT_EVENTS.days} days, "
        "by kind and source (every process's, from the database).",
        labels=["kind", "source"],
    )
    for (kind, source), count in sorted(status.mail_events.items()):
        recent.add_metric([kind.value, source], count)
    bounced = GaugeMetricFamily(
        "digest_bounced_subscribers", "Readers whose address bounced: no mail goes to them."
    )
    bounced.add_metric([], status.bounced_readers)
    yield from (recent, bounced)


def ingest(status: Status) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "digest_ingest_runs",
        "Ingest runs recorded, by source and outcome.",
        labels=["source", "outcome"],
    )
    papers = CounterMetricFamily(
        "digest_ingest_entries",
        "Entries ingest read, by source and what became of them.",
        labels=["source", "result"],
    )
    last_run = GaugeMetricFamily(
        "digest_ingest_last_run_timestamp_seconds",
        "When the source's last ingest run ended (Unix time).",
        labels=["source"],
    )
    last_success = GaugeMetricFamily(
        "digest_ingest_last_success_timestamp_seconds",
        "When the source's last successful ingest run ended (Unix time).",
        labels=["source"],
    )
    for s in status.sources:
        runs.add_metric([s.source, "ok"], s.runs - s.failed_runs)
        runs.add_metric([s.source, "error"], s.failed_runs)
        for result, count in (
            ("new", s.new),
            ("updated", s.updated),
            ("unchanged", s.unchanged),
            ("skipped", s.skipped),
        ):
            papers.add_metric([s.source, result], count)
        last_run.add_metric([s.source], s.last_run_at.timestamp())
        if s.last_success_at is not None:
            last_success.add_metric([s.source], s.last_success_at.timestamp())
    yield from (runs, papers, last_run, last_success)


def queues(status: Status) -> Iterator[Metric]:
    if not status.broker_configured:
        # Tasks run in process: there is no queue to measure.
        return
    up = GaugeMetricFamily("digest_broker_up", "1 when the broker answered this scrape.")
    up.add_metric([], 0 if status.queues is None else 1)
    yield up
    if status.queues is None:
        return
    depth = GaugeMetricFamily(
        "digest_queue_messages",
        "Tasks waiting in each stage's broker queue (not those a worker holds).",
        labels=["queue"],
    )
    for name, count in status.queues.items():
        depth.add_metric([name], count)
    yield depth
