"""TOTP seeds sealed at rest (issue 18)

``users.totp_secret`` now holds the seed sealed with the TOTP key (``portal.accounts.totp_seeds``,
about 94 characters), so it widens from 64 characters to text. The seeds themselves are sealed by
``portal init`` after the migrations (a migration does not reach the key file reliably); until
then a seed in the clear is still read.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite does not enforce a VARCHAR length, and re-creating user_account (which many
        # tables reference) to change a declared type would gain nothing.
        return
    op.alter_column(
        "user_account",
        "totp_secret",
        existing_type=sa.String(64),
        type_=sa.Text(),
        existing_nullable=True,
    )


def downgrade() -> None:
    # Sealed seeds do not fit 64 characters: a downgrade keeps the wider column.
    pass
