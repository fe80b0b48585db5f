"""Readers' "more like this" / "fewer like this" from the papers in their digests.

Feedback is one row per reader and paper (the latest click wins); the ranker
reads it into the reader's profile (:func:`digest.ranking.profile_of`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.models import Feedback, FeedbackKind, Paper, Subscriber


class UnknownPaper(LookupError):
    """The paper of a feedback link no longer exists."""


def parse_kind(value: str | None) -> FeedbackKind | None:
    try:
        return FeedbackKind(value or "")
    except ValueError:
        return None


def record_feedback(
    session: Session, subscriber: Subscriber, paper_id: int, kind: FeedbackKind, *, now: datetime
) -> Paper:
    """Remember the reader's wish about this paper; a second click replaces the first."""
    paper = session.get(Paper, paper_id)
    if paper is None:
        raise UnknownPaper(paper_id)
    existing = session.get(Feedback, (subscriber.id, paper_id))
    if existing is None:
        session.add(
            Feedback(subscriber_id=subscriber.id, paper_id=paper_id, kind=kind, created_at=now)
        )
    else:
        existing.kind = kind
        existing.created_at = now
    session.flush()
    return paper


def withdraw_feedback(session: Session, subscriber: Subscriber, paper_id: int) -> None:
    existing = session.get(Feedback, (subscriber.id, paper_id))
    if existing is not None:
        session.delete(existing)
        session.flush()


def feedback_of(session: Session, subscriber: Subscriber) -> list[tuple[Paper, Feedback]]:
    return [
        (paper, feedback)
        for paper, feedback in session.execute(
            select(Paper, Feedback)
            .join(Feedback, Feedback.paper_id == Paper.id)
            .where(Feedback.subscriber_id == subscriber.id)
            .order_by(Feedback.created_at, Paper.id)
        )
    ]
