"""how many runs of a package's assembly have started (issue 19)

``package.attempts``: set to 0 when the package is made or an officer retries it, one more at
each run's start. A run whose worker died (no heartbeat) is queued again until the third, then
the package fails with the reason.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 23:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE, as in 0013 and 0016: a batch would re-create ``package``, which
        # other tables refer to. A downgrade on SQLite leaves the column.
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("package")}
        if "attempts" not in columns:
            op.execute("ALTER TABLE package ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        return
    op.add_column(
        "package", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # the column stays; earlier revisions ignore it
    op.drop_column("package", "attempts")
