"""consent ledger is append-only at the database level (issue 5)

Placeholder created by the lead so the revision chain is fixed while work proceeds in
parallel; the owner of this migration fills in upgrade() and downgrade().

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
