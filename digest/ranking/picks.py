"""What a ranker hands the delivery path: the :class:`Pick` of a paper with its
reason, a reader's :class:`Selection`, and the :class:`Ranker` protocol.

Apart from the ranking itself so that delivery and mail depend on these few
types, not on how papers are scored.
"""

from __future__ import annotations

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


@dataclass
class Selection:
    picks: list[Pick]
    # Why the list is empty or is not personal, for logs and the delivery ledger.
    note: str = ""


class Ranker(Protocol):
    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> Selection: ...
