"""The Hugging Face Daily Papers source against recorded real listings (tests/fixtures/hf/)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from digest.papers.sources import Item, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.huggingface import HuggingFaceSource
from tests.papers.sources.recorded import Recorded, fixture_bytes

Serve = Callable[..., Recorded]

WITH_AI = "hf/hf_daily_papers_2026-06-12_30items_with-ai-summary.json"
NO_AI = "hf/hf_daily_papers_2026-07-31_30items_no-ai-summary.json"


def real_items(fixture: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(fixture_bytes(fixture))
    return items


def real_item(fixture: str, arxiv_id: str) -> dict[str, Any]:
    """A deep copy of one real listing item, safe to alter in a test."""
    found = next(item for item in real_items(fixture) if item["paper"]["id"] == arxiv_id)
    return copy.deepcopy(found)


def by_day(listings: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """Answer page 0 of each date in ``listings`` (raw bytes or JSON-able); 404 otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        listing = listings.get(params["date"])
        if listing is None or params["p"] != "0":
            return httpx.Response(404, json={"error": "not served by this test"})
        body = listing if isinstance(listing, bytes) else json.dumps(listing).encode()
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return handler


def source_for(recorded: Recorded, today: date, **options: Any) -> HuggingFaceSource:
    return HuggingFaceSource(fetcher=recorded.fetcher, today=lambda: today, **options)


def records(items: list[Item]) -> dict[str, PaperRecord]:
    return {item.canonical_id: item for item in items if isinstance(item, PaperRecord)}


def test_a_day_with_ai_summaries_parses_every_paper(serve: Serve) -> None:
    recorded = serve(by_day({"2026-06-12": fixture_bytes(WITH_AI)}))

    items = list(source_for(recorded, date(2026, 6, 12), days=1).fetch())

    papers = records(items)
    assert len(items) == len(papers) == 30
    expected_ids = {f"arxiv:{item['paper']['id']}" for item in real_items(WITH_AI)}
    assert set(papers) == expected_ids
    evoarena = papers["arxiv:2606.13681"]
    assert evoarena.title == (
        "EvoArena: Tracking Memory Evolution for Robust LLM Agents in Dynamic Environments"
    )
    assert evoarena.upvotes == 118
    assert evoarena.comments == 3
    assert evoarena.github_stars == 9
    assert evoarena.authors[0] == "Jundong Xu"
    assert evoarena.authors[-1] == "Zhiyuan Hu"
    assert evoarena.author_count == len(evoarena.authors) == 14
    assert evoarena.published_on == date(2026, 6, 11)
    assert evoarena.featured_at == datetime(2026, 6, 12, tzinfo=UTC)
    assert evoarena.keywords[:3] == ("large language model agents", "EvoArena", "EvoMem")
    assert len(evoarena.keywords) == 11
    assert evoarena.ai_summary is not None
    assert evoarena.ai_summary.startswith("EvoArena benchmark and EvoMem memory paradigm")
    assert evoarena.abstract is not None and len(evoarena.abstract) > 500
    assert evoarena.links == {
        "hf": "https://huggingface.co/papers/2606.13681",
        "abs": "https://arxiv.org/abs/2606.13681",
        "github": "https://github.com/Aiden0526/EvoArena",
        "project": "https://aiden0526.github.io/EvoArena/",
    }
    # Every paper of this day has an AI summary and keywords.
    assert all(paper.ai_summary and paper.keywords for paper in papers.values())
    # The first paper has neither a repository nor a project page: no such links.
    first = papers["arxiv:2606.00467"]
    assert set(first.links) == {"hf", "abs"}
    assert first.github_stars is None
    assert first.upvotes == 0
    # An author HF marks "hidden" is still in the byline, in place.
    assert papers["arxiv:2606.12575"].authors[3] == "Dengyang Jiang"
    assert papers["arxiv:2606.12575"].author_count == 10

    [request] = recorded.requests
    assert request.url.path == "/api/daily_papers"
    assert dict(request.url.params) == {"date": "2026-06-12", "p": "0", "limit": "100"}


