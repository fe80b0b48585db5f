"""The delivery ledger: one row per reader and edition, and the papers it holds."""

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
    QUEUED = "queued"
    SENT = "sent"
    # Nothing was sent, on purpose: see ``last_error`` for the reason.
    SKIPPED = "skipped"
    # Gave up after a permanent error or too many attempts.
    FAILED = "failed"


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
    message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a queued delivery should be (re)tried; a queued row long past it lost
    # its task (broker down at publish time, lost retry) and is published again.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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
