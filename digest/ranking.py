"""Choosing papers for a reader.

The ranker is one replaceable stage: it receives a session, a subscriber and the
time, and returns ordered picks with a human reason each. It never proposes a
paper the reader has already been sent.

This first ranker is deliberately simple: papers first seen within the candidate
window, minus any that mention a keyword the reader excluded; those matching more
of the reader's interests, followed authors and categories first, then the most
upvoted, then the most recently published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.models import (
    Delivery,
    DeliveryPaper,
    DeliveryStatus,
    Paper,
    PopularitySignal,
    Subscriber,
)


@dataclass(frozen=True)
class Pick:
    paper: Paper
    reason: str
    upvotes: int | None


class Ranker(Protocol):
    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> list[Pick]: ...


def interest_terms(interests: str) -> list[str]:
    """Interests as typed in the form: comma, semicolon or newline separated phrases."""
    terms = (t.strip().casefold() for t in re.split(r"[,;\n]", interests))
    return list(dict.fromkeys(t for t in terms if t))


def already_sent_paper_ids(subscriber_id: int):  # type: ignore[no-untyped-def]
    return (
        select(DeliveryPaper.paper_id)
        .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT)
    )


class PopularityRanker:
    def __init__(self, *, window: timedelta) -> None:
        self.window = window

    def pick(self, session: Session, subscriber: Subscriber, *, now: datetime) -> list[Pick]:
        latest_upvotes = (
            select(func.max(PopularitySignal.upvotes))
            .where(PopularitySignal.paper_id == Paper.id)
            .correlate(Paper)
            .scalar_subquery()
        )
        rows = session.execute(
            select(Paper, latest_upvotes.label("upvotes")).where(
                Paper.first_seen_at >= now - self.window,
                Paper.id.not_in(already_sent_paper_ids(subscriber.id)),
            )
        ).all()
        terms = interest_terms(subscriber.interests)
        excluded = [k.casefold() for k in subscriber.excluded_keywords]
        authors = {a.casefold() for a in subscriber.followed_authors}
        categories = set(subscriber.categories)

        scored = []
        for paper, upvotes in rows:
            text = f"{paper.title}\n{paper.abstract}".casefold()
            if any(_contains_phrase(text, keyword) for keyword in excluded):
                continue
            matched = [t for t in terms if _contains_phrase(text, t)]
            matched += [f"by {name}" for name in paper.authors if name.casefold() in authors]
            matched += [f"in {c}" for c in paper.categories if c in categories]
            scored.append((paper, upvotes, matched))
        scored.sort(
            key=lambda item: (
                -len(item[2]),
                -(item[1] or 0),
                -(item[0].published_on.toordinal() if item[0].published_on else 0),
                item[0].id,
            )
        )
        return [
            Pick(paper=paper, upvotes=upvotes, reason=_reason(matched, upvotes))
            for paper, upvotes, matched in scored[: subscriber.papers_per_digest]
        ]


def _contains_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _reason(matched: list[str], upvotes: int | None) -> str:
    parts = []
    if matched:
        parts.append("matches: " + ", ".join(matched))
    if upvotes:
        parts.append(f"{upvotes} upvote" + ("" if upvotes == 1 else "s"))
    return " · ".join(parts) or "new this week"
