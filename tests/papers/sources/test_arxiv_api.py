"""The arXiv API source against recorded real responses (tests/fixtures/arxiv_api/)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import httpx
import pytest

from digest.papers.sources import Item, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.arxiv_api import ArxivApiSource
from digest.papers.sources.http import HttpStatusError
from tests.papers.sources.recorded import Recorded, fixture_bytes

Serve = Callable[..., Recorded]
Handler = Callable[[httpx.Request], httpx.Response]

TESTING_100 = "arxiv_api/arxiv_api_query_all-testing_100entries_2026-04-12.xml"
CATEGORIES_25 = "arxiv_api/arxiv_api_query_cat-cs.AI-OR-cs.LG-OR-cs.CL_25entries_2026-08-02.xml"
TITLE_ZERO = "arxiv_api/arxiv_api_idlist_2104.12255v1_title-is-zero_2026-04-12.xml"
OLD_STYLE = "arxiv_api/arxiv_api_idlist_astro-ph-0601001_oldstyle-id_affiliations_2026-05-11.xml"
ONE_MISSING = "arxiv_api/arxiv_api_idlist_2ids-1-missing_1707.08567_2026-04-12.xml"
ZERO_RESULTS = "arxiv_api/arxiv_api_idlist_0000.0000_zero-results_2026-04-12.xml"
ERROR_400 = "arxiv_api/arxiv_api_error-http400_idlist-abc_2026-04-12.xml"
LEGACY = "arxiv_api/arxiv_api_LEGACY-format_2016_au-del_maestro_10entries.xml"

CATEGORY_QUERY = "cat:cs.AI OR cat:cs.LG OR cat:cs.CL"
POLITE = {"export.arxiv.org": 3.0}


def atom(body: bytes, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": "application/atom+xml; charset=utf-8", **headers},
    )


def by_param(name: str, answers: Mapping[str, bytes | httpx.Response]) -> Handler:
    """Answer by the value of one query parameter (``start``, ``id_list``); 404 otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        value = request.url.params.get(name)
        answer = answers.get(value) if value is not None else None
        if answer is None:
            return httpx.Response(404, text=f"not served by this test: {name}={value}")
        return atom(answer) if isinstance(answer, bytes) else answer

    return handler


