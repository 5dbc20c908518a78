"""redaction marks reviewed by two legal officers, with a history (issue 16)

``redaction_mark``: who proposed a mark and when (``NULL``: it arrived by import), who
confirmed it (never the proposer) and when, a ``version`` that grows with every change (a
confirmation of an older version is refused), and a pending request to remove it (a confirmed
mark is removed only when a second officer agrees). Marks confirmed before this revision keep
``confirmed`` with no confirmer recorded.

``redaction_mark_event``: each step of a mark's history (who, what, when, which version);
never a term.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS = (
    "imported",
    "proposed",
    "edited",
    "confirmed",
    "removal_requested",
    "removal_cancelled",
    "removed",
    "withdrawn",
    "checked_by_eye",
)
_USERS = ("proposed_by_id", "confirmed_by_id", "removal_requested_by_id")


def upgrade() -> None:
    with op.batch_alter_table("redaction_mark") as batch:
        batch.add_column(sa.Column("proposed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("removal_requested_by_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("removal_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        for column in _USERS:
            batch.create_foreign_key(
                op.f(f"fk_redaction_mark_{column}_user_account"), "user_account", [column], ["id"]
            )
        batch.create_check_constraint(
            op.f("ck_redaction_mark_confirmed_has_time"),
            sa.text(
                "confirmed_by_id IS NULL OR (confirmed_at IS NOT NULL AND review = 'confirmed')"
            ),
        )
        batch.create_check_constraint(
            op.f("ck_redaction_mark_version_positive"), sa.text("version >= 1")
        )
    op.create_table(
        "redaction_mark_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("mark_code", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "action IN (" + ", ".join(f"'{event}'" for event in _EVENTS) + ")",
            name=op.f("ck_redaction_mark_event_action_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user_account.id"],
            name=op.f("fk_redaction_mark_event_actor_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_redaction_mark_event_item_id_item")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redaction_mark_event")),
    )
    op.create_index(
        "ix_redaction_mark_event_item_mark", "redaction_mark_event", ["item_id", "mark_code"]
    )


def downgrade() -> None:
    op.drop_index("ix_redaction_mark_event_item_mark", table_name="redaction_mark_event")
    op.drop_table("redaction_mark_event")
    with op.batch_alter_table("redaction_mark") as batch:
        batch.drop_constraint(op.f("ck_redaction_mark_version_positive"), type_="check")
        batch.drop_constraint(op.f("ck_redaction_mark_confirmed_has_time"), type_="check")
        for column in _USERS:
            batch.drop_constraint(
                op.f(f"fk_redaction_mark_{column}_user_account"), type_="foreignkey"
            )
        batch.drop_column("removal_requested_at")
        batch.drop_column("removal_requested_by_id")
        batch.drop_column("version")
        batch.drop_column("confirmed_at")
        batch.drop_column("confirmed_by_id")
        batch.drop_column("proposed_at")
        batch.drop_column("proposed_by_id")
