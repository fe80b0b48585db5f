"""Ingest throughput: parse + normalise + store, on PostgreSQL and SQLite.

    .venv/bin/python benchmarks/ingest.py [--synthetic 100000] [--postgres URL]

Feeds:
- the real 1,504-item combined arXiv RSS capture (tests/fixtures/arxiv_rss/);
- a synthetic feed of N items built from that capture: item i is real item
  i mod 1504 with a fresh arXiv id, so every item is a new paper while titles,
  abstracts, authors and LaTeX stay those of real listings.

For each feed and database: first ingest into an empty schema (entries/s, split
into parse and store), then a re-ingest of the same bytes with no change (the
time it takes and how many times faster than the first). Conditional GET is not
involved: the re-ingest parses everything again and must find nothing to write.
"""

from __future__ import annotations

import argparse
import gzip
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from digest.db import make_engine, make_session_factory, unit_of_work
from digest.migrate import upgrade
from digest.models import Paper
from digest.papers import store_papers
from digest.sources import PaperRecord
from digest.sources.arxiv_rss import parse_arxiv_rss
from digest.text import _convert_span

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


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, body: bytes, label: str, *, backend: str) -> None:
    """First ingest, then a no-change re-ingest, into a new schema at ``url``.

    Runs twice: once storing the text as it is (parse + store, the target), once
    with the LaTeX-to-Unicode display conversion that real ingest does, from a
    cold cache. The difference is what that conversion costs.
    """
    for display_label, display in (("parse+store", _as_is), ("with LaTeX display", None)):
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        timings = []
        for attempt in ("first", "re-ingest"):
            _convert_span.cache_clear()
            now = datetime.now(UTC)
            started = time.perf_counter()
            records = [r for r in parse_arxiv_rss(body, what=label) if isinstance(r, PaperRecord)]
            parsed = time.perf_counter()
            with unit_of_work(factory) as session:
                if display is None:
                    counts = store_papers(session, records, source="arxiv-rss", now=now)
                else:
                    counts = store_papers(
                        session, records, source="arxiv-rss", now=now, display=display
                    )
            done = time.perf_counter()
            total = done - started
            timings.append(total)
            print(
                f"{backend:10} {label:18} {display_label:18} {attempt:9} {len(records):>7} "
                f"{len(records) / total:>8,.0f} entries/s  (parse {parsed - started:5.2f}s, "
                f"store {done - parsed:5.2f}s, total {total:5.2f}s)  "
                f"new {counts.new} updated {counts.updated} unchanged {counts.unchanged}"
            )
        with factory() as session:
            stored = session.scalar(select(func.count()).select_from(Paper))
        print(
            f"{backend:10} {label:18} {display_label:18} re-ingest "
            f"{timings[0] / timings[1]:.1f}x faster than first; {stored} papers stored"
        )
        with engine.begin() as connection:
            # Empty again for the next variant: the schema stays, the rows go.
            for table in ("popularity_signals", "paper_sources", "papers"):
                connection.execute(text(f"DELETE FROM {table}"))
        engine.dispose()


def _as_is(text_: str) -> str:
    return text_


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
        with postgres_database(args.postgres) as url:
            run(url, body, label, backend="postgresql")
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/bench.db", body, label, backend="sqlite")


if __name__ == "__main__":
    main()
