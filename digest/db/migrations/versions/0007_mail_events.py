"""mail events: bounces and complaints, with the delivery and reader they are about

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "hard_bounce",
                "soft_bounce",
                "complaint",
                name="mail_event_kind",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_mail_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_mail_events_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_events")),
    )
    op.create_index(
        op.f("ix_mail_events_delivery_id"), "mail_events", ["delivery_id"], unique=False
    )
    op.create_index(op.f("ix_mail_events_message_id"), "mail_events", ["message_id"], unique=False)
    op.create_index(
        op.f("ix_mail_events_occurred_at"), "mail_events", ["occurred_at"], unique=False
    )
    op.create_index(
        "ix_mail_events_subscriber_occurred",
        "mail_events",
        ["subscriber_id", "occurred_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mail_events_subscriber_occurred", table_name="mail_events")
    op.drop_index(op.f("ix_mail_events_occurred_at"), table_name="mail_events")
    op.drop_index(op.f("ix_mail_events_message_id"), table_name="mail_events")
    op.drop_index(op.f("ix_mail_events_delivery_id"), table_name="mail_events")
    op.drop_table("mail_events")
