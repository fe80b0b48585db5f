"""Any RSS or Atom feed by URL (``https://…``, or ``file://…`` for a feed dropped on disk).

Third-party feeds say the same things in different places, so each feed gets a
:class:`FeedMapping`: which entry fields hold the arXiv id, the DOI, the abstract,
the authors, the categories and the date. The defaults fit feeds that link to
arXiv (``https://arxiv.org/abs/<id>``, ``https://tldr.takara.ai/p/<id>``).

The body is parsed by lxml first (:func:`~digest.papers.sources.xml.parse_feed_xml`), which
leaves entities unexpanded (refusing a bomb) and recovers truncated or mis-encoded
documents, and feedparser is given lxml's re-serialisation of what it accepted:
feedparser never sees a DOCTYPE or an entity reference, so its own entity
handling cannot be reached. feedparser's HTML
sanitiser and relative-URI resolution are turned off (feedparser itself 2.1x faster on
the HTML-heavy huangboming feed, 1.3x on takara); every text field is sanitised with nh3 via
:func:`~digest.papers.text.plain_text` instead, and only http(s) links are kept.

A feed that turns out to be one of arXiv's RSS listings (a saved copy, a mirror)
is read by :mod:`~digest.papers.sources.arxiv_rss` instead, whatever its mapping says:
the listing's format is fixed, and that reader knows its announce types.
"""

from __future__ import annotations

import email.utils
import io
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import feedparser
from lxml import etree

from digest.papers.identifiers import canonical_id, normalise_doi, parse_arxiv_id
from digest.papers.sources import Item, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.arxiv_rss import is_arxiv_rss_listing, listing_entries
from digest.papers.sources.http import Fetcher
from digest.papers.sources.xml import ParsedXml, parse_feed_xml
from digest.papers.text import normalise_space, plain_text

# The closing tag of an RSS item or Atom entry, with or without a namespace prefix.
# Counted in a document that needed recovery: an entry lxml had to close itself
# was cut off by the truncation and is not trusted.
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>")
# ``<p><b>Label:</b> value</p>``: descriptions that pack several fields into one
# HTML blob (python-feedgen feeds of Hugging Face papers: Authors, Upvotes, Summary).
_LABELLED = re.compile(
    r"<p>\s*<(b|strong)>\s*([A-Za-z][A-Za-z ]{0,30}?)\s*:\s*</\1>(.*?)</p>",
    re.IGNORECASE | re.DOTALL,
)
_ABSTRACT_LABELS = ("summary", "abstract")
_NAME_SEPARATORS = re.compile(r"\s*;\s*|\s*,\s*|\s+and\s+")


