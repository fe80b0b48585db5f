"""Storing papers: one row per work, merged across sources, popularity appended over time.

Records arrive in chunks. For each chunk one query finds which works exist and
what this source said about them last time (a fingerprint of its record); an
entry whose fingerprint is unchanged costs nothing more. New works are inserted
in bulk (``INSERT … ON CONFLICT DO NOTHING``), changed ones merged and updated in
bulk, and display text (LaTeX to Unicode) is computed only for rows written.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, and_, insert, select, update
from sqlalchemy.orm import Session

from digest.db.dialects import copy_rows, insert_new_rows, one_of
from digest.papers.models import Paper, PaperSource, PopularitySignal
from digest.papers.sources import DeferredRecord, PaperRecord
from digest.papers.text import latex_to_unicode

# Large enough to amortise round trips (one lookup, one COPY per chunk), small enough
# for SQLite's bound-variable limit (32,766 since 3.32).
_CHUNK = 2000
# What a record says about the work itself (popularity is stored apart, over time).
_CONTENT_FIELDS = (
    "title",
    "abstract",
    "authors",
    "author_count",
    "categories",
    "links",
    "published_on",
    "version",
    "doi",
    "keywords",
    "ai_summary",
    "featured_at",
)
# Fields where a newer arXiv version wins and an older one must not overwrite.
_VERSIONED_FIELDS = frozenset({"title", "abstract", "authors", "author_count", "categories"})


Display = Callable[[str], str]


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0


def fingerprint(record: PaperRecord) -> str:
    """A stable digest of what ``record`` says about the work (not its popularity)."""
    r = record
    # Spelled out field by field: a generic getattr loop costs as much as the hash.
    said = "\x1e".join(
        (
            r.title,
            r.abstract or "",
            "\x1f".join(r.authors),
            str(r.author_count),
            "\x1f".join(r.categories),
            "\x1f".join(f"{k}={v}" for k, v in sorted(r.links.items())),
            str(r.published_on),
            str(r.version),
            r.doi or "",
            "\x1f".join(r.keywords),
            r.ai_summary or "",
            str(r.featured_at),
        )
    )
    return hashlib.blake2b(said.encode("utf-8"), digest_size=16).hexdigest()


def _stated(record: PaperRecord) -> dict[str, Any]:
    """The fields ``record`` has something to say about (None / empty = silent)."""
    values: dict[str, Any] = {}
    for name in _CONTENT_FIELDS:
        value = getattr(record, name)
        if value is None or (isinstance(value, tuple | dict) and not value):
            continue
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def _shown(text: str, display: Display) -> str:
    """The display form of ``text``; empty when it reads the same as stored (most
    abstracts have no LaTeX), which halves what is written per paper."""
    shown = display(text)
    return "" if shown == text else shown


# The columns of a new paper row, in the order _new_row gives them.
_NEW_COLUMNS = (
    *_CONTENT_FIELDS,
    "display_title",
    "display_abstract",
    "canonical_id",
    "source",
    "first_seen_at",
    "updated_at",
)


def _new_row(r: PaperRecord, *, source: str, now: datetime, display: Display) -> tuple[Any, ...]:
    abstract = r.abstract or ""
    return (
        r.title,
        abstract,
        list(r.authors),
        r.author_count,
        list(r.categories),
        dict(r.links),
        r.published_on,
        r.version,
        r.doi,
        list(r.keywords),
        r.ai_summary,
        r.featured_at,
        _shown(r.title, display),
        _shown(abstract, display),
        r.canonical_id,
        source,
        now,
        now,
    )


def _merge(stored: Row[Any], record: PaperRecord, display: Display) -> dict[str, Any]:
    """The values to change on ``stored`` so that it also says what ``record`` says."""
    stated = _stated(record)
    older = (
        record.version is not None
        and stored.version is not None
        and record.version < stored.version
    )
    changes: dict[str, Any] = {}
    for name, value in stated.items():
        current = getattr(stored, name)
        if name == "links":
            value = {**current, **value}
        elif name == "version":
            value = max(value, current or 0)
        elif older and name in _VERSIONED_FIELDS and current:
            continue
        if value != current:
            changes[name] = value
    if "title" in changes:
        changes["display_title"] = _shown(changes["title"], display)
    if "abstract" in changes:
        changes["display_abstract"] = _shown(changes["abstract"], display)
    return changes


def store_papers(
    session: Session,
    records: Iterable[PaperRecord | DeferredRecord],
    *,
    source: str,
    now: datetime,
    display: Display = latex_to_unicode,
) -> StoreCounts:
    """Insert new works, merge what changed into known ones, record popularity that moved.

    Writes nothing for a record identical to what this source said last time, so
    re-ingesting an unchanged feed is cheap. A popularity observation is added when
    the source reports a value that differs from its latest one for that paper.
    ``display`` makes a title or abstract readable (benchmarks time it apart).
    """
    counts = StoreCounts()
    batch: dict[str, PaperRecord | DeferredRecord] = {}
    with _collector_paused():
        for record in records:
            # A feed that lists a work twice: the later entry wins.
            batch[record.canonical_id] = record
            if len(batch) >= _CHUNK:
                _store_chunk(session, batch, source=source, now=now, counts=counts, display=display)
                batch = {}
        if batch:
            _store_chunk(session, batch, source=source, now=now, counts=counts, display=display)
    return counts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing and storing allocate millions of short-lived containers, each batch
    of which sets off a cyclic-garbage pass over the whole heap: a quarter of the
    time of a large ingest (measured: 7,800 → 10,300 entries/s on PostgreSQL).
    Nothing here makes reference cycles in bulk, so the collector waits until the
    store is done; reference counting still frees everything as it goes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _store_chunk(
    session: Session,
    pending: dict[str, PaperRecord | DeferredRecord],
    *,
    source: str,
    now: datetime,
    counts: StoreCounts,
    display: Display,
) -> None:
    fingerprints = {
        cid: r.fingerprint if isinstance(r, DeferredRecord) else fingerprint(r)
        for cid, r in pending.items()
    }
    known: dict[str, Row[Any]] = {
        row.canonical_id: cast(Row[Any], row)
        for row in session.execute(
            select(Paper.id, Paper.canonical_id, PaperSource.fingerprint)
            .outerjoin(
                PaperSource, and_(PaperSource.paper_id == Paper.id, PaperSource.source == source)
            )
            .where(one_of(session, Paper.canonical_id, pending))
        )
    }
    new_ids = [cid for cid in pending if cid not in known]
    changed = {
        known[cid].id: cid
        for cid in pending
        if cid in known and known[cid].fingerprint != fingerprints[cid]
    }
    counts.unchanged += len(pending) - len(new_ids) - len(changed)
    # Only what is written needs its record in full; unchanged deferred ones never do.
    to_write = {*new_ids, *changed.values()}
    batch: dict[str, PaperRecord] = {}
    for cid, r in pending.items():
        if isinstance(r, DeferredRecord):
            if cid not in to_write:
                continue
            r = r.complete()
        batch[cid] = r

    ids: dict[str, int] = {cid: row.id for cid, row in known.items()}
    if new_ids:
        inserted = insert_new_rows(
            session,
            Paper,
            _NEW_COLUMNS,
            [_new_row(batch[cid], source=source, now=now, display=display) for cid in new_ids],
            conflict_column="canonical_id",
        )
        ids.update({cid: paper_id for paper_id, cid in inserted})
        counts.new += len(inserted)
        # A concurrent ingest inserted the others first; its rows stand.
        counts.unchanged += len(new_ids) - len(inserted)
        copy_rows(
            session,
            PaperSource,
            ("paper_id", "source", "fingerprint", "first_seen_at"),
            [(paper_id, source, fingerprints[cid], now) for paper_id, cid in inserted],
        )
    if changed:
        _merge_changed(
            session,
            batch,
            changed,
            known,
            fingerprints,
            source=source,
            now=now,
            counts=counts,
            display=display,
        )
    _record_signals(
        session, batch, ids, new_ids=set(new_ids), source=source, now=now, counts=counts
    )


def _merge_changed(
    session: Session,
    batch: dict[str, PaperRecord],
    changed: dict[int, str],
    known: dict[str, Row[Any]],
    fingerprints: dict[str, str],
    *,
    source: str,
    now: datetime,
    counts: StoreCounts,
    display: Display,
) -> None:
    columns = [getattr(Paper, name) for name in _CONTENT_FIELDS]
    stored_rows = session.execute(
        select(Paper.id, *columns).where(one_of(session, Paper.id, changed))
    )
    updates = []
    for stored in stored_rows:
        changes = _merge(stored, batch[changed[stored.id]], display)
        if changes:
            updates.append({"id": stored.id, **changes, "updated_at": now})
            counts.updated += 1
        else:
            # Said differently (another source, reordered fields), same work.
            counts.unchanged += 1
    # Rows of one shape per statement: executemany needs identical keys.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in updates:
        by_shape.setdefault(tuple(sorted(values)), []).append(values)
    for rows in by_shape.values():
        session.execute(update(Paper), rows)

    first_time = [pid for pid, cid in changed.items() if known[cid].fingerprint is None]
    again = [pid for pid, cid in changed.items() if known[cid].fingerprint is not None]
    if first_time:
        session.execute(
            insert(PaperSource),
            [
                {
                    "paper_id": pid,
                    "source": source,
                    "fingerprint": fingerprints[changed[pid]],
                    "first_seen_at": now,
                }
                for pid in first_time
            ],
        )
    if again:
        session.execute(
            update(PaperSource),
            [
                {"paper_id": pid, "source": source, "fingerprint": fingerprints[changed[pid]]}
                for pid in again
            ],
        )


def _record_signals(
    session: Session,
    batch: dict[str, PaperRecord],
    ids: dict[str, int],
    *,
    new_ids: set[str],
    source: str,
    now: datetime,
    counts: StoreCounts,
) -> None:
    reported = {
        cid: r
        for cid, r in batch.items()
        if cid in ids
        and (r.upvotes is not None or r.comments is not None or r.github_stars is not None)
    }
    if not reported:
        return
    # A paper inserted just now has no earlier observation to compare with.
    known_ids = [ids[cid] for cid in reported if cid not in new_ids]
    last_seen: dict[int, tuple[int | None, int | None, int | None]] = {}
    if known_ids:
        latest = (
            select(
                PopularitySignal.paper_id,
                PopularitySignal.upvotes,
                PopularitySignal.comments,
                PopularitySignal.github_stars,
            )
            .where(
                one_of(session, PopularitySignal.paper_id, known_ids),
                PopularitySignal.source == source,
            )
            .order_by(PopularitySignal.paper_id, PopularitySignal.observed_at)
        )
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
