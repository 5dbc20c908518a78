"""trigram full-text index for the repository search (SQLite only)

A rare or absent word in a title read every item on SQLite (148 ms at 1M items). An FTS5
table with the trigram tokenizer, kept in step with ``item`` by triggers and filled here from
the items already stored, narrows such searches to the items holding the word's trigrams
(under 1 ms). See ``portal.rfa.search_fts``; PostgreSQL has its trigram indexes (0009).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from portal.rfa.search_fts import create_search_fts, drop_search_fts

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_search_fts(op.get_bind())


def downgrade() -> None:
    drop_search_fts(op.get_bind())
