"""Digests after they were sent: a reader's own, and each day's trending papers.

What the web shows outside the mailbox ("View in browser", the reader's private
feed, the public page of the day) is read from what delivery stored: each sent
digest's picks (``delivery_papers``) and each edition's trending section
(``edition_trending``). Nothing is ranked again, so a digest on the web is the one
that was mailed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery.mail_stage import MailItem, load_mail_items
from digest.delivery.models import Delivery, DeliveryStatus, EditionTrending
from digest.papers.models import Paper

# Daily editions are the reader's local date; weekly ones ("2026-W49") are left out
# of the public days.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A day's public list: its top ten. An edition stores more (enough to leave out any
# reader's own picks from their section), but a page of fifty is not a day's best.
PAPERS_PER_DAY = 10


@dataclass(frozen=True)
class SentDigest:
    item: MailItem
    sent_at: datetime


def sent_digests(
    session: Session, subscriber_id: int, *, limit: int, trending_size: int
) -> list[SentDigest]:
    """The reader's last ``limit`` digests that went out, newest first."""
    rows = session.execute(
        select(Delivery.id, Delivery.sent_at)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(limit)
    ).all()
    sent_at = {delivery_id: moment for delivery_id, moment in rows if moment is not None}
    items = load_mail_items(session, list(sent_at), trending_size=trending_size)
    digests = [SentDigest(item, sent_at[item.delivery_id]) for item in items if item.picks]
    return sorted(digests, key=lambda d: (d.sent_at, d.item.delivery_id), reverse=True)


def sent_digest(
    session: Session, subscriber_id: int, delivery_id: int, *, trending_size: int
) -> SentDigest | None:
    """One of the reader's digests that went out; None for anyone else's, or one not sent."""
    row = session.execute(
        select(Delivery.sent_at).where(
            Delivery.id == delivery_id,
            Delivery.subscriber_id == subscriber_id,
            Delivery.status == DeliveryStatus.SENT,
        )
    ).first()
    if row is None or row.sent_at is None:
        return None
    items = load_mail_items(session, [delivery_id], trending_size=trending_size)
    if not items or not items[0].picks:
        return None
    return SentDigest(items[0], row.sent_at)


@dataclass(frozen=True)
class TrendingDay:
    day: date
    papers: list[Paper]


def trending_days(session: Session, *, limit: int) -> list[TrendingDay]:
    """The last ``limit`` days that had a trending section, newest first."""
    editions = [
        e
        for e in session.scalars(
            select(EditionTrending.edition).distinct().order_by(EditionTrending.edition.desc())
        )
        if _DAY.fullmatch(e)
    ][:limit]
    return _days(session, editions)


def trending_day(session: Session, day: date) -> TrendingDay | None:
    found = _days(session, [day.isoformat()])
    return found[0] if found else None


def neighbour_days(session: Session, day: date) -> tuple[date | None, date | None]:
    """The days with a trending section just before and after ``day``."""
    edition = day.isoformat()
    earlier = session.scalars(
        select(EditionTrending.edition)
        .where(EditionTrending.edition < edition)
        .order_by(EditionTrending.edition.desc())
        .limit(50)
    )
    later = session.scalars(
        select(EditionTrending.edition)
        .where(EditionTrending.edition > edition)
        .order_by(EditionTrending.edition)
        .limit(50)
    )
    return _first_day(earlier), _first_day(later)


def _first_day(editions: Iterable[str]) -> date | None:
    for edition in editions:
        if _DAY.fullmatch(edition):
            return date.fromisoformat(edition)
    return None


def _days(session: Session, editions: list[str]) -> list[TrendingDay]:
    if not editions:
        return []
    rows = session.execute(
        select(EditionTrending.edition, Paper)
        .join(Paper, Paper.id == EditionTrending.paper_id)
        .where(EditionTrending.edition.in_(editions), EditionTrending.position < PAPERS_PER_DAY)
        .order_by(EditionTrending.edition.desc(), EditionTrending.position)
    ).all()
    papers: dict[str, list[Paper]] = {}
    for edition, paper in rows:
        papers.setdefault(edition, []).append(paper)
    return [TrendingDay(date.fromisoformat(e), papers[e]) for e in editions if e in papers]
