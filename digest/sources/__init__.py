"""Where papers come from. Every source yields :class:`PaperRecord` values.

A source knows how to fetch and parse; normalising for display, storing,
merging and counting is :mod:`digest.papers`' job, so every source is stored the
same way. A record says only what its source knows: ``None`` (or an empty
collection) means "this source does not say", never "erase what is stored", so
a Hugging Face record and an arXiv record of the same work merge.
"""

from __future__ import annotations

from collections.abc import Iterator
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
class SkippedEntry:
    """An entry a source could not turn into a paper, and why (logged, counted)."""

    reason: str
    entry: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth telling the operator that is not an error
    ("not modified since the last fetch", "arXiv returned no entry for 2401.99999")."""

    text: str


Item = PaperRecord | SkippedEntry | Note


class Source(Protocol):
    name: str

    def fetch(self) -> Iterator[Item]:
        """Yield papers, skipped entries and notes; raise :class:`SourceError` when
        the source as a whole cannot be read."""
        ...


class SourceError(Exception):
    """The source as a whole could not be read (unreachable, malformed, error feed)."""
