"""delivery stages: ranked and sending states, a lease, skip reasons in their own column

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("queued", "sent", "skipped", "failed")
NEW_STATUSES = ("queued", "ranked", "sending", "sent", "skipped", "failed")
SKIP_REASONS = (
    "unsubscribed",
    "paused",
    "pending",
    "bounced",
    "no_new_papers",
    "nothing_relevant",
    "other",
)
# What the ledger wrote into last_error when it skipped, before this revision.
OLD_SKIP_NOTES = {
    "subscriber is unsubscribed": "unsubscribed",
    "subscriber is paused": "paused",
    "subscriber is pending": "pending",
    "subscriber is bounced": "bounced",
    "no new papers for this reader": "no_new_papers",
    "nothing relevant enough today": "nothing_relevant",
}


def _in(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_delivery_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_delivery_status"), f"status IN ({_in(NEW_STATUSES)})"
        )
        batch_op.add_column(sa.Column("skip_reason", sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_deliveries_delivery_skip_reason"), f"skip_reason IN ({_in(SKIP_REASONS)})"
        )
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )

    deliveries = sa.table(
        "deliveries",
        sa.column("status", sa.String),
        sa.column("skip_reason", sa.String),
        sa.column("note", sa.Text),
        sa.column("last_error", sa.Text),
    )
    skipped = deliveries.c.status == "skipped"
    code = sa.case(
        *((deliveries.c.last_error == note, reason) for note, reason in OLD_SKIP_NOTES.items()),
        else_="other",
    )
    # The old reason becomes the note; last_error is for send errors only from now on.
    op.execute(
        deliveries.update()
        .where(skipped)
        .values(skip_reason=code, note=deliveries.c.last_error, last_error=None)
    )


def downgrade() -> None:
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("skip_reason", sa.String),
        sa.column("note", sa.Text),
        sa.column("last_error", sa.Text),
    )
    papers = sa.table("delivery_papers", sa.column("delivery_id", sa.Integer))
    in_flight = deliveries.c.status.in_(("ranked", "sending"))
    # The old ledger ranks again at send time and records the papers only once sent.
    op.execute(
        papers.delete().where(papers.c.delivery_id.in_(sa.select(deliveries.c.id).where(in_flight)))
    )
    op.execute(deliveries.update().where(in_flight).values(status="queued"))
    op.execute(
        deliveries.update()
        .where(deliveries.c.status == "skipped")
        .values(last_error=sa.func.coalesce(deliveries.c.note, deliveries.c.skip_reason))
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_delivery_skip_reason"), type_="check")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("note")
        batch_op.drop_column("skip_reason")
        batch_op.drop_constraint(op.f("ck_deliveries_delivery_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_delivery_status"), f"status IN ({_in(OLD_STATUSES)})"
        )
