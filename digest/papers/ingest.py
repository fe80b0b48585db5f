"""Run sources and store what they yield.

One failing source never stops another (each runs in its own savepoint), one bad
entry never stops its feed (the source yields it as skipped, with a reason), and
every run is recorded in ``ingest_runs``. Conditional-GET validators are saved
only when the source's papers were stored, so a failed run is fetched in full
next time rather than answered with a 304.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from digest.clock import utcnow
from digest.papers.models import FeedState, IngestRun
from digest.papers.sources import (
    DeferredRecord,
    Item,
    Note,
    PaperRecord,
    SkippedEntry,
    Source,
    SourceError,
)
from digest.papers.sources.http import Fetcher, Validators
from digest.papers.storage import store_papers

log = logging.getLogger(__name__)

# Called with the source's name and the number of entries read so far.
Progress = Callable[[str, int], None]


@dataclass
class SourceSummary:
    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    signals: int = 0
    error: str | None = None
    elapsed_seconds: float = 0.0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.error:
            return f"{self.source}: error: {self.error} ({self.elapsed_seconds:.2f}s)"
        text = (
            f"{self.source}: {self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.skipped} skipped, "
            f"{self.signals} popularity observations ({self.elapsed_seconds:.2f}s)"
        )
        details = [f"skipped {n}: {reason}" for reason, n in self.skip_reasons.items()]
        return "\n    ".join([text, *details, *self.notes])


class _Tally:
    """Passes a source's records on to storage, counting what it skipped and noted."""

    def __init__(self, source: str, progress: Progress | None) -> None:
        self.source = source
        self.progress = progress
        self.read = 0
        self.skips: Counter[str] = Counter()
        self.notes: list[str] = []

    def records(self, items: Iterable[Item]) -> Iterator[PaperRecord | DeferredRecord]:
        for item in items:
            self.read += 1
            if self.progress is not None and self.read % 100 == 0:
                self.progress(self.source, self.read)
            if isinstance(item, PaperRecord | DeferredRecord):
                yield item
            elif isinstance(item, SkippedEntry):
                log.warning("ingest %s: skipped %s: %s", self.source, item.entry, item.reason)
                self.skips[item.reason] += 1
            elif isinstance(item, Note):
                log.info("ingest %s: %s", self.source, item.text)
                self.notes.append(item.text)
        if self.progress is not None:
            self.progress(self.source, self.read)


def load_validators(session: Session) -> dict[str, Validators]:
    return {
        url: Validators(etag, last_modified, digest)
        for url, etag, last_modified, digest in session.execute(
            select(FeedState.url, FeedState.etag, FeedState.last_modified, FeedState.body_digest)
        )
    }


def save_validators(session: Session, changed: dict[str, Validators], *, now: datetime) -> None:
    if not changed:
        return
    existing = {
        state.url: state
        for state in session.scalars(select(FeedState).where(FeedState.url.in_(changed)))
    }
    for url, validators in changed.items():
        state = existing.get(url) or FeedState(url=url)
        state.etag, state.last_modified = validators.etag, validators.last_modified
        state.body_digest = validators.digest
        state.updated_at = now
        session.add(state)


def ingest(
    session: Session,
    sources: Sequence[Source],
    *,
    now: datetime,
    fetcher: Fetcher | None = None,
    progress: Progress | None = None,
) -> list[SourceSummary]:
    """Run each source and store its papers; a summary per source, also kept as a run."""
    if fetcher is not None:
        fetcher.validators.clear()
        fetcher.validators.update(load_validators(session))
    summaries = []
    for source in sources:
        summaries.append(_ingest_one(session, source, now=now, fetcher=fetcher, progress=progress))
    return summaries


def _ingest_one(
    session: Session,
    source: Source,
    *,
    now: datetime,
    fetcher: Fetcher | None,
    progress: Progress | None,
) -> SourceSummary:
    summary = SourceSummary(source=source.name)
    tally = _Tally(source.name, progress)
    before = dict(fetcher.validators) if fetcher is not None else {}
    started_at = utcnow()
    started = time.perf_counter()
    try:
        # A savepoint per source: a failure rolls back that source alone.
        with session.begin_nested():
            counts = store_papers(
                session, tally.records(source.fetch()), source=source.name, now=now
            )
            if fetcher is not None:
                changed = {url: v for url, v in fetcher.validators.items() if before.get(url) != v}
                save_validators(session, changed, now=now)
    except SourceError as exc:
        summary.error = str(exc)
        log.error("ingest %s failed: %s", source.name, exc)
        if fetcher is not None:
            # What this run fetched was not stored: the next run must fetch it in full.
            fetcher.validators.clear()
            fetcher.validators.update(before)
    else:
        summary.new, summary.updated = counts.new, counts.updated
        summary.unchanged, summary.signals = counts.unchanged, counts.signals
    summary.skipped = sum(tally.skips.values())
    summary.skip_reasons = dict(tally.skips.most_common())
    summary.notes = tally.notes
    summary.elapsed_seconds = time.perf_counter() - started
    session.add(
        IngestRun(
            source=source.name,
            started_at=started_at,
            finished_at=utcnow(),
            new=summary.new,
            updated=summary.updated,
            unchanged=summary.unchanged,
            skipped=summary.skipped,
            signals=summary.signals,
            details={"skip_reasons": summary.skip_reasons, "notes": summary.notes},
            error=summary.error,
        )
    )
    log.info("ingest %s", summary.line())
    return summary


@dataclass(frozen=True)
class SourceActivity:
    """Every recorded run of one source, summed, and when it last ran and last succeeded."""

    source: str
    runs: int
    failed_runs: int
    new: int
    updated: int
    unchanged: int
    skipped: int
    last_run_at: datetime
    # None until a run succeeds.
    last_success_at: datetime | None


def source_activity(session: Session) -> list[SourceActivity]:
    """One grouped statement over ``ingest_runs`` (a row per source per run: small)."""
    failed = IngestRun.error.is_not(None)
    rows = session.execute(
        select(
            IngestRun.source,
            func.count(),
            func.count(IngestRun.error),
            func.coalesce(func.sum(IngestRun.new), 0),
            func.coalesce(func.sum(IngestRun.updated), 0),
            func.coalesce(func.sum(IngestRun.unchanged), 0),
            func.coalesce(func.sum(IngestRun.skipped), 0),
            func.max(IngestRun.finished_at),
            func.max(case((failed, None), else_=IngestRun.finished_at)),
        )
        .group_by(IngestRun.source)
        .order_by(IngestRun.source)
    ).all()
    return [SourceActivity(*row) for row in rows]
