"""How far delivery has got: deliveries counted by edition, state and skip reason.

Read by ``digest status`` and by the metrics collector at scrape time, so it is one
grouped statement whose cost follows the recent deliveries, not the whole ledger:
the window starts at the newest row created before it (a backward walk of the
primary key, which grows with ``created_at``), and pending rows of any age (a
weekly digest retried for days) come in through the status index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.delivery.models import PENDING, Delivery, DeliveryStatus, SkipReason

# Long enough to hold each time zone's current daily edition.
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class DeliveryCount:
    edition: str
    status: DeliveryStatus
    skip_reason: SkipReason | None
    count: int
    # The newest of these rows' claims: editions are ordered by it (a weekly
    # edition's name does not sort among daily ones).
    latest: datetime


def recent_deliveries(
    session: Session, *, now: datetime, window: timedelta = RECENT
) -> list[DeliveryCount]:
    """Deliveries created within ``window`` before ``now``, and every pending one, counted
    by edition, status and skip reason."""
    before_window = (
        select(func.coalesce(func.max(Delivery.id), 0))
        .where(Delivery.created_at < now - window)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Delivery.edition,
            Delivery.status,
            Delivery.skip_reason,
            func.count(),
            func.max(Delivery.created_at),
        )
        .where(or_(Delivery.id > before_window, Delivery.status.in_(PENDING)))
        .group_by(Delivery.edition, Delivery.status, Delivery.skip_reason)
    ).all()
    return [DeliveryCount(*row) for row in rows]