def test_a_day_without_ai_summaries_has_no_keywords_or_summary(serve: Serve) -> None:
    recorded = serve(by_day({"2026-07-31": fixture_bytes(NO_AI)}))

    items = list(source_for(recorded, date(2026, 7, 31), days=1).fetch())

    papers = records(items)
    assert len(items) == len(papers) == 30
    assert all(paper.keywords == () and paper.ai_summary is None for paper in papers.values())
    askchem = papers["arxiv:2607.28618"]
    assert askchem.title.startswith("AskChem: Claim-Centered Infrastructure for Chemistry")
    assert askchem.upvotes == 292
    assert askchem.github_stars == 8
    assert askchem.links["project"] == "https://www.askchem.org"
    assert askchem.links["github"] == "https://github.com/bingyan4science/askchem"
    assert askchem.featured_at == datetime(2026, 7, 31, tzinfo=UTC)
    assert len(askchem.authors) == askchem.author_count == 4
    assert (askchem.authors[0], askchem.authors[-1]) == ("Bing Yan", "Kyunghyun Cho")
    # UTF-8 in titles survives.
    assert papers["arxiv:2607.28582"].title.startswith("β-OPSD: Deriving with Policy Optimization")
    assert papers["arxiv:2607.27958"].title.startswith("Σ-Mem:")
    # A real zero is a count, not "unknown".
    assert papers["arxiv:2607.18806"].github_stars == 0
    assert papers["arxiv:2607.16922"].upvotes == 0
    # A project page without a repository.
    qwen = papers["arxiv:2607.28227"]
    assert "github" not in qwen.links and qwen.github_stars is None
    assert qwen.links["project"] == "https://tongyi-mai.github.io/Qwen-UI-Agent/"
    assert qwen.comments == 7


def test_pages_are_fetched_until_one_comes_back_short(serve: Serve) -> None:
    # Two pages sliced out of the real 30-item listing.
    day = real_items(NO_AI)
    pages = {"0": day[0:20], "1": day[20:30]}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "20"
        page = pages.get(request.url.params["p"])
        if page is None:
            return httpx.Response(404, json={"error": "no such page in this test"})
        return httpx.Response(200, json=page)

    recorded = serve(handler)

    items = list(source_for(recorded, date(2026, 7, 31), days=1, page_size=20).fetch())

    assert [item.canonical_id for item in items if isinstance(item, PaperRecord)] == [
        f"arxiv:{item['paper']['id']}" for item in day
    ]
    assert len(items) == 30
    assert [request.url.params["p"] for request in recorded.requests] == ["0", "1"]


def test_paging_stops_at_max_pages_and_says_so(serve: Serve) -> None:
    day = real_items(NO_AI)
    recorded = serve(lambda request: httpx.Response(200, json=day[0:20]))

    items = list(source_for(recorded, date(2026, 7, 31), days=1, page_size=20, max_pages=1).fetch())

    assert len(records(items)) == 20
    [note] = [item for item in items if isinstance(item, Note)]
    assert "stopped after 1 pages" in note.text and "2026-07-31" in note.text
    assert len(recorded.requests) == 1


def test_days_fetches_today_first_then_earlier_dates(serve: Serve) -> None:
    recorded = serve(by_day({"2026-07-31": fixture_bytes(NO_AI), "2026-07-30": []}))

    items = list(source_for(recorded, date(2026, 7, 31), days=2).fetch())

    assert len(records(items)) == 30
    assert [request.url.params["date"] for request in recorded.requests] == [
        "2026-07-31",
        "2026-07-30",
    ]
    assert Note("Daily Papers lists no papers for 2026-07-30") in items


def test_nulls_and_wrong_types_in_optional_fields_are_unknown_not_errors(serve: Serve) -> None:
    # Derived from the real EvoArena item of 2026-06-12: its optional fields set to
    # JSON null, a count given as a string and a blank AI summary.
    item = real_item(WITH_AI, "2606.13681")
    paper = item["paper"]
    for field in ("githubStars", "githubRepo", "projectPage", "ai_keywords"):
        paper[field] = None
    paper["ai_summary"] = "  "
    paper["upvotes"] = "118"
    paper["publishedAt"] = None
    paper["authors"][0]["name"] = None
    item["numComments"] = None
    recorded = serve(by_day({"2026-06-12": [item]}))

    [record] = list(source_for(recorded, date(2026, 6, 12), days=1).fetch())

    assert isinstance(record, PaperRecord)
    assert record.canonical_id == "arxiv:2606.13681"
    assert record.title.startswith("EvoArena:")
    assert record.github_stars is None
    assert record.upvotes is None
    assert record.comments is None
    assert record.keywords == ()
    assert record.ai_summary is None
    assert record.published_on is None
    assert set(record.links) == {"hf", "abs"}
    # The nameless author is left out of the names but still counted.
    assert record.authors[:2] == ("Qingchuan Li", "Jiaying Wu")
    assert len(record.authors) == 13 and record.author_count == 14
    assert record.featured_at == datetime(2026, 6, 12, tzinfo=UTC)


