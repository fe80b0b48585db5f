"""Delivery progress as ``digest status`` and ``/metrics`` read it: the recent window, by
edition, state and skip reason, with pending rows of any age."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from digest.delivery.models import Delivery, DeliveryStatus, SkipReason
from digest.delivery.progress import recent_deliveries
from digest.metrics.status import Status
from tests.factories import NOW, make_subscriber


def deliver(
    session: Session,
    edition: str,
    status: DeliveryStatus,
    *,
    age: timedelta,
    skip_reason: SkipReason | None = None,
) -> None:
    reader = make_subscriber(session)
    session.add(
        Delivery(
            subscriber_id=reader.id,
            edition=edition,
            status=status,
            skip_reason=skip_reason,
            created_at=NOW - age,
        )
    )
    session.flush()


def test_recent_editions_are_counted_by_state_and_skip_reason(session: Session) -> None:
    hour = timedelta(hours=1)
    # Created (in id order) as the ledger creates them: oldest first.
    deliver(session, "2026-11-19", DeliveryStatus.SENT, age=50 * hour)
    deliver(session, "2026-W46", DeliveryStatus.RANKED, age=48 * hour)
    deliver(session, "2026-11-20", DeliveryStatus.SENT, age=26 * hour)
    deliver(session, "2026-11-20", DeliveryStatus.SENT, age=20 * hour)
    deliver(session, "2026-11-21", DeliveryStatus.SENT, age=2 * hour)
    deliver(session, "2026-11-21", DeliveryStatus.SENT, age=2 * hour)
    deliver(session, "2026-11-21", DeliveryStatus.QUEUED, age=hour)
    deliver(session, "2026-11-21", DeliveryStatus.SKIPPED, age=hour, skip_reason=SkipReason.PAUSED)
    deliver(
        session,
        "2026-11-21",
        DeliveryStatus.SKIPPED,
        age=hour,
        skip_reason=SkipReason.NOTHING_RELEVANT,
    )
    deliver(session, "2026-11-21", DeliveryStatus.FAILED, age=hour)

    status = Status(
        taken_at=NOW,
        deliveries=recent_deliveries(session, now=NOW),
        sources=[],
        queues=None,
        broker_configured=False,
    )
    today, yesterday, week = status.editions()
    assert today.edition == "2026-11-21"
    assert today.due == 6
    assert today.by_status == {
        DeliveryStatus.SENT: 2,
        DeliveryStatus.QUEUED: 1,
        DeliveryStatus.SKIPPED: 2,
        DeliveryStatus.FAILED: 1,
    }
    assert today.skipped_by_reason == {SkipReason.PAUSED: 1, SkipReason.NOTHING_RELEVANT: 1}
    # Only the row created within the last 24 hours; the older one is history.
    assert (yesterday.edition, yesterday.by_status) == ("2026-11-20", {DeliveryStatus.SENT: 1})
    # Still pending two days on (a weekly digest waiting out an outage): counted.
    assert (week.edition, week.by_status) == ("2026-W46", {DeliveryStatus.RANKED: 1})
