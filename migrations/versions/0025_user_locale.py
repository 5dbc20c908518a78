"""The language a user reads the portal in (issue 21)

``user_account.locale``: ``en``, ``ar`` or ``my`` (``portal.pages.i18n.LOCALES``), or NULL to
follow the browser's ``Accept-Language`` (then English). Chosen on the account page.

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-08 00:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("locale", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("locale")
