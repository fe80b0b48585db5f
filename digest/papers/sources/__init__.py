"""Where papers come from. Every source yields :class:`PaperRecord` values.

A source knows how to fetch and parse; normalising for display, storing,
merging and counting is :mod:`digest.papers`' job, so every source is stored the
same way. A record says only what its source knows: ``None`` (or an empty
collection) means "this source does not say", never "erase what is stored", so
a Hugging Face record and an arXiv record of the same work merge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PaperRecord:
    canonical_id: str
    # Whitespace-normalised and free of HTML, LaTeX kept raw as the source wrote it.
    title: str
    abstract: str | None = None
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    categories: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    published_on: date | None = None
    # arXiv version number (the N of vN); a lower one never overwrites a higher one.
    version: int | None = None
    doi: str | None = None
    keywords: tuple[str, ...] = ()
    ai_summary: str | None = None
    # When Hugging Face featured the paper on its Daily Papers page.
    featured_at: datetime | None = None
    # Popularity as the source reported it at fetch time; None when unknown.
    upvotes: int | None = None
    comments: int | None = None
    github_stars: int | None = None


@dataclass(frozen=True, slots=True)
class DeferredRecord:
    """A paper known so far by its id and a fingerprint of the entry as the feed wrote it.

    Normalising an entry (markup, authors, LaTeX) is most of what an ingest costs.
    The store completes a deferred record only when this source has not given it
    this exact entry before, so re-reading an unchanged listing costs little more
    than parsing its XML. Only for entries without popularity figures: those are
    observed on every fetch, so their records are never skipped.
    """

    canonical_id: str
    fingerprint: str
    complete: Callable[[], PaperRecord]


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An entry a source could not turn into a paper, and why (logged, counted)."""

    reason: str
    entry: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth telling the operator that is not an error
    ("not modified since the last fetch", "arXiv returned no entry for 2401.99999")."""

    text: str


Item = PaperRecord | DeferredRecord | SkippedEntry | Note


class Source(Protocol):
    name: str

    def fetch(self) -> Iterator[Item]:
        """Yield papers, skipped entries and notes; raise :class:`SourceError` when
        the source as a whole cannot be read."""
        ...


class SourceError(Exception):
    """The source as a whole could not be read (unreachable, malformed, error feed)."""
