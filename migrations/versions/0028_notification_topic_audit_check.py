"""Notifications settled by the step they wait on; recorded audit-chain checks (issue 22)

``notification.topic`` names the step a notification waits on (``release:PKG-2026-0001``,
``marks:ITM-000123``, ``consent:17``, ``clarification:RFA-2026-0004``): when someone takes the
step, every unread notification of that topic is marked read, for everyone it was sent to.

``ix_rfa_status_deadline`` and ``ix_rfa_assignee_status``: the officers' dashboard counts
requests overdue or due soon, and those assigned to the officer, from indexes.

``audit_check``: each verification of the audit chain an admin ran from the audit-log page,
with the head it verified (the page shows the last one).

Revision ID: 0028
Revises: 0025
Create Date: 2026-12-10 00:28:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_rfa_status_deadline", "rfa", ["status", "deadline"])
    op.create_index(
        "ix_rfa_assignee_status", "rfa", ["assigned_to_id", "status", "deadline", "submitted_at"]
    )
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("topic", sa.String(120), nullable=True))
        batch.create_index("ix_notification_topic", ["topic"])
    op.create_table(
        "audit_check",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "checked_by_id",
            sa.Integer(),
            sa.ForeignKey("user_account.id", name="fk_audit_check_checked_by_id_user_account"),
            nullable=True,
        ),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("first_bad_seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_index("ix_rfa_assignee_status", table_name="rfa")
    op.drop_index("ix_rfa_status_deadline", table_name="rfa")
    op.drop_table("audit_check")
    with op.batch_alter_table("notification") as batch:
        batch.drop_index("ix_notification_topic")
        batch.drop_column("topic")
