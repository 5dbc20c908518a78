"""indexes and statistics found by the load benchmark (bench/load.py)

- ``ix_rfa_updated``: the staff's request list pages through every authority's requests,
  newest change first; without an index in that order each page sorts all of them.
- ``item_search_text`` (PostgreSQL only): statistics on the lower-cased title, place and
  tags the repository search matches with ``LIKE '%...%'``. Without them the planner takes
  every such pattern to match almost nothing, scans the whole table and sorts it instead of
  reading items in id order until a page is full (82 ms against 0.1 ms for "witness" on
  100k items). Statistics objects are not schema Alembic compares, so the models do not
  declare them. SQLite has no equivalent and needs none: it reads in id order anyway.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expressions as portal.rfa.search writes them (the planner matches them by form).
SEARCH_EXPRESSIONS = ("lower(title)", "lower(place)", "lower(CAST(tags AS VARCHAR))")


def upgrade() -> None:
    with op.batch_alter_table("rfa", schema=None) as batch_op:
        batch_op.create_index("ix_rfa_updated", ["updated_at", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        expressions = ", ".join(f"({e})" for e in SEARCH_EXPRESSIONS)
        op.execute(f"CREATE STATISTICS item_search_text ON {expressions} FROM item")
        op.execute("ANALYZE item")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS item_search_text")
    with op.batch_alter_table("rfa", schema=None) as batch_op:
        batch_op.drop_index("ix_rfa_updated")
