from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.papers.ingest import ingest
from digest.papers.models import FeedState, IngestRun, Paper, PopularitySignal
from digest.papers.sources import Item, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.arxiv_api import ArxivApiSource
from digest.papers.sources.arxiv_rss import ArxivRssSource
from digest.papers.sources.feed import FeedSource
from digest.papers.sources.http import Fetcher
from digest.papers.sources.huggingface import HuggingFaceSource
from digest.papers.sources.registry import source_for
from digest.papers.sources.sample import SampleSource
from tests.factories import NOW, make_paper
from tests.papers.sources.recorded import FakeClock, fixture_bytes


class BrokenSource:
    name = "broken"

    def fetch(self) -> Iterator[PaperRecord]:
        yield PaperRecord(canonical_id="arxiv:1", title="half a feed")
        raise SourceError("feed ended in the middle of an entry")


def test_the_shipped_sample_is_real_daily_papers_with_stable_ids() -> None:
    records = list(SampleSource().fetch())
    assert len(records) == 188
    assert len({r.canonical_id for r in records}) == len(records)
    assert all(r.canonical_id.startswith("seed:") and r.title and r.abstract for r in records)
    assert any(r.upvotes for r in records)
    # Stable: the same listing always yields the same ids.
    assert [r.canonical_id for r in records] == [r.canonical_id for r in SampleSource().fetch()]


def test_ingest_stores_the_sample_and_is_idempotent(session: Session) -> None:
    [first] = ingest(session, [SampleSource()], now=NOW)
    [second] = ingest(session, [SampleSource()], now=NOW)

    assert (first.new, first.error) == (188, None)
    assert first.signals == 55
    assert (second.new, second.updated, second.unchanged, second.signals) == (0, 0, 188, 0)
    assert session.scalar(select(func.count()).select_from(Paper)) == 188


def test_a_failing_source_loses_only_its_own_papers(session: Session, tmp_path: Path) -> None:
    sample = tmp_path / "two.json"
    papers = json.loads(Path("digest/papers/data/sample_papers.json").read_text())["papers"][:2]
    sample.write_text(json.dumps({"papers": papers}))

    broken, good = ingest(session, [BrokenSource(), SampleSource(sample)], now=NOW)

    assert broken.error == "feed ended in the middle of an entry"
    assert good.new == 2
    canonical_ids = set(session.scalars(select(Paper.canonical_id)))
    assert canonical_ids == {p["canonical_id"] for p in papers}
    assert session.scalar(select(func.count()).select_from(PopularitySignal)) == sum(
        1 for p in papers if p.get("upvotes") is not None
    )


