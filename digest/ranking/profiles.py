"""Readers as the ranker sees them: what they asked for, and what they already got.

A :class:`Profile` is built from a subscriber (preferences plus "more / fewer like
this") or typed into ``digest preview``; the papers a reader was already sent are
read beside it, since "never twice" is checked against them. Both are read for a
whole batch of readers, one query per chunk of ids. A profile is what the rest of
this package takes as a reader; nothing here scores anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db.limits import IN_LIST_CHUNK
from digest.delivery.models import Delivery, DeliveryPaper, DeliveryStatus
from digest.ranking.lexical import split_phrases, stems
from digest.subscriptions.models import Feedback, FeedbackKind, Subscriber


@dataclass(frozen=True)
class Profile:
    """What a reader asked for; built from a subscriber or typed into ``digest preview``."""

    interests: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    # Paper ids the reader asked more / fewer of from a digest.
    more_like: tuple[int, ...] = ()
    fewer_like: tuple[int, ...] = ()
    limit: int = 5

    @cached_property
    def phrases(self) -> list[str]:
        # "none", "-", "n/a": phrases with no word to match are not interests.
        return [p for p in split_phrases(self.interests) if any(len(w) > 1 for w in stems(p))]

    @property
    def personal(self) -> bool:
        """Whether the reader said what they want (otherwise: the overall trending list,
        reordered by their "more / fewer like this")."""
        return bool(self.phrases or self.authors or self.categories)


def profile_of(session: Session, subscriber: Subscriber) -> Profile:
    [profile] = profiles_of(session, [subscriber])
    return profile


def profiles_of(session: Session, subscribers: Sequence[Subscriber]) -> list[Profile]:
    """Readers' profiles: their preferences and their "more / fewer like this"."""
    feedback: dict[int, list[tuple[int, FeedbackKind]]] = {s.id: [] for s in subscribers}
    ids = list(feedback)
    for offset in range(0, len(ids), IN_LIST_CHUNK):
        for subscriber_id, paper_id, kind in session.execute(
            select(Feedback.subscriber_id, Feedback.paper_id, Feedback.kind)
            .where(Feedback.subscriber_id.in_(ids[offset : offset + IN_LIST_CHUNK]))
            .order_by(Feedback.created_at, Feedback.paper_id)
        ):
            feedback[subscriber_id].append((paper_id, kind))
    return [
        Profile(
            interests=s.interests,
            authors=tuple(s.followed_authors),
            categories=tuple(s.categories),
            excluded=tuple(s.excluded_keywords),
            more_like=tuple(p for p, k in feedback[s.id] if k == FeedbackKind.MORE),
            fewer_like=tuple(p for p, k in feedback[s.id] if k == FeedbackKind.FEWER),
            limit=s.papers_per_digest,
        )
        for s in subscribers
    ]


def sent_paper_ids(session: Session, subscriber_id: int) -> set[int]:
    return sent_paper_ids_of(session, [subscriber_id]).get(subscriber_id, set())


def sent_paper_ids_of(session: Session, subscriber_ids: Sequence[int]) -> dict[int, set[int]]:
    """The papers each reader was already sent (what "never twice" is checked against)."""
    sent: dict[int, set[int]] = {}
    ids = list(subscriber_ids)
    for offset in range(0, len(ids), IN_LIST_CHUNK):
        for subscriber_id, paper_id in session.execute(
            select(Delivery.subscriber_id, DeliveryPaper.paper_id)
            .join(Delivery, Delivery.id == DeliveryPaper.delivery_id)
            .where(
                Delivery.subscriber_id.in_(ids[offset : offset + IN_LIST_CHUNK]),
                # Ranked and sending digests are on their way: their papers count.
                Delivery.status.in_(
                    (DeliveryStatus.SENT, DeliveryStatus.RANKED, DeliveryStatus.SENDING)
                ),
            )
        ):
            sent.setdefault(subscriber_id, set()).add(paper_id)
    return sent
