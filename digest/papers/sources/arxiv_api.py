"""The arXiv API: ``export.arxiv.org/api/query`` (Atom 1.0).

Two ways in: a search query (``cat:cs.AI OR cat:cs.LG``), newest submissions
first and read page by page, or a list of ids, asked for in chunks. arXiv's
terms ask for one request every three seconds; that is the :class:`Fetcher`'s
``min_interval`` to enforce, as is retrying a 429/503 after ``Retry-After``.

Quirks this copes with, all seen in recorded responses (tests/fixtures/arxiv_api/):

* Errors come back as an Atom feed (HTTP 400, sometimes 200) whose one entry has
  an ``…/api/errors#…`` id, the title ``Error`` and the reason as its summary. It
  is an error, never a paper.
* Ids asked for that do not exist are dropped silently; we say which.
* The pre-2025 format declares the ``arxiv:`` and ``opensearch:`` namespaces on
  each element, uses http links and ``dx.doi.org`` DOI links and hard-wraps
  titles and summaries. Namespace-aware lookups read both formats alike.
* A title can be ``0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from lxml import etree

from digest.papers.identifiers import canonical_id, normalise_doi, parse_arxiv_id
from digest.papers.sources import Item, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.http import Fetcher, HttpStatusError
from digest.papers.sources.xml import parse_feed_xml, text_of
from digest.papers.text import normalise_space, plain_text

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ERROR_ID = "/api/errors"
SORT_FIELDS = frozenset({"relevance", "lastUpdatedDate", "submittedDate"})
# The API refuses to return more than this many entries in one response.
MAX_PAGE_SIZE = 2000


@dataclass(frozen=True)
class ApiPage:
    """One response of the API."""

    items: list[Item] = field(default_factory=list)
    # <entry> elements in the response, whether or not they became papers.
    entries: int = 0
    total: int | None = None
    # Canonical ids of every entry that carried an arXiv id (skipped ones too).
    returned: frozenset[str] = frozenset()
    problem: str | None = None


class ArxivApiSource:
    """Papers matching ``query``, or the papers named in ``id_list`` (exactly one).

    A query is read ``page_size`` entries at a time until ``max_results`` entries
    were read, a page comes back short or ``opensearch:totalResults`` is reached.
    An id list is read whole, ``page_size`` ids per request.
    """

    def __init__(
        self,
        *,
        fetcher: Fetcher,
        name: str = "arxiv-api",
        query: str | None = None,
        id_list: Sequence[str] = (),
        page_size: int = 100,
        max_results: int = 500,
        base_url: str = "https://export.arxiv.org/api/query",
        sort_by: str = "submittedDate",
    ) -> None:
        if isinstance(id_list, str):
            raise ValueError("arxiv_api id_list must be a list of ids, not one string")
        ids = list(dict.fromkeys(i.strip() for i in id_list if i.strip()))
        has_query = query is not None and query.strip() != ""
        if has_query == bool(ids):
            raise ValueError("arxiv_api needs exactly one of query or id_list")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"arxiv_api page_size must be 1..{MAX_PAGE_SIZE}, not {page_size}")
        if max_results < 1:
            raise ValueError(f"arxiv_api max_results must be at least 1, not {max_results}")
        if sort_by not in SORT_FIELDS:
            raise ValueError(
                f"arxiv_api sort_by {sort_by!r} is not one of {', '.join(sorted(SORT_FIELDS))}"
            )
        self.name = name
        self.fetcher = fetcher
        self.query = query.strip() if query is not None and has_query else None
        self.id_list = tuple(ids)
        self.page_size = page_size
        self.max_results = max_results
        self.base_url = base_url
        self.sort_by = sort_by

    def fetch(self) -> Iterator[Item]:
        if self.query is not None:
            yield from self._fetch_query(self.query)
        else:
            yield from self._fetch_ids()

    def _fetch_query(self, query: str) -> Iterator[Item]:
        start = 0
        seen: set[str] = set()
        while start < self.max_results:
            wanted = min(self.page_size, self.max_results - start)
            page = self._get_page(
                {
                    "search_query": query,
                    "sortBy": self.sort_by,
                    "sortOrder": "descending",
                    "start": start,
                    "max_results": wanted,
                }
            )
            for item in page.items:
                # New submissions arriving between two requests shift the pages,
                # so a paper can come back twice.
                if isinstance(item, PaperRecord):
                    if item.canonical_id in seen:
                        continue
                    seen.add(item.canonical_id)
                yield item
            if page.problem is not None:
                yield Note(
                    f"arXiv API page at start={start} was not well-formed ({page.problem}); "
                    "kept its intact entries and stopped"
                )
                return
            start += page.entries
            if page.entries < wanted:
                if page.total is not None and start < page.total:
                    yield Note(
                        f"arXiv API returned {page.entries} of {wanted} entries at "
                        f"start={start - page.entries} though it reports {page.total} "
                        "results; stopped there"
                    )
                return
            if page.total is not None and start >= page.total:
                return

    def _fetch_ids(self) -> Iterator[Item]:
        missing: list[str] = []
        for offset in range(0, len(self.id_list), self.page_size):
            chunk = self.id_list[offset : offset + self.page_size]
            page = self._get_page(
                {"id_list": ",".join(chunk), "start": 0, "max_results": len(chunk)}
            )
            yield from page.items
            if page.problem is not None:
                yield Note(
                    f"arXiv API response for {len(chunk)} ids was not well-formed "
                    f"({page.problem}); kept its intact entries"
                )
            missing.extend(i for i in chunk if _canonical(i) not in page.returned)
        if missing:
            yield Note(f"arXiv returned no entry for {', '.join(missing)}")

    def _get_page(self, params: Mapping[str, str | int]) -> ApiPage:
        try:
            # Unconditional: a 304 would leave us not knowing whether a next page exists.
            response = self.fetcher.get(self.base_url, params=params, conditional=False)
        except HttpStatusError as exc:
            message = _error_message(exc.body, what=exc.url)
            if message is None:
                raise
            raise SourceError(f"arXiv API error: {message}") from exc
        if response is None:
            return ApiPage(items=[Note("not modified since the last fetch")])
        return parse_arxiv_api_page(response.body, what=response.url)


def parse_arxiv_api_page(body: bytes, *, what: str) -> ApiPage:
    """The papers in one response, how many entries it held and the total it reports."""
    parsed = parse_feed_xml(body, what=what)
    root = parsed.root
    if root.tag != f"{_ATOM}feed":
        raise SourceError(f"{what} is not an Atom feed (root <{root.tag}>)")
    entries = root.findall(f"{_ATOM}entry")
    message = _error_in(entries)
    if message is not None:
        raise SourceError(f"arXiv API error: {message}")
    # parse_feed_xml spots a cut only when libxml2 reports "premature end" first; a cut
    # inside an attribute is reported otherwise, but the document then lacks its end.
    truncated = parsed.truncated or (
        parsed.problem is not None and not body.rstrip().endswith(b"</feed>")
    )
    items: list[Item] = []
    returned: set[str] = set()
    for position, entry in enumerate(entries):
        found = _canonical(text_of(entry.find(f"{_ATOM}id")) or "")
        if found is not None:
            returned.add(found)
        if truncated and position == len(entries) - 1:
            items.append(SkippedEntry("entry cut off by a truncated response", _describe(entry)))
            continue
        items.append(_record(entry))
    return ApiPage(
        items=items,
        entries=len(entries),
        total=_int(text_of(root.find(f"{_OPENSEARCH}totalResults"))),
        returned=frozenset(returned),
        problem=parsed.problem,
    )


def _error_message(body: bytes, *, what: str) -> str | None:
    """The reason in an error feed, or ``None`` when ``body`` is not one."""
    try:
        parsed = parse_feed_xml(body, what=what)
    except SourceError:
        return None
    return _error_in(parsed.root.findall(f"{_ATOM}entry"))


def _error_in(entries: list[etree._Element]) -> str | None:
    for entry in entries:
        entry_id = text_of(entry.find(f"{_ATOM}id")) or ""
        if _ERROR_ID in entry_id:
            summary = normalise_space(text_of(entry.find(f"{_ATOM}summary")) or "")
            return summary if summary != "" else entry_id.strip()
    return None


def _record(entry: etree._Element) -> PaperRecord | SkippedEntry:
    raw_id = text_of(entry.find(f"{_ATOM}id"))
    raw_title = text_of(entry.find(f"{_ATOM}title"))
    if raw_id is None or raw_id.strip() == "":
        return SkippedEntry("entry has no <id>", _describe(entry))
    found = parse_arxiv_id(raw_id)
    if found is None:
        return SkippedEntry("no arXiv id in <id>", _describe(entry))
    arxiv_id, version = found
    # A title of "0" is a title: compare with "", never test truthiness.
    title = plain_text(normalise_space(raw_title)) if raw_title is not None else ""
    if title == "":
        return SkippedEntry("no title", arxiv_id)
    summary = text_of(entry.find(f"{_ATOM}summary"))
    abstract = plain_text(summary) if summary is not None else ""
    authors = tuple(
        name
        for author in entry.findall(f"{_ATOM}author")
        if (name := normalise_space(text_of(author.find(f"{_ATOM}name")) or "")) != ""
    )
    primary = entry.find(f"{_ARXIV}primary_category")
    terms = [primary.get("term") if primary is not None else None]
    terms += [category.get("term") for category in entry.findall(f"{_ATOM}category")]
    categories = tuple(dict.fromkeys(t.strip() for t in terms if t and t.strip()))
    doi = _doi(entry)
    links = {"abs": f"https://arxiv.org/abs/{arxiv_id}"}
    if any(_is_pdf_link(link) for link in entry.findall(f"{_ATOM}link")):
        # Unversioned, like every arXiv source's links: it always serves the latest version.
        links["pdf"] = f"https://arxiv.org/pdf/{arxiv_id}"
    if doi is not None:
        links["doi"] = f"https://doi.org/{doi}"
    return PaperRecord(
        canonical_id=canonical_id(arxiv_id=arxiv_id) or "",
        title=title,
        abstract=abstract if abstract != "" else None,
        authors=authors,
        # No <author> at all says nothing about the count; 0 would claim there are none.
        author_count=len(authors) or None,
        categories=categories,
        links=links,
        published_on=_date(text_of(entry.find(f"{_ATOM}published"))),
        version=version,
        doi=doi,
    )


def _doi(entry: etree._Element) -> str | None:
    doi = normalise_doi(text_of(entry.find(f"{_ARXIV}doi")) or "")
    if doi is not None:
        return doi
    for link in entry.findall(f"{_ATOM}link"):
        if link.get("title") == "doi":
            return normalise_doi(link.get("href") or "")
    return None


def _is_pdf_link(link: etree._Element) -> bool:
    return bool(link.get("title") == "pdf" or link.get("type") == "application/pdf")


def _canonical(text: str) -> str | None:
    found = parse_arxiv_id(text)
    return canonical_id(arxiv_id=found[0]) if found else None


def _describe(entry: etree._Element) -> str:
    """The entry's id, else its title: what a log line can point at."""
    for tag in ("id", "title"):
        text = normalise_space(text_of(entry.find(f"{_ATOM}{tag}")) or "")
        if text != "":
            return text[:200]
    return ""


def _date(value: str | None) -> date | None:
    if value is None or value.strip() == "":
        return None
    try:
        return datetime.fromisoformat(value.strip()).date()
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
