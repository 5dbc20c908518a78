"""packaging: package signature, key verification, clearances (issue 6)

Placeholder created by the lead so the revision chain is fixed while work proceeds in
parallel; the owner of this migration fills in upgrade() and downgrade().

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
