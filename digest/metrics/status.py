"""Where delivery, ingest and the queues stand now: read once, for ``digest status`` and
for each scrape of the metrics (see :mod:`digest.metrics.collector`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.bounces.events import EventKind
from digest.bounces.reporting import recent_event_counts
from digest.db.unit_of_work import unit_of_work
from digest.delivery.models import DeliveryStatus, SkipReason
from digest.delivery.progress import DeliveryCount, recent_deliveries
from digest.metrics.queues import queue_depths
from digest.papers.ingest import SourceActivity, source_activity
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.subscribers import count_by_status

# How far back `digest status` counts bounces and complaints.
RECENT_EVENTS = timedelta(days=7)


@dataclass(frozen=True)
class EditionProgress:
    edition: str
    by_status: dict[DeliveryStatus, int]
    skipped_by_reason: dict[SkipReason, int]

    @property
    def due(self) -> int:
        """Every digest claimed for the edition, whatever became of it."""
        return sum(self.by_status.values())


@dataclass(frozen=True)
class Status:
    taken_at: datetime
    deliveries: list[DeliveryCount]
    sources: list[SourceActivity]
    # None without a broker (tasks run in process) or when it did not answer.
    queues: dict[str, int] | None
    broker_configured: bool
    # Bounces and complaints within RECENT_EVENTS, by kind and source.
    mail_events: dict[tuple[EventKind, str], int] = field(default_factory=dict)
    bounced_readers: int = 0

    def editions(self) -> list[EditionProgress]:
        """Each edition with deliveries in the window, the latest claimed first."""
        by_edition: dict[str, list[DeliveryCount]] = {}
        for row in self.deliveries:
            by_edition.setdefault(row.edition, []).append(row)
        latest = {edition: max(r.latest for r in rows) for edition, rows in by_edition.items()}
        progress = []
        for edition in sorted(by_edition, key=lambda e: (latest[e], e), reverse=True):
            statuses: Counter[DeliveryStatus] = Counter()
            reasons: Counter[SkipReason] = Counter()
            for row in by_edition[edition]:
                statuses[row.status] += row.count
                if row.status == DeliveryStatus.SKIPPED:
                    reasons[row.skip_reason or SkipReason.OTHER] += row.count
            progress.append(EditionProgress(edition, dict(statuses), dict(reasons)))
        return progress


def read_status(
    session_factory: sessionmaker[Session],
    *,
    broker_url: str,
    queues: Sequence[str],
    now: datetime,
) -> Status:
    with unit_of_work(session_factory) as session:
        deliveries = recent_deliveries(session, now=now)
        sources = source_activity(session)
        mail_events = recent_event_counts(session, since=now - RECENT_EVENTS)
        bounced = count_by_status(session).get(SubscriberStatus.BOUNCED, 0)
    return Status(
        taken_at=now,
        deliveries=deliveries,
        sources=sources,
        queues=queue_depths(broker_url, queues) if broker_url else None,
        broker_configured=bool(broker_url),
        mail_events=mail_events,
        bounced_readers=bounced,
    )