@dataclass(frozen=True)
class FeedMapping:
    """Where a feed keeps each paper field; names are feedparser's entry keys
    (``id`` is the RSS guid, ``summary`` the RSS description, ``prism_doi`` is
    ``<prism:doi>``, ``dc_identifier`` is ``<dc:identifier>``)."""

    # The paper's identity: an arXiv id searched in these fields in order, then the
    # DOI field, then a stable hash of the guid or link.
    arxiv_id_fields: tuple[str, ...] = ("id", "link")
    doi_field: str | None = None
    abstract_field: str = "summary"
    abstract_is_html: bool = True
    # "author"/"authors" use feedparser's author list; another name reads that field.
    authors_field: str | None = "author"
    category_field: str | None = "tags"
    # Falls back to "updated" when the entry has no such date.
    date_field: str = "published"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> FeedMapping:
        """A mapping from a sources-file table; unknown keys and wrong types are a
        :class:`ValueError`. TOML has no null, so ``""`` turns an optional field off."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown feed mapping key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        options: dict[str, Any] = {}
        for key, value in data.items():
            if key == "arxiv_id_fields":
                names = (value,) if isinstance(value, str) else value
                if not isinstance(names, list | tuple) or not all(
                    isinstance(n, str) and n for n in names
                ):
                    raise ValueError("feed mapping arxiv_id_fields must be a list of field names")
                options[key] = tuple(names)
            elif key == "abstract_is_html":
                if not isinstance(value, bool):
                    raise ValueError("feed mapping abstract_is_html must be true or false")
                options[key] = value
            elif key in ("doi_field", "authors_field", "category_field"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"feed mapping {key} must be a field name")
                options[key] = value or None
            else:
                if not isinstance(value, str) or not value:
                    raise ValueError(f"feed mapping {key} must be a field name")
                options[key] = value
        return cls(**options)


class FeedSource:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        fetcher: Fetcher,
        mapping: FeedMapping = FeedMapping(),
        max_entries: int = 10_000,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.name = name
        self.url = url
        self.fetcher = fetcher
        self.mapping = mapping
        self.max_entries = max_entries

    def fetch(self) -> Iterator[Item]:
        response = self.fetcher.get(self.url)
        if response is None:
            yield Note("not modified since the last fetch")
            return
        yield from parse_feed(
            response.body, what=self.url, mapping=self.mapping, max_entries=self.max_entries
        )


def parse_feed(
    body: bytes,
    *,
    what: str,
    mapping: FeedMapping = FeedMapping(),
    max_entries: int = 10_000,
) -> Iterator[Item]:
    """Papers, skipped entries and notes from a feed document; :class:`SourceError`
    when the document is not a feed at all. Parsing happens before the first item."""
    parsed = parse_feed_xml(body, what=what)
    if is_arxiv_rss_listing(parsed.root):
        return _arxiv_listing(parsed, what, max_entries)
    document = etree.tostring(parsed.root, encoding="utf-8", xml_declaration=True)
    # A stream, not bytes: given bytes, feedparser first tries them as a file name.
    result = feedparser.parse(
        io.BytesIO(document), sanitize_html=False, resolve_relative_uris=False
    )
    entries = result.entries
    problem = result.get("bozo_exception") if result.get("bozo") else None
    if isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
        problem = None
    if not entries:
        if problem is not None:
            raise SourceError(f"{what} could not be read as a feed: {problem}")
        if not result.get("version"):
            raise SourceError(f"{what} is not an RSS or Atom feed (root <{parsed.root.tag}>)")
    return _items(parsed.problem, body, entries, problem, what, mapping, max_entries)


def _arxiv_listing(parsed: ParsedXml, what: str, max_entries: int) -> Iterator[Item]:
    # Read generically, a listing's abstracts would keep their "arXiv:… Announce
    # Type: new Abstract:" header and a replacement would claim the listing's date
    # as its publication date, showing an old paper as new.
    yield Note(f"{what} is an arXiv RSS listing; read as one")
    yield from listing_entries(parsed, what=what, max_entries=max_entries)


def _items(
    recovered_from: str | None,
    body: bytes,
    entries: list[Any],
    problem: object,
    what: str,
    mapping: FeedMapping,
    max_entries: int,
) -> Iterator[Item]:
    complete = len(entries)
    if recovered_from is not None:
        yield Note(
            f"{what} was not well-formed ({_shorten(recovered_from)}); kept the entries that were"
        )
        if b"\x00" not in body[:512]:  # an ASCII-compatible encoding: the tags can be counted
            complete = min(complete, len(_ENTRY_END.findall(body)))
    elif problem is not None:
        yield Note(f"feedparser found a problem in {what}: {_shorten(str(problem))}")
    if not entries:
        yield Note(f"{what} has no entries")
    if len(entries) > max_entries:
        yield Note(f"{what} has {len(entries):,} entries; read the first {max_entries:,}")
    for position, entry in enumerate(entries[:max_entries]):
        if position >= complete:
            yield SkippedEntry("entry cut off by a truncated feed", _describe(entry))
            continue
        try:
            yield _record(entry, mapping)
        except Exception as exc:  # one odd entry must not cost the rest of the feed
            yield SkippedEntry(f"could not read entry: {exc!r}", _describe(entry))


def _record(entry: Any, mapping: FeedMapping) -> PaperRecord | SkippedEntry:
    raw_title = entry.get("title")
    title = plain_text(raw_title, is_html=True) if isinstance(raw_title, str) else ""
    if not title:
        return SkippedEntry("no title", _describe(entry))

    found = _arxiv_id(entry, mapping.arxiv_id_fields)
    arxiv_id, version = found if found else (None, None)
    doi = None
    if mapping.doi_field:
        raw_doi = _text(entry.get(mapping.doi_field))
        doi = normalise_doi(raw_doi) if raw_doi else None
    guid = _text(entry.get("id"))
    link = _text(entry.get("link"))
    identity = canonical_id(arxiv_id=arxiv_id, doi=doi, fallback=guid or link)
    if identity is None:
        return SkippedEntry("no arXiv id, DOI, guid or link to identify it", title[:200])

    raw_abstract = _abstract(entry, mapping.abstract_field)
    labelled: dict[str, str] = {}
    if mapping.abstract_is_html:
        labelled = _labelled_fields(raw_abstract)
        label = next((label for label in _ABSTRACT_LABELS if label in labelled), None)
        abstract = _html_text(labelled[label] if label else raw_abstract)
    else:
        abstract = plain_text(raw_abstract) if raw_abstract else ""
    authors = _authors(entry, mapping.authors_field)
    if not authors and "authors" in labelled:
        authors = _split_names(_html_text(labelled["authors"]))

    links: dict[str, str] = {}
    safe_link = _http_url(link)
    if safe_link:
        links["link"] = safe_link
    if arxiv_id:
        links["abs"] = f"https://arxiv.org/abs/{arxiv_id}"
    if doi:
        links["doi"] = f"https://doi.org/{doi}"
    return PaperRecord(
        canonical_id=identity,
        title=title,
        abstract=abstract or None,
        authors=authors,
        author_count=len(authors) or None,
        categories=_categories(entry, mapping.category_field),
        links=links,
        published_on=_date(entry, mapping.date_field),
        version=version,
        doi=doi,
        upvotes=_count(labelled.get("upvotes")),
    )


def _arxiv_id(entry: Any, names: tuple[str, ...]) -> tuple[str, int | None] | None:
    for name in names:
        text = _text(entry.get(name))
        found = parse_arxiv_id(text) if text else None
        if found is not None:
            return found
    return None


def _text(value: object) -> str | None:
    """A field's text: feedparser gives strings, ``{"value": …}`` details, or lists of them."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("value")
        return inner if isinstance(inner, str) else None
    if isinstance(value, list):
        for part in value:
            text = _text(part)
            if text:
                return text
    return None


