"""Storing papers: one row per work, updated in place, popularity appended over time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from digest.dialects import insert_ignoring_conflicts
from digest.models import Paper, PopularitySignal
from digest.sources import PaperRecord

# Large enough to amortise round trips, small enough for SQLite's variable limit.
_CHUNK = 500
_PAPER_FIELDS = (
    "title",
    "abstract",
    "authors",
    "author_count",
    "categories",
    "links",
    "published_on",
)


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0


def _paper_values(record: PaperRecord) -> dict[str, Any]:
    return {
        "title": record.title,
        "abstract": record.abstract,
        "authors": list(record.authors),
        "author_count": record.author_count,
        "categories": list(record.categories),
        "links": dict(record.links),
        "published_on": record.published_on,
    }


def store_papers(
    session: Session, records: Iterable[PaperRecord], *, source: str, now: datetime
) -> StoreCounts:
    """Insert new papers, update changed ones, and record popularity that moved.

    Writes nothing for a record identical to what is stored, so re-ingesting an
    unchanged feed is cheap. A popularity observation is added when the source
    reports a value and it differs from the paper's latest one from that source.
    """
    counts = StoreCounts()
    batch: dict[str, PaperRecord] = {}
    for record in records:
        # A feed that lists a work twice: the later entry wins.
        batch[record.canonical_id] = record
        if len(batch) >= _CHUNK:
            _store_chunk(session, batch, source=source, now=now, counts=counts)
            batch = {}
    if batch:
        _store_chunk(session, batch, source=source, now=now, counts=counts)
    return counts


def _store_chunk(
    session: Session,
    batch: dict[str, PaperRecord],
    *,
    source: str,
    now: datetime,
    counts: StoreCounts,
) -> None:
    columns = [getattr(Paper, name) for name in _PAPER_FIELDS]
    existing: dict[str, Row[Any]] = {
        row.canonical_id: row
        for row in session.execute(
            select(Paper.id, Paper.canonical_id, *columns).where(Paper.canonical_id.in_(batch))
        )
    }
    new_rows = []
    for canonical_id, record in batch.items():
        values = _paper_values(record)
        row = existing.get(canonical_id)
        if row is None:
            new_rows.append(
                {
                    "canonical_id": canonical_id,
                    "source": source,
                    "first_seen_at": now,
                    "updated_at": now,
                    **values,
                }
            )
        elif any(getattr(row, name) != value for name, value in values.items()):
            session.execute(
                update(Paper).where(Paper.id == row.id).values(**values, updated_at=now)
            )
            counts.updated += 1
        else:
            counts.unchanged += 1
    if new_rows:
        # A concurrent ingest may insert the same work first; its row stands.
        session.execute(insert_ignoring_conflicts(session, Paper, ["canonical_id"]), new_rows)
        counts.new += len(new_rows)
    _record_signals(session, batch, source=source, now=now, counts=counts)


def _record_signals(
    session: Session,
    batch: dict[str, PaperRecord],
    *,
    source: str,
    now: datetime,
    counts: StoreCounts,
) -> None:
    reported = {
        cid: r
        for cid, r in batch.items()
        if r.upvotes is not None or r.comments is not None or r.github_stars is not None
    }
    if not reported:
        return
    ids = dict(
        session.execute(
            select(Paper.canonical_id, Paper.id).where(Paper.canonical_id.in_(reported))
        ).all()
    )
    latest = (
        select(
            PopularitySignal.paper_id,
            PopularitySignal.upvotes,
            PopularitySignal.comments,
            PopularitySignal.github_stars,
        )
        .where(PopularitySignal.paper_id.in_(ids.values()), PopularitySignal.source == source)
        .order_by(PopularitySignal.paper_id, PopularitySignal.observed_at)
    )
    last_seen: dict[int, tuple[int | None, int | None, int | None]] = {}
    for paper_id, upvotes, comments, stars in session.execute(latest):
        last_seen[paper_id] = (upvotes, comments, stars)
    rows = []
    for cid, record in reported.items():
        paper_id = ids[cid]
        observed = (record.upvotes, record.comments, record.github_stars)
        if last_seen.get(paper_id) != observed:
            rows.append(
                {
                    "paper_id": paper_id,
                    "source": source,
                    "observed_at": now,
                    "upvotes": record.upvotes,
                    "comments": record.comments,
                    "github_stars": record.github_stars,
                }
            )
    if rows:
        session.execute(insert(PopularitySignal), rows)
        counts.signals += len(rows)
