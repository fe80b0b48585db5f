"""Subscribers, their preferences and their feedback on papers."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.clock import utcnow
from digest.db.base import Base, UTCDateTime, enum_column
from digest.subscriptions.choices import (
    DEFAULT_FREQUENCY,
    DEFAULT_PAPERS_PER_DIGEST,
    DEFAULT_SEND_HOUR,
    DEFAULT_TIMEZONE,
    DEFAULT_WEEKLY_DAY,
    Frequency,
    SubscriberStatus,
)

if TYPE_CHECKING:
    from digest.delivery.models import Delivery


# Where a new reader's confirmation nonce starts (see Subscriber.confirm_nonce).
FIRST_CONFIRM_NONCE = 0
# Links signed before token versions started at random carry versions from 1 up;
# bumps never take a reader that far, so none of those links can match a newer reader.
_RANDOM_VERSIONS_FROM = 2**20
_RANDOM_VERSIONS_BELOW = 2**30


def first_token_version() -> int:
    """Where a new reader's link version starts: at random, so that a link names
    one reader for good. An id alone does not: SQLite hands a deleted reader's id
    to the next one, and restored or merged databases can repeat ids anywhere."""
    return _RANDOM_VERSIONS_FROM + secrets.randbelow(_RANDOM_VERSIONS_BELOW - _RANDOM_VERSIONS_FROM)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised by email-validator: lower-cased domain, IDNA, no display name.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        enum_column(SubscriberStatus, "subscriber_status"),
        default=SubscriberStatus.PENDING,
        index=True,
    )
    interests: Mapped[str] = mapped_column(Text, default="")
    followed_authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    # arXiv categories (cs.CL, stat.ML) whose papers this reader wants.
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    frequency: Mapped[Frequency] = mapped_column(
        enum_column(Frequency, "frequency"), default=DEFAULT_FREQUENCY
    )
    # 0 = Monday, as ``date.weekday()``; used only by weekly digests.
    weekly_day: Mapped[int] = mapped_column(default=DEFAULT_WEEKLY_DAY)
    send_hour: Mapped[int] = mapped_column(default=DEFAULT_SEND_HOUR)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE, index=True)
    papers_per_digest: Mapped[int] = mapped_column(default=DEFAULT_PAPERS_PER_DIGEST)
    # In every link; bumped to revoke every link signed for this subscriber so far.
    # Starts at random (first_token_version): with the id, it is the link's key.
    token_version: Mapped[int] = mapped_column(default=first_token_version)
    # In each confirmation link; bumped when one is used, so each works once.
    confirm_nonce: Mapped[int] = mapped_column(default=FIRST_CONFIRM_NONCE)
    # A new address waiting for its owner to confirm it; the old one stays until then.
    pending_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="subscriber")


class FeedbackKind(enum.StrEnum):
    MORE = "more"
    FEWER = "fewer"


class Feedback(Base):
    """A reader's "more like this" / "fewer like this" on a paper they were sent."""

    __tablename__ = "feedback"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[FeedbackKind] = mapped_column(enum_column(FeedbackKind, "feedback_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
