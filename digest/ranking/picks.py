"""What a ranker hands the delivery path: the :class:`Pick` of a paper with its
reason, a reader's :class:`Selection`, and the :class:`Ranker` protocol.

Apart from the ranking itself so that delivery and mail depend on these few
types, not on how papers are scored.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from digest.papers.models import Paper
from digest.subscriptions.models import Subscriber


@dataclass(frozen=True)
class Pick:
    paper: Paper
    reason: str
    upvotes: int | None
    score: float = 0.0
    relevance: float | None = None


class Empty(enum.StrEnum):
    """Why a selection has no picks, as a code (the note says it in words)."""

    NO_NEW_PAPERS = "no_new_papers"
    NOTHING_RELEVANT = "nothing_relevant"


@dataclass
class Selection:
    picks: list[Pick]
    # Why the list is empty or is not personal, for logs and the delivery ledger.
    note: str = ""
    # Set when ``picks`` is empty.
    empty: Empty | None = None


class Ranker(Protocol):
    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection: ...

    def pick_many(
        self, session: Session, subscribers: Sequence[Subscriber], *, now: datetime
    ) -> list[Selection]:
        """Selections for many readers ranked together, in ``subscribers`` order."""

    def trending(self, session: Session, *, now: datetime) -> list[Pick]:
        """The moment's most trending papers for the "Trending today" section, best
        first: more than it shows, so that it can leave out each reader's own picks
        (empty when the section is off)."""