def test_an_unreadable_sample_is_a_source_error(session: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    [summary] = ingest(session, [SampleSource(bad)], now=NOW)
    assert summary.error is not None and "cannot read the sample papers" in summary.error


# --- real sources through the whole ingest ------------------------------------------------

CATEGORY_QUERY = "arxiv_api/arxiv_api_query_cat-cs.AI-OR-cs.LG-OR-cs.CL_25entries_2026-08-02.xml"
HF_DAY = "hf/hf_daily_papers_2026-07-31_30items_no-ai-summary.json"
COMBINED = "arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"


def recorded_fetcher(routes: dict[str, bytes], requests: list[httpx.Request]) -> Fetcher:
    """A fetcher answering each host with a recorded real payload and an ETag for it."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = routes[request.url.host]
        etag = f'"{hash(body)}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304)
        if request.url.host == "huggingface.co" and request.url.params.get("p") != "0":
            return httpx.Response(200, content=b"[]")
        return httpx.Response(200, content=body, headers={"ETag": etag})

    clock = FakeClock()
    return Fetcher(
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=clock.sleep,
        clock=clock.monotonic,
    )


def test_arxiv_and_hugging_face_listings_of_the_same_papers_merge(session: Session) -> None:
    requests: list[httpx.Request] = []
    fetcher = recorded_fetcher(
        {
            "export.arxiv.org": fixture_bytes(CATEGORY_QUERY),
            "huggingface.co": fixture_bytes(HF_DAY),
        },
        requests,
    )
    arxiv = ArxivApiSource(fetcher=fetcher, query="cat:cs.AI", max_results=25)
    hf = HuggingFaceSource(fetcher=fetcher, days=1, today=lambda: date(2026, 7, 31))

    first_arxiv, first_hf = ingest(session, [arxiv, hf], now=NOW, fetcher=fetcher)

    assert (first_arxiv.new, first_arxiv.error) == (25, None)
    # Three papers of that day were in the arXiv listing already: merged, not duplicated.
    assert (first_hf.new, first_hf.updated, first_hf.error) == (27, 3, None)
    assert session.scalar(select(func.count()).select_from(Paper)) == 52
    merged = session.scalars(select(Paper).where(Paper.canonical_id == "arxiv:2607.28618")).one()
    assert merged.categories  # from arXiv
    assert "hf" in merged.links and "abs" in merged.links
    assert merged.signals and merged.signals[0].upvotes is not None  # from Hugging Face


def test_every_run_is_recorded_and_an_unchanged_listing_writes_nothing(session: Session) -> None:
    requests: list[httpx.Request] = []
    fetcher = recorded_fetcher({"rss.arxiv.org": fixture_bytes(COMBINED)}, requests)
    source = ArxivRssSource(fetcher=fetcher, categories=["cs", "math"])

    [first] = ingest(session, [source], now=NOW, fetcher=fetcher)
    # A second installation-wide run: validators come back from the database.
    [second] = ingest(session, [source], now=NOW + timedelta(hours=1), fetcher=fetcher)
    fetcher.validators.clear()
    session.execute(delete(FeedState))
    [third] = ingest(session, [source], now=NOW + timedelta(hours=2), fetcher=fetcher)

    assert (first.new, first.updated, first.skipped) == (1504, 0, 0)
    assert second.notes == ["not modified since the last fetch"]
    assert requests[1].headers["if-none-match"]
    # Without validators the listing is parsed again and nothing is rewritten.
    assert (third.new, third.updated, third.unchanged) == (0, 0, 1504)
    assert session.scalar(select(func.max(Paper.updated_at))) == NOW
    runs = session.scalars(select(IngestRun).order_by(IngestRun.id)).all()
    assert [(r.source, r.new, r.unchanged, r.error) for r in runs] == [
        ("arxiv-rss", 1504, 0, None),
        ("arxiv-rss", 0, 0, None),
        ("arxiv-rss", 0, 1504, None),
    ]
    assert runs[1].details["notes"] == ["not modified since the last fetch"]


class HalfBrokenSource:
    """Real records with two bad entries between them, as a source yields them."""

    name = "half-broken"

    def fetch(self) -> Iterator[Item]:
        yield PaperRecord(canonical_id="arxiv:2611.00001", title="kept")
        yield SkippedEntry("no arXiv id in guid or link", "guid-1")
        yield SkippedEntry("no arXiv id in guid or link", "guid-2")
        yield PaperRecord(canonical_id="arxiv:2611.00002", title="also kept")


def test_bad_entries_are_skipped_counted_and_explained(session: Session) -> None:
    [summary] = ingest(session, [HalfBrokenSource()], now=NOW)
    assert (summary.new, summary.skipped) == (2, 2)
    assert summary.skip_reasons == {"no arXiv id in guid or link": 2}
    assert "skipped 2: no arXiv id in guid or link" in summary.line()
    run = session.scalars(select(IngestRun)).one()
    assert run.skipped == 2 and run.details["skip_reasons"] == {"no arXiv id in guid or link": 2}


class FetchThenFail:
    """Fetches (so the fetcher learns an ETag), then fails before storing."""

    name = "fetch-then-fail"

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    def fetch(self) -> Iterator[Item]:
        self.fetcher.get("https://rss.arxiv.org/rss/cs")
        raise SourceError("the listing ended in the middle")
        yield  # a generator, like every source


def test_a_failed_run_is_fetched_in_full_next_time(session: Session) -> None:
    requests: list[httpx.Request] = []
    fetcher = recorded_fetcher({"rss.arxiv.org": fixture_bytes(COMBINED)}, requests)
    [failed] = ingest(session, [FetchThenFail(fetcher)], now=NOW, fetcher=fetcher)

    assert failed.error == "the listing ended in the middle"
    assert session.scalar(select(func.count()).select_from(FeedState)) == 0
    run = session.scalars(select(IngestRun)).one()
    assert run.error == "the listing ended in the middle"
    [retry] = ingest(
        session, [ArxivRssSource(fetcher=fetcher, categories=["cs"])], now=NOW, fetcher=fetcher
    )
    assert "if-none-match" not in requests[-1].headers
    assert retry.new == 1504


def test_an_arxiv_listing_dropped_on_disk_updates_the_papers_it_replaces(
    session: Session, tmp_path: Path
) -> None:
    listing = tmp_path / "listing.xml"
    listing.write_bytes(fixture_bytes(COMBINED))
    # Stored from an earlier version; the listing announces its v4 as a replacement.
    make_paper(
        session,
        canonical_id="arxiv:1401.3665",
        title="The existence of designs",
        abstract="We prove the existence conjecture for combinatorial designs.",
        version=3,
        published_on=date(2014, 1, 15),
        source="arxiv-api",
    )
    fetcher = Fetcher()
    try:
        # What `digest ingest --source PATH` runs.
        source = source_for([], fetcher, str(listing))
        [summary] = ingest(session, [source], now=NOW, fetcher=fetcher)
    finally:
        fetcher.close()

    assert (summary.new, summary.updated, summary.error) == (1503, 1, None)
    assert summary.notes[0] == f"{listing.as_uri()} is an arXiv RSS listing; read as one"
    paper = session.scalars(select(Paper).where(Paper.canonical_id == "arxiv:1401.3665")).one()
    assert paper.version == 4
    assert paper.abstract.startswith("We prove the existence conjecture for combinatorial designs")
    assert "More generally" in paper.abstract
    # Still the paper of 2014, not one of the listing's day.
    assert paper.published_on == date(2014, 1, 15)
    assert (
        session.scalar(
            select(func.count()).select_from(Paper).where(Paper.abstract.contains("Announce Type"))
        )
        == 0
    )


def test_a_feed_that_is_an_entity_bomb_is_refused_with_its_reason_in_the_log(
    session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = tmp_path / "bomb.xml"
    laughs = "".join(f'<!ENTITY lol{n + 1} "{f"&lol{n};" * 10}">' for n in range(9))
    bomb.write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">{laughs}]>'
        '<rss version="2.0"><channel><title>bomb</title><item><title>&lol9;</title>'
        "<link>https://arxiv.org/abs/2401.00001</link></item></channel></rss>"
    )
    fetcher = Fetcher()
    try:
        with caplog.at_level(logging.ERROR, logger="digest.papers.ingest"):
            (summary,) = ingest(
                session, [FeedSource(name="hostile", url=bomb.as_uri(), fetcher=fetcher)], now=NOW
            )
    finally:
        fetcher.close()

    assert summary.error is not None and "entity expansion bomb" in summary.error
    assert any(
        "hostile" in r.getMessage() and "entity expansion bomb" in r.getMessage()
        for r in caplog.records
    )
    assert session.scalar(select(func.count()).select_from(Paper)) == 0
