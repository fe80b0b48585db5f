"""real sources: display text, versions, provenance, ingest runs, feed validators

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("display_title", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("display_abstract", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("doi", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("keywords", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("ai_summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("featured_at", sa.DateTime(timezone=True), nullable=True))
    # Papers stored before this revision are shown as they were stored (empty
    # display text means "the same as stored").
    op.execute("UPDATE papers SET keywords = '[]'")
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.alter_column("keywords", existing_type=sa.JSON(), nullable=False)

    op.create_table(
        "paper_sources",
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            name=op.f("fk_paper_sources_paper_id_papers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("paper_id", "source", name=op.f("pk_paper_sources")),
    )
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_runs")),
    )
    op.create_index(
        "ix_ingest_runs_source_started", "ingest_runs", ["source", "started_at"], unique=False
    )
    op.create_table(
        "feed_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_states")),
        sa.UniqueConstraint("url", name=op.f("uq_feed_states_url")),
    )


def downgrade() -> None:
    op.drop_table("feed_states")
    op.drop_index("ix_ingest_runs_source_started", table_name="ingest_runs")
    op.drop_table("ingest_runs")
    op.drop_table("paper_sources")
    with op.batch_alter_table("papers", schema=None) as batch_op:
        for column in (
            "featured_at",
            "ai_summary",
            "keywords",
            "doi",
            "version",
            "display_abstract",
            "display_title",
        ):
            batch_op.drop_column(column)
