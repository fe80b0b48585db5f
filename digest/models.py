"""The data model: papers and their popularity over time, subscribers, deliveries."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.db import Base, UTCDateTime, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as VARCHAR + CHECK so that the same migration runs on SQLite and
    # PostgreSQL, and adding a state later is a plain constraint change.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class Frequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    # Nothing was sent, on purpose: see ``last_error`` for the reason.
    SKIPPED = "skipped"
    # Gave up after a permanent error or too many attempts.
    FAILED = "failed"


class Paper(Base):
    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "arxiv:2401.01234", "doi:10.1000/x", "seed:<hash>" ...: one row per work.
    canonical_id: Mapped[str] = mapped_column(String(200), unique=True)
    # As the source wrote them (plain text, LaTeX raw) ...
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    # ... and converted once, at ingest, for reading (LaTeX to Unicode); empty when
    # the conversion changes nothing. Read them through ``shown_title``/``shown_abstract``.
    display_title: Mapped[str] = mapped_column(Text, default="", server_default="")
    display_abstract: Mapped[str] = mapped_column(Text, default="", server_default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Some listings give only a count of authors, not their names.
    author_count: Mapped[int | None] = mapped_column(Integer)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    links: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    published_on: Mapped[date | None]
    # arXiv version; a record with a lower one never overwrites a higher one.
    version: Mapped[int | None]
    doi: Mapped[str | None] = mapped_column(String(255))
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    ai_summary: Mapped[str | None] = mapped_column(Text)
    # When Hugging Face featured it on Daily Papers.
    featured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The source that first stored it; ``paper_sources`` lists every source since.
    source: Mapped[str] = mapped_column(String(50))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    signals: Mapped[list[PopularitySignal]] = relationship(
        back_populates="paper", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def shown_title(self) -> str:
        return self.display_title or self.title

    @property
    def shown_abstract(self) -> str:
        return self.display_abstract or self.abstract

    @property
    def url(self) -> str:
        for key in ("abs", "hf", "link", "doi", "html", "arxiv_search"):
            if key in self.links:
                return self.links[key]
        return next(iter(self.links.values()), "")


class PaperSource(Base):
    """A source that has reported a paper, and a fingerprint of what it said last.

    Re-ingesting an entry whose fingerprint is unchanged costs one lookup and no
    write, which is what makes a no-change re-ingest cheap.
    """

    __tablename__ = "paper_sources"

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(50), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IngestRun(Base):
    """One run of one source: when, what it counted, and how it ended."""

    __tablename__ = "ingest_runs"
    __table_args__ = (Index("ix_ingest_runs_source_started", "source", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    new: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    signals: Mapped[int] = mapped_column(default=0)
    # Skip reasons with their counts, and notes ("not modified", ids arXiv dropped).
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class FeedState(Base):
    """Conditional-GET validators of a fetched URL, kept for the next fetch."""

    __tablename__ = "feed_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    body_digest: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PopularitySignal(Base):
    """What a source said about a paper's popularity at one moment."""

    __tablename__ = "popularity_signals"
    __table_args__ = (Index("ix_popularity_signals_paper_observed", "paper_id", "observed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(50))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    upvotes: Mapped[int | None]
    comments: Mapped[int | None]
    github_stars: Mapped[int | None]

    paper: Mapped[Paper] = relationship(back_populates="signals")


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised by email-validator: lower-cased domain, IDNA, no display name.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.PENDING, index=True
    )
    interests: Mapped[str] = mapped_column(Text, default="")
    followed_authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    # arXiv categories (cs.CL, stat.ML) whose papers this reader wants.
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    frequency: Mapped[Frequency] = mapped_column(
        _enum(Frequency, "frequency"), default=Frequency.DAILY
    )
    # 0 = Monday, as ``date.weekday()``; used only by weekly digests.
    weekly_day: Mapped[int] = mapped_column(default=0)
    send_hour: Mapped[int] = mapped_column(default=7)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", index=True)
    papers_per_digest: Mapped[int] = mapped_column(default=5)
    # Bumped to revoke every link signed for this subscriber so far.
    token_version: Mapped[int] = mapped_column(default=1)
    # In each confirmation link; bumped when one is used, so each works once.
    confirm_nonce: Mapped[int] = mapped_column(default=0)
    # A new address waiting for its owner to confirm it; the old one stays until then.
    pending_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="subscriber")


class Delivery(Base):
    """One digest for one subscriber and one edition (a local day or ISO week)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("subscriber_id", "edition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    # "2026-11-21" for a daily digest, "2026-W47" for a weekly one.
    edition: Mapped[str] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.QUEUED, index=True
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


class PaperEmbedding(Base):
    """A paper's sentence embedding under one model, computed once (float32 bytes)."""

    __tablename__ = "paper_embeddings"

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


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
    kind: Mapped[FeedbackKind] = mapped_column(_enum(FeedbackKind, "feedback_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
