"""Ingest throughput: parse + normalise + store, on PostgreSQL and SQLite.

    .venv/bin/python benchmarks/ingest.py [--synthetic 100000] [--postgres URL]

Feeds:
- the real 1,504-item combined arXiv RSS capture (tests/fixtures/arxiv_rss/);
- a synthetic feed of N items built from that capture: item i is real item
  i mod 1504 with a fresh arXiv id, so every item is a new paper while titles,
  abstracts, authors and LaTeX stay those of real listings.

For each feed and database, two measurements into an empty schema:

- parse + store (the issue's target): entries read from the XML, identified and
  fingerprinted, normalised and stored with the text as written; then the same
  entries again, which are read and found unchanged by their fingerprints;
- the real ``ingest()`` path, as ``digest ingest`` runs it: through the fetcher
  (from a file), LaTeX converted for display from a cold cache, the run
  recorded; re-ingested with the same bytes (the fetcher knows the body and
  parses nothing) and with only the channel's build date changed (every entry
  read again, none written).

Before them, reading and normalising are timed alone, without a database.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from digest.db.engine import make_engine, make_session_factory, scratch_postgres_database
from digest.db.migrate import upgrade
from digest.db.unit_of_work import unit_of_work
from digest.papers.ingest import ingest
from digest.papers.sources import DeferredRecord, PaperRecord
from digest.papers.sources.arxiv_rss import ArxivRssSource, arxiv_rss_entries
from digest.papers.sources.http import Fetcher
from digest.papers.storage import store_papers
from digest.papers.text import _convert_span

CAPTURE = (
    Path(__file__).resolve().parent.parent
    / "tests/fixtures/arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"
)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def synthetic_feed(real: bytes, count: int) -> bytes:
    """``count`` items cycling through the real ones, each under a new arXiv id."""
    text_ = real.decode("utf-8")
    start = text_.index("<item>")
    end = text_.rindex("</item>") + len("</item>")
    items = re.findall(r"<item>.*?</item>", text_[start:end], flags=re.DOTALL)
    id_pattern = re.compile(r"\d{4}\.\d{4,5}")
    out = []
    for i in range(count):
        # 99 fictitious months of 99,999 ids: unique, and shaped like real ids.
        new_id = f"{9001 + i // 99_999}.{i % 99_999 + 1:05d}"
        out.append(id_pattern.sub(new_id, items[i % len(items)]))
    return (text_[:start] + "\n".join(out) + text_[end:]).encode("utf-8")


def run(url: str, body: bytes, label: str, *, backend: str, folder: Path) -> None:
    """Both measurements, each into a fresh schema at ``url``."""
    store_level(url, body, label, backend=backend)
    real_ingest(url, body, label, backend=backend, folder=folder)


def store_level(url: str, body: bytes, label: str, *, backend: str) -> None:
    """The target: parse + normalise + store, text stored as written (no LaTeX
    display conversion), first into an empty schema, then the same entries again."""
    engine, factory = _fresh_schema(url)
    timings = []
    for attempt in ("first", "re-read"):
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            # Streamed as ArxivRssSource.fetch yields them: identified and
            # fingerprinted, normalised by the store only when new or changed.
            records = (
                r
                for r in arxiv_rss_entries(body, what=label)
                if isinstance(r, PaperRecord | DeferredRecord)
            )
            counts = store_papers(
                session, records, source="arxiv-rss", now=datetime.now(UTC), display=_as_is
            )
        timings.append(time.perf_counter() - started)
        _report(backend, label, "parse+store", attempt, counts.new + counts.unchanged, timings)
    engine.dispose()


def real_ingest(url: str, body: bytes, label: str, *, backend: str, folder: Path) -> None:
    """What ``digest ingest`` does: the listing read through the fetcher from a
    file, LaTeX converted for display from a cold cache, the run recorded.

    Re-ingested twice: the same bytes (the file touched, so its modification
    time says nothing), then with only the channel's build date changed, so
    every entry is read again and found unchanged by its fingerprint.
    """
    engine, factory = _fresh_schema(url)
    listing = folder / "listing.xml"
    listing.write_bytes(body)
    rebuilt = re.sub(
        rb"<lastBuildDate>[^<]*</lastBuildDate>",
        b"<lastBuildDate>Fri, 29 Nov 2024 00:30:00 -0500</lastBuildDate>",
        body,
        count=1,
    )
    assert rebuilt != body
    timings = []
    for attempt, content in (("first", body), ("same bytes", body), ("re-read", rebuilt)):
        listing.write_bytes(content)
        os.utime(listing, ns=(time.time_ns(), time.time_ns()))
        _convert_span.cache_clear()
        fetcher = Fetcher(max_bytes=1 << 30)
        # A category naming the file: the source's URL is base_url + categories.
        source = ArxivRssSource(
            fetcher=fetcher, categories=[listing.name], base_url=f"{folder.as_uri()}/"
        )
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            (summary,) = ingest(session, [source], now=datetime.now(UTC), fetcher=fetcher)
        timings.append(time.perf_counter() - started)
        assert summary.error is None, summary.error
        entries = summary.new + summary.updated + summary.unchanged
        if not entries:
            entries = len(re.findall(rb"<item>", content))
        _report(backend, label, "ingest with LaTeX", attempt, entries, timings)
    engine.dispose()


def _fresh_schema(url: str) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(url)
    with engine.begin() as connection:
        # The schema stays from an earlier measurement; the rows go.
        for table in ("popularity_signals", "paper_sources", "papers", "feed_states"):
            if engine.dialect.has_table(connection, table):
                connection.execute(text(f"DELETE FROM {table}"))
    upgrade(engine)
    return engine, make_session_factory(engine)


def _report(
    backend: str, label: str, variant: str, attempt: str, entries: int, timings: list[float]
) -> None:
    seconds = timings[-1]
    faster = f"  {timings[0] / seconds:5.1f}x faster than first" if len(timings) > 1 else ""
    print(
        f"{backend:10} {label:18} {variant:18} {attempt:10} {entries:>7} entries "
        f"{seconds:6.2f}s {entries / seconds:>8,.0f} entries/s{faster}",
        flush=True,
    )


def _as_is(text_: str) -> str:
    return text_


def where_time_goes(label: str, body: bytes) -> None:
    """Reading (XML, ids, fingerprints) and normalising, timed apart from storage."""
    started = time.perf_counter()
    entries = [e for e in arxiv_rss_entries(body, what=label) if isinstance(e, DeferredRecord)]
    read = time.perf_counter() - started
    started = time.perf_counter()
    for entry in entries:
        entry.complete()
    normalised = time.perf_counter() - started
    per_entry = 1e6 / len(entries)
    print(
        f"{'(no db)':10} {label:18} read {read * per_entry:5.1f} µs/entry, "
        f"normalise {normalised * per_entry:5.1f} µs/entry"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    real = gzip.decompress(CAPTURE.read_bytes())
    feeds = [
        ("arXiv RSS capture", real),
        (f"synthetic {args.synthetic:,}", synthetic_feed(real, args.synthetic)),
    ]
    for label, body in feeds:
        where_time_goes(label, body)
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            with scratch_postgres_database(args.postgres, "digest_bench") as url:
                run(url, body, label, backend="postgresql", folder=folder)
            run(f"sqlite:///{folder}/bench.db", body, label, backend="sqlite", folder=folder)


if __name__ == "__main__":
    main()
