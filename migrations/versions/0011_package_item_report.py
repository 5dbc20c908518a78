"""what assembly did to each package item, for the package page (issue 14)

One nullable JSON column, ``package_item.report``: the marks applied with their counts (per
page for PDFs), the protected identifiers found (by code), what was stripped and what
blocked. Codes only, never a protected term.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("package_item") as batch:
        batch.add_column(sa.Column("report", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("package_item") as batch:
        batch.drop_column("report")