def _abstract(entry: Any, field_name: str) -> str | None:
    text = _text(entry.get(field_name))
    if text is None and field_name in ("summary", "content"):
        # Atom entries may carry only one of the two.
        text = _text(entry.get("content" if field_name == "summary" else "summary"))
    return text


def _labelled_fields(html: str | None) -> dict[str, str]:
    """``{"authors": …, "upvotes": …, "summary": …}`` from a description made of
    ``<p><b>Label:</b> value</p>`` paragraphs, when one of them is the abstract;
    empty otherwise. Values are still HTML."""
    if not html or "</" not in html:
        return {}
    found: dict[str, str] = {}
    for _, label, value in _LABELLED.findall(html):
        found.setdefault(normalise_space(label).lower(), value)
    return found if any(label in found for label in _ABSTRACT_LABELS) else {}


def _authors(entry: Any, field_name: str | None) -> tuple[str, ...]:
    if field_name is None:
        return ()
    if field_name in ("author", "authors"):
        # feedparser lists every author in "authors"; its "author" is only the last one.
        listed = entry.get("authors")
        names = [
            author["name"]
            for author in (listed if isinstance(listed, list) else [])
            if isinstance(author, Mapping) and isinstance(author.get("name"), str)
        ]
        if len(names) > 1:
            return _dedupe(plain_text(name, is_html=True) for name in names)
        value: object = names[0] if names else entry.get("author")
    else:
        value = entry.get(field_name)
    if isinstance(value, list):
        texts = (
            _text(part) or (part.get("name") if isinstance(part, Mapping) else None)
            for part in value
        )
        return _dedupe(plain_text(text, is_html=True) for text in texts if isinstance(text, str))
    text = _text(value)
    # One string may name several people: "A, B and C".
    return _split_names(plain_text(text, is_html=True)) if text else ()


def _split_names(text: str) -> tuple[str, ...]:
    """``"A, B and C"`` or ``"A; B"`` as names."""
    return _dedupe(_NAME_SEPARATORS.split(text))


def _categories(entry: Any, field_name: str | None) -> tuple[str, ...]:
    if field_name is None:
        return ()
    value = entry.get(field_name)
    if isinstance(value, str):
        return _dedupe(plain_text(part, is_html=True) for part in value.split(","))
    if not isinstance(value, list):
        return ()
    terms = (
        part.get("term") or part.get("label") or part.get("value")
        if isinstance(part, Mapping)
        else part
        for part in value
    )
    return _dedupe(plain_text(t, is_html=True) for t in terms if isinstance(t, str))


def _dedupe(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for value in values if (v := normalise_space(value))))


def _date(entry: Any, field_name: str) -> date | None:
    for name in dict.fromkeys((field_name, "updated")):
        parsed = entry.get(f"{name}_parsed")
        if isinstance(parsed, time.struct_time):
            try:
                return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
            except ValueError:
                pass
        raw = _text(entry.get(name))
        if raw and (from_text := _date_from_text(raw)):
            return from_text
    return None


def _date_from_text(raw: str) -> date | None:
    """A date feedparser did not parse (a custom field such as ``prism_publicationdate``)."""
    raw = raw.strip()
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(raw).date()
    except (TypeError, ValueError, IndexError):
        return None


def _html_text(html: str | None) -> str:
    return plain_text(html, is_html=True) if html else ""


def _count(html: str | None) -> int | None:
    if html is None:
        return None
    text = _html_text(html)
    return int(text) if text.isascii() and text.isdigit() else None


def _http_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL: no ``javascript:`` in a stored link."""
    if not url:
        return None
    url = url.strip()
    return url if url.lower().startswith(("https://", "http://")) and " " not in url else None


def _describe(entry: Any) -> str:
    for name in ("id", "link", "title"):
        text = _text(entry.get(name))
        if text and text.strip():
            return normalise_space(text)[:200]
    return ""


def _shorten(text: str, limit: int = 200) -> str:
    text = normalise_space(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
