"""decision records compressed with lz4 on PostgreSQL

A decision keeps its input snapshot and its results as JSON text: 72 MB for a request of
100,000 items, which PostgreSQL compresses as it stores them (TOAST). Its default method,
pglz, took 0.67-0.68 s of the server's time for those 72 MB; lz4 takes 0.28-0.31 s and stores
8.6 MB where pglz stored 8.2 MB (2026-12-07, PostgreSQL 15). Reading a decision back (its page,
its PDF, a package's decision record) decompresses faster too.

Only values written from now on use lz4; decisions stored before stay as they are, and both
read the same. It needs PostgreSQL 14 or later built with lz4 (Debian's and the official
images are): on another server the upgrade leaves the default and says so in a warning.
Nothing changes on SQLite. See ``portal.eligibility.record_compression`` (also used by
``portal restore``).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from portal.eligibility.record_compression import compress_decision_records

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    compress_decision_records(op.get_bind(), "lz4")


def downgrade() -> None:
    compress_decision_records(op.get_bind(), "default")
