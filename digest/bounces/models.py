"""The mail events we were told about, one row each: the evidence behind a bounce."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from digest.bounces.events import EventKind
from digest.clock import utcnow
from digest.db.base import Base, UTCDateTime, enum_column


class MailEventRecord(Base):
    """A stored :class:`digest.bounces.events.MailEvent`."""

    __tablename__ = "mail_events"
    # The policy counts a reader's soft bounces in a window of days.
    __table_args__ = (Index("ix_mail_events_subscriber_occurred", "subscriber_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Erasing a reader erases what we were told about them.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    # A delivery may go (pruned) while the evidence that bounced its reader stays.
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind, "mail_event_kind"))
    source: Mapped[str] = mapped_column(String(32))
    # RFC 3463 enhanced status code ("5.1.1"), when one was given.
    status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # When the receiving side says it happened; what the policy's window and
    # `digest status` count by.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
