"""What the stored mail events say, for a person: recent counts, each reader's last
event, a reader's own events (their data export)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.bounces.events import EventKind
from digest.bounces.models import MailEventRecord
from digest.db.limits import IN_LIST_CHUNK
from digest.delivery.models import Delivery


def recent_event_counts(session: Session, *, since: datetime) -> dict[tuple[EventKind, str], int]:
    """Events that happened since ``since``, by kind and source."""
    rows = session.execute(
        select(MailEventRecord.kind, MailEventRecord.source, func.count())
        .where(MailEventRecord.occurred_at >= since)
        .group_by(MailEventRecord.kind, MailEventRecord.source)
    ).all()
    return {(kind, source): count for kind, source, count in rows}


def last_events(session: Session, subscriber_ids: Sequence[int]) -> dict[int, MailEventRecord]:
    """Each of these readers' latest event (the last one stored), for those with one."""
    found: dict[int, MailEventRecord] = {}
    for start in range(0, len(subscriber_ids), IN_LIST_CHUNK):
        chunk = subscriber_ids[start : start + IN_LIST_CHUNK]
        # The highest id is the last one stored: events are stored as they arrive.
        latest = (
            select(func.max(MailEventRecord.id).label("id"))
            .where(MailEventRecord.subscriber_id.in_(chunk))
            .group_by(MailEventRecord.subscriber_id)
            .subquery()
        )
        for event in session.scalars(
            select(MailEventRecord).join(latest, MailEventRecord.id == latest.c.id)
        ):
            if event.subscriber_id is not None:
                found[event.subscriber_id] = event
    return found


def describe(event: MailEventRecord) -> str:
    """One line: "hard_bounce 5.1.1 via smtp on 2026-11-21: user unknown"."""
    status = f" {event.status}" if event.status else ""
    reason = f": {event.reason}" if event.reason else ""
    return f"{event.kind.value}{status} via {event.source} on {event.occurred_at:%Y-%m-%d}{reason}"


def events_for_export(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """A reader's events as their data export shows them, oldest first."""
    rows = session.execute(
        select(MailEventRecord, Delivery.edition)
        .outerjoin(Delivery, Delivery.id == MailEventRecord.delivery_id)
        .where(MailEventRecord.subscriber_id == subscriber_id)
        .order_by(MailEventRecord.occurred_at, MailEventRecord.id)
    ).all()
    return [
        {
            "kind": event.kind.value,
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat(),
            "received_at": event.received_at.isoformat(),
            "digest_edition": edition,
            "status": event.status,
            "reason": event.reason,
            "raw": event.raw,
        }
        for event, edition in rows
    ]
