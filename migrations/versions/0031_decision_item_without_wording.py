"""decision items without their wording: it is in the decision's results

Every check wrote each item's explanation twice: in ``decision.results_json`` (the record
that is hashed, replayed and shown) and in a ``decision_item`` row. Nothing read the row's
copy, and both tables are append-only, so each re-check of a 100,000-item request stored
~25 MB of text again for good. The rows keep what is queried: decision, item and outcome.
(``bench/eligibility.py``: ``run_check`` writes its rows faster too.)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 17:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35+): no copy of the table, whose
    # immutability triggers (0003) stay as they are.
    op.drop_column("decision_item", "explanation")


def downgrade() -> None:
    op.add_column(
        "decision_item",
        sa.Column("explanation", sa.Text(), nullable=False, server_default=""),
    )
