"""The mail stage: a ranked delivery composed from its stored picks and sent.

Nothing here ranks or imports the ranking: a mail process loads the stored
picks and their papers in bulk, composes each reader's email and hands it to the
sender, several in flight. What became of each delivery is a :class:`Result`; the caller
writes them in small groups (:func:`digest.delivery.ledger.record_results`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from digest.bounces.smtp import refusal_event
from digest.db.dialects import one_of
from digest.delivery.compose import DigestComposer
from digest.delivery.ledger import Outcome, Result, RetryPolicy
from digest.delivery.models import (
    Delivery,
    DeliveryPaper,
    DeliveryStatus,
    EditionTrending,
    SkipReason,
)
from digest.mail.outgoing import OutgoingMessage
from digest.mail.sender import SendError
from digest.papers.models import Paper
from digest.ranking.picks import Pick
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber

log = logging.getLogger(__name__)

# A long-lived mail process starts its papers over when it has seen this many.
_KNOWN_PAPERS_LIMIT = 20_000
_READER_COLUMNS = (
    Subscriber.id,
    Subscriber.email,
    Subscriber.status,
    Subscriber.interests,
    Subscriber.frequency,
    Subscriber.token_version,
    Subscriber.confirm_nonce,
)


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


class KnownPapers:
    """The papers earlier chunks of this process loaded, by id: read again only once
    changed (``updated_at``), so a chunk reads the papers its readers share once per
    process, not once per chunk (decoding a paper's JSON columns cost more than
    composing from it)."""

    def __init__(self, limit: int = _KNOWN_PAPERS_LIMIT) -> None:
        self._papers: dict[int, Paper] = {}
        self._limit = limit

    def get(self, session: Session, wanted: Mapping[int, datetime]) -> dict[int, Paper]:
        """The papers of ``wanted`` (id: its ``updated_at`` as stored now)."""
        papers = self._papers
        stale = [
            i
            for i, updated in wanted.items()
            if (p := papers.get(i)) is None or p.updated_at != updated
        ]
        if stale:
            if len(papers) + len(stale) > self._limit:
                papers.clear()
                stale = list(wanted)
            for paper in session.scalars(select(Paper).where(one_of(session, Paper.id, stale))):
                papers[paper.id] = paper
        return {i: papers[i] for i in wanted}


def load_mail_items(
    session: Session,
    delivery_ids: Sequence[int],
    *,
    known: KnownPapers | None = None,
    trending_size: int = 0,
) -> list[MailItem]:
    """The deliveries, their readers, stored picks and papers, and the editions'
    trending sections (at most ``trending_size`` papers each): four queries for a chunk
    (three once ``known`` holds its papers).

    The objects stay usable after the session closes (nothing is lazy-loaded later).
    """
    if not delivery_ids:
        return []
    ids = one_of(session, Delivery.id, delivery_ids)
    rows = session.execute(
        select(Delivery.id, Delivery.edition, Delivery.created_at, Delivery.attempts, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(ids)
        .order_by(Delivery.id)
        # What composing reads of a reader; their lists (authors, categories followed)
        # are the ranking's, and decoding them was a fifth of loading a chunk.
        .options(load_only(*_READER_COLUMNS))
    ).all()
    placed = session.execute(
        select(
            DeliveryPaper.delivery_id,
            DeliveryPaper.paper_id,
            DeliveryPaper.reason,
            Paper.updated_at,
        )
        .join(Paper, Paper.id == DeliveryPaper.paper_id)
        .where(one_of(session, DeliveryPaper.delivery_id, delivery_ids))
        .order_by(DeliveryPaper.delivery_id, DeliveryPaper.position)
    ).all()
    section = (
        session.execute(
            select(
                EditionTrending.edition,
                EditionTrending.paper_id,
                EditionTrending.reason,
                Paper.updated_at,
            )
            .join(Paper, Paper.id == EditionTrending.paper_id)
            .where(EditionTrending.edition.in_({r.edition for r in rows}))
            .order_by(EditionTrending.edition, EditionTrending.position)
        ).all()
        if trending_size
        else []
    )
    # Each paper once, however many readers it goes to.
    wanted = {r.paper_id: r.updated_at for r in placed}
    wanted.update({r.paper_id: r.updated_at for r in section})
    papers = (known or KnownPapers()).get(session, wanted)
    picks: dict[int, list[Pick]] = {}
    for delivery_id, paper_id, reason, _ in placed:
        picks.setdefault(delivery_id, []).append(
            Pick(paper=papers[paper_id], reason=reason, upvotes=None)
        )
    trending: dict[str, list[Pick]] = {}
    for edition, paper_id, reason, _ in section:
        trending.setdefault(edition, []).append(
            Pick(paper=papers[paper_id], reason=reason, upvotes=None)
        )
    shown = _shown_before(session, [r[4].id for r in rows], {r.paper_id for r in section})
    items = []
    for i, edition, created_at, attempts, subscriber in rows:
        own = picks.get(i, [])
        chosen = {p.paper.id for p in own}
        seen = shown.get(subscriber.id, {})
        others = [
            p
            for p in trending.get(edition, [])
            if p.paper.id not in chosen and seen.get(p.paper.id, i + 1) > i
        ]
        items.append(
            MailItem(i, edition, created_at, attempts, subscriber, own, others[:trending_size])
        )
    return items


def _shown_before(
    session: Session, reader_ids: Sequence[int], paper_ids: set[int]
) -> dict[int, dict[int, int]]:
    """Which of ``paper_ids`` each reader must not find in a trending section: per
    reader, paper id -> the first delivery id it may not appear in. Papers sent to
    them before (never a paper twice, in a section either), from that delivery on;
    papers they asked fewer of, or more of (a paper of their own library is no news
    to them), everywhere (-1)."""
    if not paper_ids or not reader_ids:
        return {}
    shown: dict[int, dict[int, int]] = {}
    sent = session.execute(
        select(Delivery.subscriber_id, DeliveryPaper.paper_id, Delivery.id)
        .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
        .where(
            one_of(session, Delivery.subscriber_id, reader_ids),
            DeliveryPaper.paper_id.in_(paper_ids),
            Delivery.status == DeliveryStatus.SENT,
        )
    )
    for reader, paper, delivery in sent:
        # Shown from the delivery after the one that sent it: an old digest on the
        # web still shows the section it was mailed with.
        first = shown.setdefault(reader, {}).get(paper)
        shown[reader][paper] = min(delivery + 1, first) if first is not None else delivery + 1
    fewer = session.execute(
        select(Feedback.subscriber_id, Feedback.paper_id).where(
            one_of(session, Feedback.subscriber_id, reader_ids),
            Feedback.paper_id.in_(paper_ids),
            Feedback.kind.in_((FeedbackKind.FEWER, FeedbackKind.MORE)),
        )
    )
    for reader, paper in fewer:
        shown.setdefault(reader, {})[paper] = -1
    return shown


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
