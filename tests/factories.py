"""Factories for the domain's rows; each returns a flushed object."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from digest.papers.models import Paper, PopularitySignal
from digest.subscriptions.choices import Frequency, SubscriberStatus
from digest.subscriptions.models import Subscriber
from digest.subscriptions.subscribers import Notice

NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
_sequence = itertools.count(1)


def make_paper(session: Session, *, upvotes: int | None = None, **fields: Any) -> Paper:
    n = next(_sequence)
    values: dict[str, Any] = {
        "canonical_id": f"arxiv:2611.{n:05d}",
        "title": f"Paper number {n}",
        "abstract": f"An abstract about topic {n}.",
        "authors": ["Ada Lovelace"],
        "links": {"abs": f"https://arxiv.org/abs/2611.{n:05d}"},
        "published_on": date(2026, 11, 20),
        "source": "test",
        "first_seen_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    paper = Paper(**values)
    session.add(paper)
    session.flush()
    if upvotes is not None:
        session.add(
            PopularitySignal(paper_id=paper.id, source="test", observed_at=NOW, upvotes=upvotes)
        )
        session.flush()
    return paper


def make_subscriber(session: Session, **fields: Any) -> Subscriber:
    n = next(_sequence)
    values: dict[str, Any] = {
        "email": f"reader{n}@example.org",
        "status": SubscriberStatus.ACTIVE,
        "frequency": Frequency.DAILY,
        "send_hour": 7,
        "timezone": "UTC",
        "papers_per_digest": 3,
        "created_at": NOW,
        "confirmed_at": NOW,
    }
    values.update(fields)
    subscriber = Subscriber(**values)
    session.add(subscriber)
    session.flush()
    return subscriber


def make_subscriber_for_notice(session: Session, notice: Notice) -> Subscriber:
    """A reader in the state a notice is sent in: pending for a confirmation, with an
    address change waiting for its confirmation, active for the others."""
    if notice == Notice.CONFIRM:
        return make_subscriber(session, status=SubscriberStatus.PENDING, confirmed_at=None)
    if notice == Notice.CONFIRM_EMAIL_CHANGE:
        return make_subscriber(session, pending_email="new-address@example.org")
    return make_subscriber(session)
