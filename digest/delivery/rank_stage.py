"""The rank stage: each queued reader's picks chosen and stored on the delivery.

Readers of a chunk are ranked together (one pass over the candidates). What
will be sent is in the ledger before anything is sent: the mail stage composes
from these rows and never ranks. So is each edition's trending section, chosen
by the first rank task of the edition (:func:`store_edition_trending`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from digest.db.dialects import copy_rows, insert_ignoring_conflicts
from digest.delivery.ledger import mark_failed, mark_ranked, mark_skipped, queued
from digest.delivery.models import DeliveryPaper, EditionTrending, SkipReason
from digest.ranking.picks import Empty, Ranker, Selection
from digest.subscriptions.choices import SubscriberStatus
from digest.subscriptions.models import Subscriber

log = logging.getLogger(__name__)

_PLACED_COLUMNS = ("delivery_id", "paper_id", "position", "reason")


@dataclass
class Ranked:
    ranked: list[int] = field(default_factory=list)
    skipped: int = 0
    failed: int = 0

    def counts(self) -> dict[str, int]:
        return {"ranked": len(self.ranked), "skipped": self.skipped, "failed": self.failed}


def rank_deliveries(
    session: Session, delivery_ids: Sequence[int], *, ranker: Ranker, now: datetime
) -> Ranked:
    """Rank the queued deliveries among ``delivery_ids``; others are left as they are."""
    result = Ranked()
    rows = queued(session, delivery_ids)
    if not rows:
        return result
    readers = {
        s.id: s
        for s in session.scalars(
            select(Subscriber).where(Subscriber.id.in_({d.subscriber_id for d in rows}))
        )
    }
    skipped: list[tuple[int, SkipReason, str]] = []
    active = []
    for delivery in rows:
        reader = readers[delivery.subscriber_id]
        # Checked when ranking and again when mailing: an unsubscribe in between wins.
        if reader.status != SubscriberStatus.ACTIVE:
            skipped.append(
                (delivery.id, SkipReason(reader.status.value), f"subscriber is {reader.status}")
            )
        else:
            active.append(delivery)

    selections = _select(session, ranker, [readers[d.subscriber_id] for d in active], now=now)
    placed: list[tuple[int, int, int, str]] = []
    ranked: list[tuple[int, str | None]] = []
    failed: list[tuple[int, str]] = []
    for delivery, selection in zip(active, selections, strict=True):
        if isinstance(selection, Exception):
            failed.append((delivery.id, f"ranking failed: {type(selection).__name__}: {selection}"))
        elif not selection.picks:
            reason = SkipReason((selection.empty or Empty.NO_NEW_PAPERS).value)
            skipped.append((delivery.id, reason, selection.note or "no new papers"))
        else:
            ranked.append((delivery.id, selection.note or None))
            placed.extend(
                (delivery.id, pick.paper.id, position, pick.reason)
                for position, pick in enumerate(selection.picks)
            )
    # By COPY on PostgreSQL: an executemany INSERT cost a sixth of a chunk's ranking,
    # for five rows a reader.
    copy_rows(session, DeliveryPaper, _PLACED_COLUMNS, placed)
    if placed:
        ranked_ids = {i for i, _ in ranked}
        editions = {d.edition for d in active if d.id in ranked_ids}
        store_edition_trending(session, editions, ranker=ranker, now=now)
    mark_ranked(session, ranked, now=now)
    mark_skipped(session, skipped)
    mark_failed(session, failed)
    for delivery_id, reason, note in skipped:
        log.info("delivery %s skipped (%s): %s", delivery_id, reason, note)
    result.ranked = [i for i, _ in ranked]
    result.skipped, result.failed = len(skipped), len(failed)
    return result


def store_edition_trending(
    session: Session, editions: set[str], *, ranker: Ranker, now: datetime
) -> None:
    """The trending section of each edition that has none yet: chosen once, when the
    edition's first readers are ranked, and read by the mail stage for all of them.

    Two rank tasks of a new edition may both choose it; the first rows stored win.
    A failure here costs the section, never a reader's digest.
    """
    have = set(
        session.scalars(
            select(EditionTrending.edition).where(EditionTrending.edition.in_(editions)).distinct()
        )
    )
    missing = sorted(editions - have)
    if not missing:
        return
    try:
        picks = ranker.trending(session, now=now)
    except SQLAlchemyError:
        raise
    except Exception:
        log.exception("the trending section of %s could not be chosen", ", ".join(missing))
        return
    rows = [
        {"edition": edition, "position": position, "paper_id": p.paper.id, "reason": p.reason}
        for edition in missing
        for position, p in enumerate(picks)
    ]
    if rows:
        session.execute(
            insert_ignoring_conflicts(session, EditionTrending, ["edition", "position"]), rows
        )


def _select(
    session: Session, ranker: Ranker, readers: list[Subscriber], *, now: datetime
) -> list[Selection | Exception]:
    """Every reader's selection, ranked together; a reader whose ranking raises gets
    the exception in place of a selection, and the others are ranked without them."""
    if not readers:
        return []
    try:
        return list(ranker.pick_many(session, readers, now=now))
    except SQLAlchemyError:
        # The database, not a reader: the task is retried whole.
        raise
    except Exception:
        log.exception("ranking %d readers together failed; ranking each alone", len(readers))
    selections: list[Selection | Exception] = []
    for reader in readers:
        try:
            [selection] = ranker.pick_many(session, [reader], now=now)
        except SQLAlchemyError:
            raise
        except Exception as exc:
            log.exception("ranking subscriber %s failed", reader.id)
            selections.append(exc)
        else:
            selections.append(selection)
    return selections
