"""The delivery ledger: one row per reader and edition, and the papers it holds.

A delivery moves through the stages, each a Celery task of its own::

    queued ──rank──▶ ranked ──mail claims, with a lease──▶ sending ──▶ sent
       │                ▲                                    │
       └──▶ skipped     └──── transient SMTP error ──────────┤──▶ failed
                                                             └──▶ skipped

``ranked`` means the picks are stored (``delivery_papers``) and the email can be
composed from them without ranking again. A ``sending`` row is held by one mail
task until ``lease_expires_at``; a worker that dies mid-send leaves its rows to
be claimed again once the lease has expired.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.clock import utcnow
from digest.db.base import Base, UTCDateTime, enum_column

if TYPE_CHECKING:
    from digest.papers.models import Paper
    from digest.subscriptions.models import Subscriber


class DeliveryStatus(enum.StrEnum):
    # Claimed for a due reader; not ranked yet.
    QUEUED = "queued"
    # Picks stored; waiting for a mail task.
    RANKED = "ranked"
    # Held by a mail task until ``lease_expires_at``.
    SENDING = "sending"
    SENT = "sent"
    # Nothing was sent, on purpose: ``skip_reason`` says why.
    SKIPPED = "skipped"
    # Gave up: a permanent refusal, an unexpected error, or the edition got too old.
    FAILED = "failed"


# Still on its way: what a sweep looks after, and what `send-due` reports as left.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.RANKED, DeliveryStatus.SENDING)


class SkipReason(enum.StrEnum):
    """Why a digest was not sent, as a code for queries and metrics (``note`` says it in words)."""

    UNSUBSCRIBED = "unsubscribed"
    PAUSED = "paused"
    PENDING = "pending"
    BOUNCED = "bounced"
    NO_NEW_PAPERS = "no_new_papers"
    NOTHING_RELEVANT = "nothing_relevant"
    # Rows skipped before skip reasons had a column, with a note no code matched.
    OTHER = "other"


class Delivery(Base):
    """One digest for one subscriber and one edition (a local day or ISO week)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("subscriber_id", "edition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    # "2026-11-21" for a daily digest, "2026-W47" for a weekly one.
    edition: Mapped[str] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED, index=True
    )
    skip_reason: Mapped[SkipReason | None] = mapped_column(
        enum_column(SkipReason, "delivery_skip_reason")
    )
    # In words, for a person: why it was skipped, or what the ranking noted about a
    # digest that was sent (the overall trending list instead of a personal one).
    note: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    # Claims by a mail task (each is an attempt to send).
    attempts: Mapped[int] = mapped_column(default=0)
    # The last send error; never a skip reason.
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the row's next stage task was published or is due (a retry's back-off);
    # a queued or ranked row well past it lost its task and is published again.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set with ``sending``: until then one mail task holds the row. The value is
    # also that task's token (each claim sets a later one), so a task whose lease
    # was taken over writes nothing.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subscriber: Mapped[Subscriber] = relationship(back_populates="deliveries")
    papers: Mapped[list[DeliveryPaper]] = relationship(
        back_populates="delivery",
        cascade="all, delete-orphan",
        order_by="DeliveryPaper.position",
        passive_deletes=True,
    )

    @property
    def paper_ids(self) -> list[int]:
        return [p.paper_id for p in self.papers]


class DeliveryPaper(Base):
    """A paper placed in a delivery; what makes "never send a paper twice" a query."""

    __tablename__ = "delivery_papers"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int]
    reason: Mapped[str] = mapped_column(Text, default="")

    delivery: Mapped[Delivery] = relationship(back_populates="papers")
    paper: Mapped[Paper] = relationship()


class EditionTrending(Base):
    """An edition's most trending papers, chosen once, when its first reader is ranked:
    the "Trending today" section every digest of the edition ends with (less the
    reader's own picks). Apart from ``delivery_papers``: these papers are shown to
    everyone, not picked for anyone, and do not count as sent."""

    __tablename__ = "edition_trending"

    edition: Mapped[str] = mapped_column(String(16), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
