"""subscriber preferences: followed authors, categories, excluded keywords; single-use
confirmation links; address change awaiting confirmation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        for name in ("followed_authors", "categories", "excluded_keywords"):
            batch_op.add_column(sa.Column(name, sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("confirm_nonce", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        for name in (
            "pending_email",
            "confirm_nonce",
            "excluded_keywords",
            "categories",
            "followed_authors",
        ):
            batch_op.drop_column(name)
