"""edition_trending: each edition's "Trending today" papers, chosen once

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edition_trending",
        sa.Column("edition", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("edition", "position"),
    )
    op.create_index("ix_edition_trending_paper_id", "edition_trending", ["paper_id"])


def downgrade() -> None:
    op.drop_index("ix_edition_trending_paper_id", table_name="edition_trending")
    op.drop_table("edition_trending")
