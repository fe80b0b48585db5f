"""The delivery ledger: claiming due digests and sending each one exactly once.

A delivery row is unique per subscriber and edition, so claiming is idempotent
(a second dispatcher or beat finds nothing to claim), and a redelivered task
finds its delivery already ``sent`` and does nothing.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db.dialects import insert_ignoring_conflicts
from digest.delivery.compose import DigestComposer
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.delivery.schedule import due_subscribers
from digest.mail.sender import MailConnection, SendError
from digest.ranking.picks import Ranker
from digest.subscriptions.models import Subscriber, SubscriberStatus

log = logging.getLogger(__name__)


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    RETRY = "retry"
    FAILED = "failed"
    # Already handled by an earlier run of the same task.
    ALREADY_DONE = "already-done"


# A queued delivery this long past its planned attempt has lost its task.
STALE_AFTER = timedelta(minutes=15)


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failed attempt: 1, 2, 4 ... minutes, at most 1 h."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def claim_due_deliveries(session: Session, *, now: datetime) -> list[int]:
    """Create a queued delivery for every due reader; return only the ids created here."""
    due = due_subscribers(session, now=now)
    if not due:
        return []
    rows = [
        {
            "subscriber_id": sid,
            "edition": edition,
            "status": DeliveryStatus.QUEUED.value,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for sid, edition in due
    ]
    statement = insert_ignoring_conflicts(
        session, Delivery, ["subscriber_id", "edition"]
    ).returning(Delivery.id)
    return sorted(session.scalars(statement, rows).all())


def stale_deliveries(session: Session, *, now: datetime) -> list[int]:
    """Queued deliveries whose task was lost; sending them again is safe (idempotent)."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.QUEUED,
                Delivery.next_attempt_at < now - STALE_AFTER,
            )
            .order_by(Delivery.id)
        )
    )


def send_delivery(
    session: Session,
    delivery_id: int,
    *,
    composer: DigestComposer,
    ranker: Ranker,
    connection: MailConnection,
    now: datetime,
    max_attempts: int,
) -> SendOutcome:
    delivery = session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        # Two workers holding the same id (a redelivered task): one waits, then
        # finds the delivery already sent.
        .with_for_update()
    )
    if delivery is None or delivery.status != DeliveryStatus.QUEUED:
        return SendOutcome.ALREADY_DONE
    subscriber = session.get_one(Subscriber, delivery.subscriber_id)
    # Checked at send time, not claim time: an unsubscribe between the two wins.
    if subscriber.status != SubscriberStatus.ACTIVE:
        return _skip(delivery, f"subscriber is {subscriber.status.value}")

    selection = ranker.pick(session, subscriber, now=now)
    picks = selection.picks
    if not picks:
        return _skip(delivery, selection.note or "no new papers for this reader")
    if selection.note:
        log.info("delivery %s: %s", delivery.id, selection.note)
    composed = composer.compose(subscriber, picks, edition=delivery.edition, now=now)
    delivery.attempts += 1
    try:
        connection.send(composed.outgoing)
    except SendError as exc:
        delivery.last_error = str(exc)
        if exc.permanent or delivery.attempts >= max_attempts:
            delivery.status = DeliveryStatus.FAILED
            log.warning("delivery %s failed for good: %s", delivery.id, exc)
            return SendOutcome.FAILED
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)
        log.info("delivery %s will be retried: %s", delivery.id, exc)
        return SendOutcome.RETRY
    delivery.status = DeliveryStatus.SENT
    delivery.message_id = composed.message_id
    delivery.sent_at = now
    delivery.last_error = None
    delivery.papers = [
        DeliveryPaper(paper_id=pick.paper.id, position=position, reason=pick.reason)
        for position, pick in enumerate(picks)
    ]
    return SendOutcome.SENT


def _skip(delivery: Delivery, reason: str) -> SendOutcome:
    delivery.status = DeliveryStatus.SKIPPED
    delivery.last_error = reason
    log.info("delivery %s skipped: %s", delivery.id, reason)
    return SendOutcome.SKIPPED