def test_only_web_links_are_kept(serve: Serve) -> None:
    # Derived from the real AskChem item: its links replaced by ones no reader should get.
    item = real_item(NO_AI, "2607.28618")
    item["paper"]["githubRepo"] = "javascript:alert(1)"
    item["paper"]["projectPage"] = 42
    recorded = serve(by_day({"2026-07-31": [item]}))

    [record] = list(source_for(recorded, date(2026, 7, 31), days=1).fetch())

    assert isinstance(record, PaperRecord)
    assert set(record.links) == {"hf", "abs"}
    assert record.github_stars == 8


def test_unusable_items_are_skipped_with_a_reason_and_the_rest_kept(serve: Serve) -> None:
    # Derived from the real 2026-07-31 listing: three broken items among two real ones.
    first, last = real_items(NO_AI)[0], real_items(NO_AI)[-1]
    no_paper = copy.deepcopy(first)
    del no_paper["paper"]
    not_arxiv = real_item(NO_AI, "2607.28582")
    not_arxiv["paper"]["id"] = "not-an-arxiv-id"
    listing = [first, no_paper, "a string, not an item", not_arxiv, last]
    recorded = serve(by_day({"2026-07-31": listing}))

    items = list(source_for(recorded, date(2026, 7, 31), days=1).fetch())

    assert [type(item) for item in items] == [
        PaperRecord,
        SkippedEntry,
        SkippedEntry,
        SkippedEntry,
        PaperRecord,
    ]
    assert list(records(items)) == ["arxiv:2607.23193", "arxiv:2607.28568"]
    skipped = [item for item in items if isinstance(item, SkippedEntry)]
    assert "no 'paper' object" in skipped[0].reason
    assert skipped[0].entry.startswith("OmniScope: Modality-Decoupled Token Compression")
    assert "not a JSON object" in skipped[1].reason
    assert skipped[1].entry == '"a string, not an item"'
    assert "'not-an-arxiv-id' is not an arXiv id" in skipped[2].reason
    assert skipped[2].entry.startswith("not-an-arxiv-id: β-OPSD")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        # HF's way of refusing a request; the message text is written for this test.
        (400, b'{"error":"\\"date\\" must be a valid date"}', '"date" must be a valid date'),
        (200, b'{"error":"Rate limit reached"}', "Rate limit reached"),
        (200, b"<!doctype html><title>Hugging Face</title>", "did not answer with JSON"),
        (200, b'{"papers": []}', "JSON object, not the array of papers"),
    ],
)
def test_a_response_that_is_not_a_listing_is_a_source_error(
    serve: Serve, status: int, body: bytes, message: str
) -> None:
    recorded = serve(lambda request: httpx.Response(status, content=body))

    with pytest.raises(SourceError, match=message.replace("(", r"\(")) as raised:
        list(source_for(recorded, date(2026, 7, 31), days=1).fetch())

    assert "2026-07-31" in str(raised.value)


def test_an_unchanged_listing_is_a_note_and_no_records(serve: Serve) -> None:
    # The 2026-06-12 recording stands in for 2026-07-30: any real listing will do.
    listings = {"2026-07-31": fixture_bytes(NO_AI), "2026-07-30": fixture_bytes(WITH_AI)}

    def handler(request: httpx.Request) -> httpx.Response:
        day = request.url.params["date"]
        etag = f'"{day}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304)
        return httpx.Response(200, content=listings[day], headers={"etag": etag})

    recorded = serve(handler)
    source = source_for(recorded, date(2026, 7, 31), days=2)
    assert len(records(list(source.fetch()))) == 60
    recorded.requests.clear()

    again = list(source.fetch())

    assert again == [
        Note("Daily Papers for 2026-07-31 (page 0) not modified since last fetch"),
        Note("Daily Papers for 2026-07-30 (page 0) not modified since last fetch"),
    ]
    assert [
        (request.url.params["date"], request.headers["if-none-match"])
        for request in recorded.requests
    ] == [("2026-07-31", '"2026-07-31"'), ("2026-07-30", '"2026-07-30"')]
