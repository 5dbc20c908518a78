"""a provider may ask not to be named to authorities (issue 17)

``provider.named_to_authorities``: true (the default, as before) names the provider to the
authorities it shares with by its ``public_name``; false names it in no page, notice or
manifest they see ("an information provider, not named at its request").

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0013: a batch would re-create ``provider``, which other
        # tables refer to. A downgrade on SQLite leaves the column (see there).
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("provider")}
        if "named_to_authorities" in columns:
            return
        op.execute(
            "ALTER TABLE provider ADD COLUMN named_to_authorities BOOLEAN NOT NULL DEFAULT 1"
        )
        return
    op.add_column(
        "provider",
        sa.Column("named_to_authorities", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # the column stays; earlier revisions ignore it
    op.drop_column("provider", "named_to_authorities")
