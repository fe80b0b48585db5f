"""Run sources and store what they yield, one source's failure never stopping another."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from config.settings import Settings
from digest.papers import store_papers
from digest.sources import Source, SourceError
from digest.sources.sample import SampleSource

log = logging.getLogger(__name__)


@dataclass
class SourceSummary:
    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0
    error: str | None = None
    elapsed_seconds: float = 0.0

    def line(self) -> str:
        if self.error:
            return f"{self.source}: error: {self.error} ({self.elapsed_seconds:.2f}s)"
        return (
            f"{self.source}: {self.new} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.signals} popularity observations "
            f"({self.elapsed_seconds:.2f}s)"
        )


def configured_sources(settings: Settings) -> list[Source]:
    """The sources this installation ingests (remote sources arrive with ingestion)."""
    return [SampleSource()]


def source_named(settings: Settings, name: str) -> Source:
    for source in configured_sources(settings):
        if source.name == name:
            return source
    known = ", ".join(s.name for s in configured_sources(settings))
    raise LookupError(f"unknown source {name!r} (known: {known})")


def ingest(session: Session, sources: Sequence[Source], *, now: datetime) -> list[SourceSummary]:
    summaries = []
    for source in sources:
        summary = SourceSummary(source=source.name)
        started = time.perf_counter()
        try:
            # A savepoint per source: a failure rolls back that source alone.
            with session.begin_nested():
                counts = store_papers(session, source.fetch(), source=source.name, now=now)
        except SourceError as exc:
            summary.error = str(exc)
            log.error("ingest %s failed: %s", source.name, exc)
        else:
            summary.new, summary.updated = counts.new, counts.updated
            summary.unchanged, summary.signals = counts.unchanged, counts.signals
        summary.elapsed_seconds = time.perf_counter() - started
        log.info("ingest %s", summary.line())
        summaries.append(summary)
    return summaries
