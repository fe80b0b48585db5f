"""Readers' "more like this" / "fewer like this" from the papers in their digests.

Feedback is one row per reader and paper (the latest click wins); the ranker
reads it into the reader's profile (:func:`digest.ranking.profiles.profile_of`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from digest.db.dialects import backend_insert
from digest.papers.models import Paper
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber


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
    # One statement, not read-then-insert: a double click sends two requests at once,
    # and the second would otherwise fail on the row the first is inserting.
    statement = backend_insert(session, Feedback).values(
        subscriber_id=subscriber.id, paper_id=paper_id, kind=kind, created_at=now
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[Feedback.subscriber_id, Feedback.paper_id],
        set_={"kind": statement.excluded.kind, "created_at": statement.excluded.created_at},
    ).returning(Feedback)
    # Read back so that a Feedback already loaded in this session shows the new choice.
    session.scalars(upsert, execution_options={"populate_existing": True}).one()
    return paper


def withdraw_feedback(session: Session, subscriber: Subscriber, paper_id: int) -> None:
    # Idempotent: undo pressed twice deletes once, without a "0 rows deleted" warning.
    session.execute(
        delete(Feedback).where(
            Feedback.subscriber_id == subscriber.id, Feedback.paper_id == paper_id
        ),
        execution_options={"synchronize_session": "fetch"},
    )


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
