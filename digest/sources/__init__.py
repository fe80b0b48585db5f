"""Where papers come from. Every source yields :class:`PaperRecord` values.

A source knows how to fetch and parse; storing, deduplicating and counting is
:mod:`digest.papers`' job, so every source is stored the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PaperRecord:
    canonical_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    categories: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    published_on: date | None = None
    # Popularity as the source reported it at fetch time; None when unknown.
    upvotes: int | None = None
    comments: int | None = None
    github_stars: int | None = None


class Source(Protocol):
    name: str

    def fetch(self) -> Iterator[PaperRecord]:
        """Yield the source's current papers; raise on a source-wide failure."""
        ...


class SourceError(Exception):
    """The source as a whole could not be read (unreachable, malformed, error feed)."""
