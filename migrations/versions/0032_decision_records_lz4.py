"""decision records compressed with lz4 on PostgreSQL

A decision keeps its input snapshot and its results as JSON text: 72 MB for a request of
100,000 items, which PostgreSQL compresses as it stores them (TOAST). Its default method,
pglz, took 0.67-0.68 s of the server's time for those 72 MB; lz4 takes 0.28-0.31 s and stores
8.6 MB where pglz stored 8.2 MB (2026-12-07, PostgreSQL 15). Reading a decision back (its page,
its PDF, a package's decision record) decompresses faster too.

Only values written from now on use lz4; decisions stored before stay as they are, and both
read the same. It needs PostgreSQL 14 or later built with lz4 (Debian's and the official
images are): on another server the upgrade leaves the default and says so in a warning.
Nothing changes on SQLite.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 20:30:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("portal.migrate")

COLUMNS = ("snapshot_json", "results_json")
#: SET COMPRESSION came with PostgreSQL 14.
COLUMN_COMPRESSION = (14,)


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    version = bind.dialect.server_version_info or ()
    if version < COLUMN_COMPRESSION:
        log.warning(
            "PostgreSQL %s cannot choose a column's compression (14 or later can): decision "
            "records stay compressed with the server's default",
            ".".join(map(str, version)),
        )
        return
    try:
        with bind.begin_nested():
            for column in COLUMNS:
                bind.execute(
                    text(f"ALTER TABLE decision ALTER COLUMN {column} SET COMPRESSION {method}")
                )
    except DBAPIError as exc:  # a server built without lz4
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        log.warning(
            "decision records stay compressed with the server's default (%s): %s", method, reason
        )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
