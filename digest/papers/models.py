"""Papers, the sources that reported them and their popularity over time."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.clock import utcnow
from digest.db.base import Base, UTCDateTime


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


class PaperEmbedding(Base):
    """A paper's sentence embedding under one model, computed once (float32 bytes)."""

    __tablename__ = "paper_embeddings"

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
