"""Notification subjects said in the reader's language (issue 21)

``notification.subject_phrase``: the subject's catalog id and its arguments as JSON
(``{"msgid": ..., "args": {...}}``), so the inbox shows it in the language of whoever reads
it, whenever they read it. ``subject`` keeps the English text (older rows have only that).

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-10 00:27:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("subject_phrase", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("subject_phrase")
