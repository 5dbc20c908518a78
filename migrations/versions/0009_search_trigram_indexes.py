"""trigram indexes for the repository search (PostgreSQL only)

A rare word in a repository search (an item code, a misspelt name) read all 100k items:
36 ms on PostgreSQL, the costliest page of bench/load.py. GIN trigram indexes answer it in
~1.3 ms; with 0008's statistics the planner still reads in id order for common words. See
``portal.rfa.search_indexes`` (also used by ``portal restore``) for the extension they need and
what happens when it cannot be installed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from portal.rfa.search_indexes import TRIGRAM_INDEXES, create_trigram_indexes

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_trigram_indexes(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    # The extension stays: something else in the database may use it.
