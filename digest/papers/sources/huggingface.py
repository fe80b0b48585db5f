"""Hugging Face Daily Papers: the papers the community featured and upvoted each day.

``GET https://huggingface.co/api/daily_papers?date=YYYY-MM-DD&p=<page>&limit=<n>``
answers with a JSON array of listing items. Each item wraps a ``paper`` object that
carries what we keep (its ``id`` is the arXiv id); only ``numComments`` lives on the
item itself. Every field beyond the id and title is optional and may be absent or
``null`` (whole days come without ``ai_summary``/``ai_keywords``), so every one is
read defensively: a value of the wrong type is "unknown", never an error.

Each record carries the popularity HF reports at fetch time; the storage layer turns
those into observations over time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from digest.papers.identifiers import arxiv_canonical_id, parse_arxiv_id
from digest.papers.sources import Item, Note, PaperRecord, SkippedEntry, SourceError
from digest.papers.sources.http import Fetcher, HttpStatusError
from digest.papers.text import normalise_space, plain_text

DAILY_PAPERS_URL = "https://huggingface.co/api/daily_papers"
PAPER_PAGE_URL = "https://huggingface.co/papers/{id}"
ARXIV_ABS_URL = "https://arxiv.org/abs/{id}"
# How much of an unusable item to keep in a SkippedEntry for the log.
_ENTRY_EXCERPT = 300


def _utc_today() -> date:
    return datetime.now(UTC).date()


class HuggingFaceSource:
    def __init__(
        self,
        *,
        fetcher: Fetcher,
        name: str = "huggingface",
        days: int = 2,
        page_size: int = 100,
        max_pages: int = 10,
        base_url: str = DAILY_PAPERS_URL,
        today: Callable[[], date] = _utc_today,
    ) -> None:
        if days < 1 or page_size < 1 or max_pages < 1:
            raise ValueError("days, page_size and max_pages must each be at least 1")
        self.fetcher = fetcher
        self.name = name
        self.days = days
        self.page_size = page_size
        self.max_pages = max_pages
        self.base_url = base_url
        self._today = today

    def fetch(self) -> Iterator[Item]:
        """Today's listing first, then each earlier day, page by page."""
        today = self._today()
        for offset in range(self.days):
            yield from self._fetch_day(today - timedelta(days=offset))

    def _fetch_day(self, day: date) -> Iterator[Item]:
        for page in range(self.max_pages):
            items = self._get_page(day, page)
            if items is None:
                # Conditional GET: this page is as it was last time, so its papers
                # (and their popularity) are already stored.
                yield Note(f"Daily Papers for {day} (page {page}) not modified since last fetch")
                return
            if page == 0 and not items:
                yield Note(f"Daily Papers lists no papers for {day}")
            for item in items:
                yield parse_item(item)
            if len(items) < self.page_size:
                return
        yield Note(
            f"Daily Papers for {day}: stopped after {self.max_pages} pages of "
            f"{self.page_size}; more papers may be listed"
        )

    def _get_page(self, day: date, page: int) -> list[Any] | None:
        params: dict[str, str | int] = {
            "date": day.isoformat(),
            "p": page,
            "limit": self.page_size,
        }
        try:
            response = self.fetcher.get(self.base_url, params=params)
        except HttpStatusError as exc:
            # HF explains a refused request in a JSON body: {"error": "..."}.
            message = _error_message(exc.body)
            if message:
                raise SourceError(f"{exc}: {message}") from exc
            raise
        if response is None:
            return None
        try:
            data = json.loads(response.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SourceError(f"{response.url} did not answer with JSON: {exc}") from exc
        if isinstance(data, dict) and (message := _error_message(data)):
            raise SourceError(f"Hugging Face refused {response.url}: {message}")
        if not isinstance(data, list):
            kind = "object" if isinstance(data, dict) else type(data).__name__
            raise SourceError(
                f"{response.url} answered with a JSON {kind}, not the array of papers expected"
            )
        return data


def parse_item(item: object) -> PaperRecord | SkippedEntry:
    """One Daily Papers listing item as a record, or why it cannot be one."""
    if not isinstance(item, dict):
        return SkippedEntry("listing item is not a JSON object", _excerpt(item))
    paper = item.get("paper")
    if not isinstance(paper, dict):
        return SkippedEntry("listing item has no 'paper' object", _excerpt(item))
    raw_id = paper.get("id")
    parsed = parse_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    if parsed is None:
        return SkippedEntry(f"paper id {raw_id!r} is not an arXiv id", _excerpt(item))
    arxiv_id = parsed[0]
    title = _text(paper.get("title")) or _text(item.get("title"))
    if title is None:
        return SkippedEntry(f"paper {arxiv_id} has no title", _excerpt(item))

    authors, author_count = _authors(paper.get("authors"))
    keywords = paper.get("ai_keywords")
    links = {
        "hf": PAPER_PAGE_URL.format(id=arxiv_id),
        "abs": ARXIV_ABS_URL.format(id=arxiv_id),
    }
    for key, field in (("github", "githubRepo"), ("project", "projectPage")):
        if url := _web_url(paper.get(field)):
            links[key] = url
    published = _timestamp(paper.get("publishedAt"))
    return PaperRecord(
        canonical_id=arxiv_canonical_id(arxiv_id),
        title=title,
        abstract=_text(paper.get("summary")) or _text(item.get("summary")),
        authors=authors,
        author_count=author_count,
        links=links,
        published_on=published.date() if published else None,
        keywords=tuple(
            normalise_space(keyword)
            for keyword in (keywords if isinstance(keywords, list) else ())
            if isinstance(keyword, str) and keyword.strip()
        ),
        ai_summary=_text(paper.get("ai_summary")),
        featured_at=_timestamp(paper.get("submittedOnDailyAt")),
        upvotes=_count(paper.get("upvotes")),
        comments=_count(item.get("numComments")),
        github_stars=_count(paper.get("githubStars")),
    )


def _authors(value: object) -> tuple[tuple[str, ...], int | None]:
    """Author names in byline order, and how many authors HF lists.

    Authors marked ``hidden`` are kept: the flag hides the paper from that user's
    HF profile, it does not remove them from the paper's byline.
    """
    if not isinstance(value, list) or not value:
        return (), None
    names = tuple(
        name for author in value if isinstance(author, dict) and (name := _text(author.get("name")))
    )
    return names, len(value)


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return plain_text(value) or None


def _count(value: object) -> int | None:
    # bool is an int in Python; JSON true is not a count.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from HF's ``2026-06-12T00:00:00.000Z``; None when unusable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _web_url(value: object) -> str | None:
    """An http(s) URL, or None: these links end up in email and on the web page."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if url.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in url):
        return url
    return None


def _error_message(body: object) -> str | None:
    """The message of an HF error object (``{"error": "..."}``), from bytes or parsed JSON."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str) and error.strip():
            return normalise_space(error)
    return None


def _excerpt(item: object) -> str:
    """What identifies an unusable item in the log: its id and title, else its JSON."""
    if isinstance(item, dict):
        paper = item.get("paper")
        paper = paper if isinstance(paper, dict) else {}
        title = paper.get("title") or item.get("title")
        named = [
            normalise_space(str(value))
            for value in (paper.get("id"), title)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value)
        ]
        if named:
            return ": ".join(named)[:_ENTRY_EXCERPT]
    try:
        text = json.dumps(item, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(item)
    return text[:_ENTRY_EXCERPT]
