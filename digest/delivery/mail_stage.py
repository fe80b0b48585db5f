"""The mail stage: a ranked delivery composed from its stored picks and sent.

Nothing here ranks or imports the ranking: a mail process loads the stored
picks and their papers in bulk, composes each reader's email and hands it to the
sender, several in flight. What became of each delivery is a :class:`Result`; the caller
writes them in small groups (:func:`digest.delivery.ledger.record_results`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.bounces.smtp import refusal_event
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import Outcome, Result, RetryPolicy
from digest.delivery.models import Delivery, DeliveryPaper, EditionTrending, SkipReason
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError
from digest.papers.models import Paper
from digest.ranking.picks import Pick
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailItem:
    """One claimed delivery with what composing it needs, read before sending starts."""

    delivery_id: int
    edition: str
    created_at: datetime
    attempts: int
    subscriber: Subscriber
    picks: list[Pick]
    # The edition's "Trending today" section, less this reader's picks.
    trending: list[Pick] = field(default_factory=list)


def load_mail_items(
    session: Session, delivery_ids: Sequence[int], *, trending_size: int = 0
) -> list[MailItem]:
    """The deliveries, their readers, stored picks and papers, and the editions'
    trending sections (at most ``trending_size`` papers each): four queries for a chunk.

    The objects stay usable after the session closes (nothing is lazy-loaded later).
    """
    if not delivery_ids:
        return []
    rows = session.execute(
        select(Delivery.id, Delivery.edition, Delivery.created_at, Delivery.attempts, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.id)
    ).all()
    placed = session.execute(
        select(DeliveryPaper.delivery_id, DeliveryPaper.paper_id, DeliveryPaper.reason)
        .where(DeliveryPaper.delivery_id.in_(delivery_ids))
        .order_by(DeliveryPaper.delivery_id, DeliveryPaper.position)
    ).all()
    section = (
        session.execute(
            select(EditionTrending.edition, EditionTrending.paper_id, EditionTrending.reason)
            .where(EditionTrending.edition.in_({r.edition for r in rows}))
            .order_by(EditionTrending.edition, EditionTrending.position)
        ).all()
        if trending_size
        else []
    )
    # Each paper once, however many readers it goes to.
    wanted = {r.paper_id for r in placed} | {r.paper_id for r in section}
    papers = {p.id: p for p in session.scalars(select(Paper).where(Paper.id.in_(wanted)))}
    picks: dict[int, list[Pick]] = {}
    for delivery_id, paper_id, reason in placed:
        picks.setdefault(delivery_id, []).append(
            Pick(paper=papers[paper_id], reason=reason, upvotes=None)
        )
    trending: dict[str, list[Pick]] = {}
    for edition, paper_id, reason in section:
        trending.setdefault(edition, []).append(
            Pick(paper=papers[paper_id], reason=reason, upvotes=None)
        )
    items = []
    for i, edition, created_at, attempts, subscriber in rows:
        own = picks.get(i, [])
        chosen = {p.paper.id for p in own}
        others = [p for p in trending.get(edition, []) if p.paper.id not in chosen]
        items.append(
            MailItem(i, edition, created_at, attempts, subscriber, own, others[:trending_size])
        )
    return items


def prepare(item: MailItem, *, composer: DigestComposer, now: datetime) -> OutgoingMessage | Result:
    """The digest to send, or why there is none (this reader's outcome, recorded as is).

    Any failure while composing is this reader's alone: a bug or bad data for one
    reader must not stop the others.
    """
    reader = item.subscriber
    if reader.status != SubscriberStatus.ACTIVE:
        return Result(
            item.delivery_id,
            Outcome.SKIPPED,
            skip_reason=SkipReason(reader.status.value),
            note=f"subscriber is {reader.status}",
        )
    if not item.picks:
        # A ranked row always has picks; one without (edited by hand) has nothing to send.
        return Result(
            item.delivery_id,
            Outcome.SKIPPED,
            skip_reason=SkipReason.NO_NEW_PAPERS,
            note="no stored picks",
        )
    try:
        return composer.compose(
            reader,
            item.picks,
            delivery_id=item.delivery_id,
            edition=item.edition,
            now=now,
            trending=item.trending,
        ).outgoing
    except Exception as exc:
        log.exception("delivery %s could not be composed", item.delivery_id)
        return Result(item.delivery_id, Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")


def sent(
    item: MailItem,
    message: OutgoingMessage,
    error: SendError | None,
    *,
    policy: RetryPolicy,
    now: datetime,
) -> Result:
    """What the server's answer to one digest makes of its delivery."""
    if error is None:
        return Result(item.delivery_id, Outcome.SENT, message_id=message.message_id)
    return failure(item, error, policy=policy, now=now, message_id=message.message_id)


def failure(
    item: MailItem,
    exc: SendError,
    *,
    policy: RetryPolicy,
    now: datetime,
    message_id: str | None = None,
) -> Result:
    """A send error's outcome: failed for good if permanent or too late, else a retry.
    A permanent refusal of the reader's address also carries the bounce it means."""
    if exc.permanent:
        log.warning("delivery %s refused for good: %s", item.delivery_id, exc)
        bounce = refusal_event(
            exc,
            recipient=item.subscriber.email,
            occurred_at=now,
            delivery_id=item.delivery_id,
            subscriber_id=item.subscriber.id,
            message_id=message_id,
        )
        return Result(item.delivery_id, Outcome.FAILED, error=str(exc), bounce=bounce)
    if policy.too_late(edition=item.edition, created_at=item.created_at, now=now):
        log.warning("delivery %s given up, edition too old: %s", item.delivery_id, exc)
        return Result(
            item.delivery_id,
            Outcome.FAILED,
            error=f"gave up after {item.attempts} attempts, edition too old: {exc}",
        )
    return Result(
        item.delivery_id,
        Outcome.RETRY,
        error=str(exc),
        retry_at=now + policy.delay(item.attempts),
    )
