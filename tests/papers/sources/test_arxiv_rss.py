"""arXiv RSS listings, from real captures served through httpx's transport."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from digest.papers.sources import DeferredRecord, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.arxiv_rss import (
    ArxivRssSource,
    arxiv_rss_entries,
    parse_arxiv_rss,
    split_authors,
)
from tests.papers.sources.recorded import Recorded, fixture_bytes

COMBINED = "arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"
CS_AI = "arxiv_rss/arxiv_rss_cs.AI_TRIMMED-3items-reserialized_2026-04-27.xml"
SATURDAY = "arxiv_rss/arxiv_rss_cs.CL_saturday-empty_2026-08-01.xml"
NO_ITEMS = "arxiv_rss/arxiv_rss_test-archive_no-items_2024-11-28.xml"
BAD_ARCHIVE = "arxiv_rss/arxiv_rss_error_bad-archive-astroph_2024-11-28.xml"


def records(body: bytes) -> list[PaperRecord]:
    return [i for i in parse_arxiv_rss(body, what="test") if isinstance(i, PaperRecord)]


def test_the_combined_capture_gives_every_announcement_as_a_paper() -> None:
    papers = records(fixture_bytes(COMBINED))

    assert len(papers) == 1504
    assert len({p.canonical_id for p in papers}) == 1504
    # New and cross-listed papers carry the announcement date; the 569 replacements
    # (new versions of older papers) do not claim to be published that day.
    dated = Counter(p.published_on for p in papers)
    assert dated == {date(2024, 11, 28): 935, None: 569}
    assert sum(1 for p in papers if p.doi) == 111


def test_an_entry_is_normalised_for_storage() -> None:
    by_id = {p.canonical_id: p for p in records(fixture_bytes(COMBINED))}
    paper = by_id["arxiv:2411.17747"]
    assert paper.title == (
        "Deep Unfolding-Empowered MmWave Massive MIMO Joint Communications and Sensing"
    )
    assert paper.version == 1
    assert paper.categories == ("eess.SP",)
    assert paper.authors[0] == "Nhan Thanh Nguyen" and paper.author_count == 6
    assert paper.links["abs"] == "https://arxiv.org/abs/2411.17747"
    # The "arXiv:… Announce Type: new Abstract:" header is not part of the abstract.
    assert paper.abstract is not None
    assert paper.abstract.startswith("In this paper, we propose a low-complexity")


def test_authors_lose_affiliations_and_tex_escapes() -> None:
    paper = {p.canonical_id: p for p in records(fixture_bytes(COMBINED))}["arxiv:2411.17748"]
    assert paper.authors == (
        "Mohammed Riadh Berramdane",
        "Alexandre Battiston",
        "Michele Bardi",
        "Nicolas Blet",
        "Benjamin Rémy",
        "Matthieu Urbain",
    )
    assert split_authors(
        r"Przemys{\l}aw Ko, A. Lundstr\"om (KTH, Sweden) and B. \.Zygierewicz"
    ) == (
        "Przemysław Ko",
        "A. Lundström",
        "B. Żygierewicz",
    )


def test_a_replacement_updates_a_version() -> None:
    paper = {p.canonical_id: p for p in records(fixture_bytes(COMBINED))}["arxiv:1401.3665"]
    assert paper.version == 4
    assert paper.published_on is None


@pytest.mark.parametrize("fixture", [SATURDAY, NO_ITEMS])
def test_an_empty_listing_is_normal(fixture: str) -> None:
    items = list(parse_arxiv_rss(fixture_bytes(fixture), what="test"))
    assert items == [Note("no announcements in this listing (weekend or holiday)")]


def test_a_bad_archive_name_is_an_error_not_an_empty_day() -> None:
    with pytest.raises(SourceError, match="Bad archive 'astroph'"):
        list(parse_arxiv_rss(fixture_bytes(BAD_ARCHIVE), what="test"))


def test_a_truncated_listing_keeps_the_complete_entries() -> None:
    body = fixture_bytes(COMBINED)
    # Cut in the middle of the eleventh item's abstract.
    cut = body.index(b"Abstract:", body.index(b"<item>", 0) + 1)
    for _ in range(10):
        cut = body.index(b"Abstract:", cut + 1)
    items = list(parse_arxiv_rss(body[: cut + 40], what="test"))

    papers = [i for i in items if isinstance(i, PaperRecord)]
    assert len(papers) == 10
    assert [type(i) for i in items].count(SkippedEntry) == 1
    assert isinstance(items[0], Note) and "not well-formed" in items[0].text


def test_the_source_fetches_its_categories_and_honours_not_modified(
    serve: Callable[..., Recorded],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"cs-ai-1"':
            return httpx.Response(304)
        return httpx.Response(200, content=fixture_bytes(CS_AI), headers={"ETag": '"cs-ai-1"'})

    recorded = serve(handler)
    source = ArxivRssSource(fetcher=recorded.fetcher, categories=["cs.AI", "cs.LG"])
    first = list(source.fetch())
    second = list(source.fetch())

    assert str(recorded.requests[0].url) == "https://rss.arxiv.org/rss/cs.AI+cs.LG"
    assert [p.canonical_id for p in first if isinstance(p, DeferredRecord)] == [
        "arxiv:2604.21935",
        "arxiv:2604.21936",
        "arxiv:2604.21937",
    ]
    assert second == [Note("not modified since the last fetch")]


def test_an_http_error_is_a_source_error(serve: Callable[..., Recorded]) -> None:
    recorded = serve(lambda request: httpx.Response(404, text="not found"))
    source = ArxivRssSource(fetcher=recorded.fetcher, categories=["cs.AI"])
    with pytest.raises(SourceError, match="HTTP 404"):
        list(source.fetch())


def test_entries_are_fingerprinted_as_written_and_completed_only_on_demand() -> None:
    body = fixture_bytes(CS_AI)
    first = [e for e in arxiv_rss_entries(body, what="test") if isinstance(e, DeferredRecord)]
    again = [e for e in arxiv_rss_entries(body, what="test") if isinstance(e, DeferredRecord)]
    edited = body.replace(b"Announce Type: new", b"Announce Type: new ", 1)
    changed = [e for e in arxiv_rss_entries(edited, what="test") if isinstance(e, DeferredRecord)]

    assert [e.fingerprint for e in first] == [e.fingerprint for e in again]
    assert changed[0].fingerprint != first[0].fingerprint
    assert [e.fingerprint for e in changed[1:]] == [e.fingerprint for e in first[1:]]
    assert [e.complete() for e in first] == records(body)
