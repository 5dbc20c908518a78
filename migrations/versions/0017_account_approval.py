"""four-eyes on accounts (issue 18): who invited a user, and who approved the account

``user_account.invited_by_id``, ``approved_by_id`` and ``approved_at``. Recipient, legal-officer
and admin accounts take effect only once ``approved_at`` is set by an admin other than the
inviter (portal.accounts.approval). Existing accounts were in use before the rule: they are
marked approved at their creation (by nobody recorded).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("invited_by_id", "approved_by_id", "approved_at")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0013/0016: a batch would re-create ``user_account``, which
        # most tables refer to. A downgrade on SQLite leaves the columns.
        existing = {c["name"] for c in sa.inspect(bind).get_columns("user_account")}
        if "approved_at" not in existing:
            op.execute(
                "ALTER TABLE user_account ADD COLUMN invited_by_id INTEGER "
                "REFERENCES user_account(id)"
            )
            op.execute(
                "ALTER TABLE user_account ADD COLUMN approved_by_id INTEGER "
                "REFERENCES user_account(id)"
            )
            op.execute("ALTER TABLE user_account ADD COLUMN approved_at DATETIME")
    else:
        op.add_column(
            "user_account",
            sa.Column("invited_by_id", sa.Integer(), sa.ForeignKey("user_account.id")),
        )
        op.add_column(
            "user_account",
            sa.Column("approved_by_id", sa.Integer(), sa.ForeignKey("user_account.id")),
        )
        op.add_column("user_account", sa.Column("approved_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE user_account SET approved_at = created_at WHERE approved_at IS NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # the columns stay; earlier revisions ignore them
    for column in reversed(_COLUMNS):
        op.drop_column("user_account", column)