def in_turn(*responses: httpx.Response) -> Handler:
    """Answer each request with the next response."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0)

    return handler


def query_source(recorded: Recorded, query: str = CATEGORY_QUERY, **options: Any) -> ArxivApiSource:
    return ArxivApiSource(fetcher=recorded.fetcher, query=query, **options)


def id_source(recorded: Recorded, *ids: str, **options: Any) -> ArxivApiSource:
    return ArxivApiSource(fetcher=recorded.fetcher, id_list=ids, **options)


def papers(items: list[Item]) -> dict[str, PaperRecord]:
    return {item.canonical_id: item for item in items if isinstance(item, PaperRecord)}


def params(recorded: Recorded, name: str) -> list[str | None]:
    return [request.url.params.get(name) for request in recorded.requests]


def test_a_category_query_parses_every_paper(serve: Serve) -> None:
    recorded = serve(by_param("start", {"0": fixture_bytes(CATEGORIES_25)}))

    items = list(query_source(recorded, page_size=25, max_results=25).fetch())

    found = papers(items)
    assert len(items) == len(found) == 25
    (request,) = recorded.requests
    assert request.url.host == "export.arxiv.org"
    assert request.url.path == "/api/query"
    assert dict(request.url.params) == {
        "search_query": CATEGORY_QUERY,
        "sortBy": "submittedDate",
        "sortOrder": "descending",
        "start": "0",
        "max_results": "25",
    }
    seiberg = found["arxiv:2607.28628"]
    assert seiberg.title == "Learning to Trace Seiberg Dualities"
    assert seiberg.authors == (
        "Jonathan J. Heckman",
        "Shani Meynet",
        "Alessandro Mininno",
        "Gary Shiu",
    )
    assert seiberg.author_count == 4
    # The primary category once, first; the cross-lists after it in feed order.
    assert seiberg.categories == ("hep-th", "cs.AI", "cs.LG", "hep-ph")
    assert seiberg.version == 1
    assert seiberg.published_on == date(2026, 7, 30)
    assert seiberg.links == {
        "abs": "https://arxiv.org/abs/2607.28628",
        "pdf": "https://arxiv.org/pdf/2607.28628",
    }
    assert seiberg.doi is None
    assert seiberg.abstract is not None
    assert seiberg.abstract.startswith("Dualities play an important role")
    assert "(of order $10$)" in seiberg.abstract  # LaTeX kept raw
    assert '(essentially "Google Maps for quivers")' in seiberg.abstract
    aispa = found["arxiv:2607.28617"]
    assert aispa.author_count == len(aispa.authors) == 26
    assert aispa.authors[:2] == ("Xiangning Lin", "Shenzhe Zhu")
    assert aispa.authors[-1] == "Jiaxin Pei"
    assert found["arxiv:2607.28582"].title == (
        "$β$-OPSD: Deriving with Policy Optimization, Training with Self-Distillation"
    )
    assert found["arxiv:2607.28567"].categories == (
        "stat.ML",
        "cs.LG",
        "stat.AP",
        "stat.CO",
        "stat.ME",
    )


def test_a_100_entry_page_keeps_versions_dois_old_style_ids_and_text(serve: Serve) -> None:
    recorded = serve(by_param("start", {"0": fixture_bytes(TESTING_100)}))

    items = list(query_source(recorded, "all:testing", page_size=100, max_results=100).fetch())

    found = papers(items)
    assert len(items) == len(found) == 100
    assert {"arxiv:cs/0503050", "arxiv:hep-ph/0301050", "arxiv:gr-qc/0103067"} <= set(found)
    assert sum(1 for paper in found.values() if paper.doi is not None) == 32
    first = found["arxiv:2202.12139"]
    assert first.doi == "10.1109/icstw55395.2022.00035"
    assert first.links["doi"] == "https://doi.org/10.1109/icstw55395.2022.00035"
    assert first.categories == ("cs.SE", "cs.LG")
    assert found["arxiv:2409.05654"].version == 9
    assert found["arxiv:2409.05654"].published_on == date(2024, 9, 9)  # first version's date
    assert found["arxiv:hep-ph/0301050"].version == 2
    assert found["arxiv:hep-ph/0301050"].doi == "10.1016/j.physletb.2003.08.045"
    assert found["arxiv:gr-qc/0103067"].links["pdf"] == "https://arxiv.org/pdf/gr-qc/0103067"
    assert found["arxiv:2306.03845"].title == (
        "$ω$Test: WebView-Oriented Testing for Android Applications"
    )
    assert found["arxiv:2302.03287"].title == (
        "ChatGPT and Software Testing Education: Promises & Perils"
    )
    assert found["arxiv:1106.3680"].categories == (
        "cs.DM",
        "cs.CE",
        "cs.DS",
        "cs.IT",
        "math.CO",
        "q-bio.QM",
    )
    # The one entry with affiliations: names only.
    assert found["arxiv:0804.0970"].authors == ("Marie-Claude Gaudel", "Pascale Le Gall")
    # Leading spaces and the paragraph break of a summary are collapsed.
    white_box = found["arxiv:cs/0503050"].abstract
    assert white_box is not None
    assert white_box.startswith("A systematic, language-independent method")
    assert "arrows. The number of independent paths" in white_box
    # "<" in maths is text, not markup.
    planarity = found["arxiv:1309.0683"].abstract
    assert planarity is not None
    assert "with $γ(u)<γ(v)$, it holds $y(u)<y(v)$" in planarity


def test_a_title_of_zero_is_a_title(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"2104.12255v1": fixture_bytes(TITLE_ZERO)}))

    items = list(id_source(recorded, "2104.12255v1").fetch())

    (paper,) = items
    assert isinstance(paper, PaperRecord)
    assert paper.canonical_id == "arxiv:2104.12255"
    assert paper.title == "0"
    assert paper.version == 1
    assert paper.authors == ("Quan Thoi Minh Nguyen",)
    assert paper.categories == ("cs.CR",)
    assert paper.published_on == date(2021, 4, 20)
    (request,) = recorded.requests
    assert dict(request.url.params) == {
        "id_list": "2104.12255v1",
        "start": "0",
        "max_results": "1",
    }


def test_an_old_style_id_with_affiliations(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"astro-ph/0601001": fixture_bytes(OLD_STYLE)}))

    items = list(id_source(recorded, "astro-ph/0601001").fetch())

    (paper,) = items
    assert isinstance(paper, PaperRecord)
    assert paper.canonical_id == "arxiv:astro-ph/0601001"
    assert paper.version == 1
    assert paper.title == (
        "Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III Transit "
        "Surveys Toward the Galactic Bulge and Carina"
    )
    assert paper.authors == ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski")
    assert paper.author_count == 4
    assert paper.categories == ("astro-ph",)
    assert paper.links == {
        "abs": "https://arxiv.org/abs/astro-ph/0601001",
        "pdf": "https://arxiv.org/pdf/astro-ph/0601001",
    }
    assert paper.published_on == date(2006, 1, 2)
    assert paper.abstract is not None
    assert paper.abstract.startswith("We derive the frequencies of hot Jupiters")
    assert "following Gould & Morgan (2003)" in paper.abstract
    assert "limit of V_max<17.5." in paper.abstract
    assert "(1/310)(1^{+1.39}_{-0.59})" in paper.abstract


def test_an_id_arxiv_drops_silently_is_noted(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"0808.05394,1707.08567": fixture_bytes(ONE_MISSING)}))

    items = list(id_source(recorded, "0808.05394", "1707.08567").fetch())

    paper, note = items
    assert isinstance(paper, PaperRecord)
    assert paper.canonical_id == "arxiv:1707.08567"
    assert paper.title == (
        "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
    )
    assert paper.author_count == len(paper.authors) == 34
    assert paper.authors[0] == "Kees A. Schouhamer Immink"
    assert paper.authors[-2:] == ("Dirk Wübben", "Hirosuke Yamamoto")
    assert paper.categories == ("cs.IT",)
    assert note == Note("arXiv returned no entry for 0808.05394")


def test_an_id_list_is_asked_for_in_chunks_of_page_size(serve: Serve) -> None:
    recorded = serve(
        by_param(
            "id_list",
            {
                "2104.12255v1": fixture_bytes(TITLE_ZERO),
                "astro-ph/0601001": fixture_bytes(OLD_STYLE),
                "1707.08567": fixture_bytes(ONE_MISSING),
            },
        ),
        min_interval=POLITE,
    )

    items = list(
        id_source(recorded, "2104.12255v1", "astro-ph/0601001", "1707.08567", page_size=1).fetch()
    )

    assert list(papers(items)) == [
        "arxiv:2104.12255",
        "arxiv:astro-ph/0601001",
        "arxiv:1707.08567",
    ]
    assert len(items) == 3  # nothing missing, so no note
    assert params(recorded, "id_list") == ["2104.12255v1", "astro-ph/0601001", "1707.08567"]
    assert params(recorded, "max_results") == ["1", "1", "1"]
    assert recorded.clock.sleeps == [3.0, 3.0]


def test_an_id_that_does_not_exist_gives_a_note_not_an_error(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"0000.0000": fixture_bytes(ZERO_RESULTS)}))

    items = list(id_source(recorded, "0000.0000").fetch())

    assert items == [Note("arXiv returned no entry for 0000.0000")]


def test_a_query_with_no_results_yields_nothing(serve: Serve) -> None:
    recorded = serve(by_param("start", {"0": fixture_bytes(ZERO_RESULTS)}))

    items = list(query_source(recorded, "cat:nothing.XX").fetch())

    assert items == []
    assert len(recorded.requests) == 1


def test_the_http_400_error_feed_raises_its_message(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"abc": atom(fixture_bytes(ERROR_400), status=400)}))

    with pytest.raises(SourceError) as raised:
        list(id_source(recorded, "abc").fetch())

    assert str(raised.value) == "arXiv API error: incorrect id format for abc"
    assert isinstance(raised.value.__cause__, HttpStatusError)
    assert raised.value.__cause__.status == 400
    assert len(recorded.requests) == 1  # a 400 is not retried


def test_the_error_feed_served_with_200_is_still_an_error(serve: Serve) -> None:
    recorded = serve(by_param("id_list", {"abc": fixture_bytes(ERROR_400)}))
    items: list[Item] = []

    with pytest.raises(SourceError, match=r"^arXiv API error: incorrect id format for abc$"):
        items.extend(id_source(recorded, "abc").fetch())

    assert items == []


def test_an_error_status_without_an_error_feed_is_raised_as_is(serve: Serve) -> None:
    recorded = serve(
        by_param("start", {"0": httpx.Response(404, text="<html><body>Not Found</body></html>")})
    )

    with pytest.raises(HttpStatusError) as raised:
        list(query_source(recorded).fetch())

    assert raised.value.status == 404


def test_the_legacy_2016_format(serve: Serve) -> None:
    recorded = serve(by_param("start", {"0": fixture_bytes(LEGACY)}))

    items = list(query_source(recorded, "au:del_maestro", page_size=10, max_results=10).fetch())

    found = papers(items)
    assert len(items) == len(found) == 10
    assert all(paper.doi is not None for paper in found.values())
    helium = found["arxiv:1201.4869"]
    assert helium.title == "A Luttinger Liquid Core Inside Helium-4 Filled Nanopores"
    assert helium.authors == ("Adrian Del Maestro",)
    assert helium.categories == ("cond-mat.mes-hall", "cond-mat.other")
    assert helium.version == 1
    assert helium.published_on == date(2012, 1, 23)
    assert helium.doi == "10.1142/s021797921244002x"
    # http links and dx.doi.org in the feed; https everywhere in what we store.
    assert helium.links == {
        "abs": "https://arxiv.org/abs/1201.4869",
        "pdf": "https://arxiv.org/pdf/1201.4869",
        "doi": "https://doi.org/10.1142/s021797921244002x",
    }
    assert helium.abstract is not None
    assert "\n" not in helium.abstract
    assert helium.abstract.startswith("As helium-4 is cooled below 2.17 K it undergoes")
    assert "a superfluid which supports flow without viscosity." in helium.abstract
    assert helium.abstract.endswith("this intriguing low dimensional state of matter.")
    stripes = found["arxiv:cond-mat/0603029"]
    assert stripes.title == (
        "From stripe to checkerboard order on the square lattice in the presence "
        "of quenched disorder"
    )
    assert stripes.categories == ("cond-mat.str-el", "cond-mat.supr-con")
    assert stripes.doi == "10.1103/physrevb.74.024520"
    assert found["arxiv:cond-mat/0702661"].version == 2
    density = found["arxiv:cond-mat/0412498"]
    assert density.authors == ("Adrian Del Maestro", "Subir Sachdev")
    assert density.abstract is not None
    assert '"p x p" density wave ordering on the square lattice (p >= 3, integer)' in (
        density.abstract
    )


@pytest.mark.parametrize(
    "removed",
    [
        b'<arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1142/S021797921244002X</arxiv:doi>',
        b'<link title="doi" href="http://dx.doi.org/10.1142/S021797921244002X" rel="related"/>',
    ],
    ids=["from-the-dx-doi-link", "from-arxiv-doi"],
)
def test_the_doi_is_read_from_either_place(serve: Serve, removed: bytes) -> None:
    # Derived in memory: one of the two places the legacy recording gives the DOI removed.
    body = fixture_bytes(LEGACY)
    assert removed in body
    recorded = serve(by_param("start", {"0": body.replace(removed, b"", 1)}))

    found = papers(list(query_source(recorded, page_size=10, max_results=10).fetch()))

    helium = found["arxiv:1201.4869"]
    assert helium.doi == "10.1142/s021797921244002x"
    assert helium.links["doi"] == "https://doi.org/10.1142/s021797921244002x"


def test_a_query_is_read_in_pages_one_every_three_seconds(serve: Serve) -> None:
    recorded = serve(
        by_param("start", {"0": fixture_bytes(TESTING_100), "100": fixture_bytes(CATEGORIES_25)}),
        min_interval=POLITE,
    )

    items = list(query_source(recorded, page_size=100, max_results=125).fetch())

    found = papers(items)
    assert len(items) == len(found) == 125
    assert params(recorded, "start") == ["0", "100"]
    assert params(recorded, "max_results") == ["100", "25"]
    assert recorded.clock.sleeps == [3.0]
    assert list(found)[99:101] == ["arxiv:gr-qc/0103067", "arxiv:2607.28628"]


def test_paging_stops_at_total_results(serve: Serve) -> None:
    # The recording reports totalResults=1: a second page would be empty.
    recorded = serve(by_param("start", {"0": fixture_bytes(ONE_MISSING)}))

    items = list(query_source(recorded, page_size=1, max_results=50).fetch())

    assert list(papers(items)) == ["arxiv:1707.08567"]
    assert len(items) == 1
    assert params(recorded, "start") == ["0"]


def test_a_short_page_ends_paging_with_a_note(serve: Serve) -> None:
    # 25 entries where 50 were asked for, though arXiv reports 449,736 results.
    recorded = serve(by_param("start", {"0": fixture_bytes(CATEGORIES_25)}))

    items = list(query_source(recorded, page_size=50, max_results=500).fetch())

    assert len(papers(items)) == 25
    assert items[-1] == Note(
        "arXiv API returned 25 of 50 entries at start=0 though it reports 449736 results; "
        "stopped there"
    )
    assert params(recorded, "start") == ["0"]


def test_a_paper_on_two_pages_is_yielded_once(serve: Serve) -> None:
    # The same page answered twice, as when new submissions shift the listing.
    legacy = fixture_bytes(LEGACY)
    recorded = serve(by_param("start", {"0": legacy, "10": legacy}))

    items = list(query_source(recorded, "au:del_maestro", page_size=10, max_results=20).fetch())

    assert len(items) == len(papers(items)) == 10
    assert params(recorded, "start") == ["0", "10"]


def test_retry_after_on_503_is_honoured(serve: Serve) -> None:
    recorded = serve(
        in_turn(
            httpx.Response(503, text="busy", headers={"Retry-After": "7"}),
            atom(fixture_bytes(TITLE_ZERO)),
        )
    )

    items = list(id_source(recorded, "2104.12255v1").fetch())

    assert list(papers(items)) == ["arxiv:2104.12255"]
    assert recorded.clock.sleeps == [7.0]
    assert len(recorded.requests) == 2


def test_a_bad_entry_is_skipped_and_the_rest_kept(serve: Serve) -> None:
    # Derived in memory from the recording: one entry's <id> removed, another's made
    # unreadable.
    body = fixture_bytes(CATEGORIES_25)
    body = body.replace(b"<id>http://arxiv.org/abs/2607.28627v1</id>", b"", 1)
    body = body.replace(
        b"<id>http://arxiv.org/abs/2607.28623v1</id>", b"<id>http://arxiv.org/abs/nonsense</id>"
    )
    recorded = serve(by_param("start", {"0": body}))

    items = list(query_source(recorded, page_size=25, max_results=25).fetch())

    skipped = [item for item in items if isinstance(item, SkippedEntry)]
    assert skipped == [
        SkippedEntry(
            "entry has no <id>",
            "ReToken: One Token to Improve Vision-Language Models for Visual Retrieval",
        ),
        SkippedEntry("no arXiv id in <id>", "http://arxiv.org/abs/nonsense"),
    ]
    found = papers(items)
    assert len(found) == 23
    assert "arxiv:2607.28627" not in found
    assert "arxiv:2607.28628" in found
    assert "arxiv:2607.28618" in found


def test_the_primary_category_comes_first(serve: Serve) -> None:
    # Derived in memory: every recording lists the primary category first already.
    body = fixture_bytes(CATEGORIES_25).replace(
        b'<arxiv:primary_category term="hep-th"/>', b'<arxiv:primary_category term="cs.LG"/>', 1
    )
    recorded = serve(by_param("start", {"0": body}))

    found = papers(list(query_source(recorded, page_size=25, max_results=25).fetch()))

    assert found["arxiv:2607.28628"].categories == ("cs.LG", "hep-th", "cs.AI", "hep-ph")


@pytest.mark.parametrize(
    "after_id",
    [60, 200],
    ids=["cut-in-title", "cut-in-attribute"],
)
def test_a_truncated_page_keeps_its_intact_entries(serve: Serve, after_id: int) -> None:
    # Derived in memory: the recording cut off inside its fourth entry.
    body = fixture_bytes(CATEGORIES_25)
    cut = body.index(b"<id>http://arxiv.org/abs/2607.28618v1</id>") + after_id
    recorded = serve(by_param("start", {"0": body[:cut]}))

    items = list(query_source(recorded, page_size=25, max_results=500).fetch())

    assert list(papers(items)) == [
        "arxiv:2607.28628",
        "arxiv:2607.28627",
        "arxiv:2607.28623",
    ]
    assert items[3] == SkippedEntry(
        "entry cut off by a truncated response", "http://arxiv.org/abs/2607.28618v1"
    )
    assert isinstance(items[4], Note)
    assert "not well-formed" in items[4].text
    assert len(items) == 5
    assert params(recorded, "start") == ["0"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "not xml"}', "not well-formed XML"),
        (
            b'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]>\n'
            + fixture_bytes(ZERO_RESULTS).split(b"?>", 1)[1],
            "entity expansion bomb",
        ),
    ],
    ids=["not-xml", "nested-entities"],
)
def test_a_response_that_is_not_a_safe_feed_raises(serve: Serve, body: bytes, message: str) -> None:
    recorded = serve(by_param("start", {"0": body}))

    with pytest.raises(SourceError, match=message):
        list(query_source(recorded).fetch())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"query": "cat:cs.AI", "id_list": ["2104.12255"]},
        {"query": "   "},
        {"id_list": "2104.12255"},
        {"query": "cat:cs.AI", "page_size": 0},
        {"query": "cat:cs.AI", "page_size": 2001},
        {"query": "cat:cs.AI", "max_results": 0},
        {"query": "cat:cs.AI", "sort_by": "newest"},
    ],
    ids=[
        "neither",
        "both",
        "blank-query",
        "id-list-as-string",
        "page-size-0",
        "page-size-over-api-limit",
        "max-results-0",
        "unknown-sort",
    ],
)
def test_bad_options_are_refused(serve: Serve, options: dict[str, Any]) -> None:
    recorded = serve(in_turn())

    with pytest.raises(ValueError):
        ArxivApiSource(fetcher=recorded.fetcher, **options)
