"""Store a mail event and apply the bounce policy to the reader it is about.

Every source (the SMTP refusal at send time, a DSN or abuse report mailed to a
VERP address, a provider's webhook) ends here, inside its caller's unit of work:
the event row and the reader's new state commit together or not at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.bounces.events import EventKind, MailEvent
from digest.bounces.models import MailEventRecord
from digest.bounces.policy import BouncePolicy
from digest.delivery.models import Delivery
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import unsubscribe

# What is kept of a report: enough to read the diagnostic, not a whole message.
MAX_RAW = 8000
MAX_REASON = 1000


class Action(enum.StrEnum):
    # The reader is bounced from now on (a hard bounce, or one soft bounce too many).
    BOUNCED = "bounced"
    # A complaint: the reader is unsubscribed.
    UNSUBSCRIBED = "unsubscribed"
    # A soft bounce below the limit: stored, counted, nothing changes yet.
    COUNTED = "counted"
    # Stored; the reader was already in a state that stops mail (bounced, unsubscribed).
    RECORDED = "recorded"
    # Seen before (a provider retrying its webhook): nothing stored or counted again.
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class RecordedEvent:
    event_id: int
    subscriber_id: int
    action: Action


def record_event(
    session: Session, event: MailEvent, *, now: datetime, policy: BouncePolicy
) -> RecordedEvent | None:
    """Store ``event`` and apply ``policy``; None when it names nobody we know
    (the caller counts it as dropped: there is no one to stop mailing)."""
    delivery_id, subscriber = _find_subscriber(session, event)
    if subscriber is None:
        return None
    earlier = _same_event(session, event, delivery_id, subscriber.id)
    if earlier is not None:
        return RecordedEvent(earlier, subscriber.id, Action.DUPLICATE)
    record = MailEventRecord(
        subscriber_id=subscriber.id,
        delivery_id=delivery_id,
        kind=event.kind,
        source=event.source[:32],
        status=event.status[:16] if event.status else None,
        reason=event.reason[:MAX_REASON],
        raw=event.raw[:MAX_RAW],
        message_id=event.message_id[:255] if event.message_id else None,
        occurred_at=event.occurred_at,
        received_at=now,
    )
    action = _apply(session, policy, subscriber, event, now=now)
    session.add(record)
    session.flush()
    return RecordedEvent(record.id, subscriber.id, action)


def _find_subscriber(session: Session, event: MailEvent) -> tuple[int | None, Subscriber | None]:
    """(the delivery id as stored, the reader): by delivery, else by subscriber id,
    else by address. A delivery id that names no row (pruned since) is not stored."""
    if event.delivery_id is not None:
        subscriber_id = session.scalar(
            select(Delivery.subscriber_id).where(Delivery.id == event.delivery_id)
        )
        if subscriber_id is not None:
            return event.delivery_id, session.get(Subscriber, subscriber_id)
    address = event.recipient.strip().strip("<>").strip().lower()
    if event.subscriber_id is not None:
        found = session.get(Subscriber, event.subscriber_id)
        # A notice about an address change goes to the new address, under the
        # subscriber's own bounce address: its bounce is about whoever has the new
        # address (if anyone), not about this subscriber.
        about_new_address = bool(address) and address == found.pending_email if found else False
        if found is not None and not about_new_address:
            return None, found
    if not address:
        return None, None
    # Stored addresses are lower-cased (normalise_email), so this uses the unique index.
    return None, session.scalar(select(Subscriber).where(Subscriber.email == address))


def _same_event(
    session: Session, event: MailEvent, delivery_id: int | None, subscriber_id: int
) -> int | None:
    """The id of this event stored before, when the source names the message: a
    retried webhook or a report mailed twice must not be counted twice. Per reader:
    one report about a message sent to several (SES names each recipient) is one
    event for each of them."""
    if event.message_id is None and delivery_id is None:
        return None
    query = select(MailEventRecord.id).where(
        MailEventRecord.subscriber_id == subscriber_id,
        MailEventRecord.source == event.source[:32],
        MailEventRecord.kind == event.kind,
        MailEventRecord.status == event.status[:16]
        if event.status
        else MailEventRecord.status.is_(None),
    )
    if event.message_id is not None:
        query = query.where(MailEventRecord.message_id == event.message_id[:255])
    else:
        query = query.where(MailEventRecord.delivery_id == delivery_id)
    return session.scalar(query.limit(1))


def _apply(
    session: Session,
    policy: BouncePolicy,
    subscriber: Subscriber,
    event: MailEvent,
    *,
    now: datetime,
) -> Action:
    if subscriber.status in (SubscriberStatus.BOUNCED, SubscriberStatus.UNSUBSCRIBED):
        # Mail has already stopped, and the state that stopped it stays: an unsubscribe
        # the reader asked for stays theirs, and a bounced reader comes back only
        # through a fresh confirmation (an unsubscribed one could resubscribe from
        # an old link without one).
        return Action.RECORDED
    if event.kind == EventKind.COMPLAINT:
        unsubscribe(session, subscriber, now=now)
        return Action.UNSUBSCRIBED
    if event.kind == EventKind.SOFT_BOUNCE and _soft_bounces(session, policy, subscriber, event) < (
        policy.soft_limit
    ):
        return Action.COUNTED
    subscriber.status = SubscriberStatus.BOUNCED
    return Action.BOUNCED


def _soft_bounces(
    session: Session, policy: BouncePolicy, subscriber: Subscriber, event: MailEvent
) -> int:
    """Soft bounces within the window that ends with ``event``, this one included.
    Those from before the reader last confirmed do not count: they were about a
    subscription the reader has since started again."""
    start = event.occurred_at - policy.soft_window
    if subscriber.confirmed_at is not None and subscriber.confirmed_at > start:
        start = min(subscriber.confirmed_at, event.occurred_at)
    earlier = session.scalar(
        select(func.count())
        .select_from(MailEventRecord)
        .where(
            MailEventRecord.subscriber_id == subscriber.id,
            MailEventRecord.kind == EventKind.SOFT_BOUNCE,
            MailEventRecord.occurred_at >= start,
            MailEventRecord.occurred_at <= event.occurred_at,
        )
    )
    return (earlier or 0) + 1
