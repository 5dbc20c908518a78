"""decision items without their wording: it is in the decision's results

Every check wrote each item's explanation twice: in ``decision.results_json`` (the record
that is hashed, replayed and shown) and in a ``decision_item`` row. Nothing read the row's
copy, and both tables are append-only, so each re-check of a 100,000-item request stored
~25 MB of text again for good. The rows keep what is queried: decision, item and outcome.
(``bench/eligibility.py``: ``run_check`` writes its rows faster too.)

A downgrade brings the column back empty: the wording of stored decisions stays in their
results, and the rows cannot be filled again (0003's triggers refuse any UPDATE).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 17:45:00
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: SQLite's ALTER TABLE ... DROP COLUMN came with 3.35.0.
SQLITE_DROP_COLUMN = (3, 35, 0)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_DROP_COLUMN:
        rebuild_without_wording(op)
    else:
        # ALTER TABLE ... DROP COLUMN: no copy of the table, whose immutability triggers
        # (0003) stay as they are.
        op.drop_column("decision_item", "explanation")


def rebuild_without_wording(operations: Operations) -> None:
    """Older SQLite: the table copied without the column (Alembic's batch mode), then 0003's
    triggers made again (they go with the table they were on; none fires while it is copied
    and dropped)."""
    with operations.batch_alter_table("decision_item", recreate="always") as batch:
        batch.drop_column("explanation")
    for event in ("UPDATE", "DELETE"):
        operations.execute(
            f"CREATE TRIGGER decision_item_no_{event.lower()} BEFORE {event} ON decision_item "
            "BEGIN SELECT RAISE(ABORT, 'decision records are immutable'); END"
        )


def downgrade() -> None:
    op.add_column(
        "decision_item",
        sa.Column("explanation", sa.Text(), nullable=False, server_default=""),
    )
