"""How PostgreSQL compresses the decision records (``decision.snapshot_json`` and
``results_json``: 72 MB of JSON for a request of 100,000 items).

lz4 stores those 72 MB in 0.28-0.31 s of the server's time where its default, pglz, takes
0.67-0.68 s, in 8.6 MB instead of 8.2 MB (2026-12-07, PostgreSQL 15), and reads back faster.
Set by migration 0032 and again after ``portal restore`` (which restores without the dump's
compression settings, so that a dump restores on a server built without lz4). It needs
PostgreSQL 14 or later built with lz4 (Debian's and the official images are); elsewhere the
server's default stays and a warning says so. Only values written afterwards are affected;
both methods read the same. Nothing to do on SQLite.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from portal.db import database_refusal

__all__ = ["RECORD_COLUMNS", "compress_decision_records"]

log = logging.getLogger(__name__)

RECORD_COLUMNS = ("snapshot_json", "results_json")
#: ALTER TABLE ... SET COMPRESSION came with PostgreSQL 14.
COLUMN_COMPRESSION = (14,)


def compress_decision_records(conn: Connection, method: str = "lz4") -> bool:
    """Have the decision records' columns compressed with ``method`` (``lz4``, or
    ``default`` for the server's), inside the caller's transaction. False (with a warning)
    where the server cannot: nothing is changed then."""
    if conn.dialect.name != "postgresql":
        return False
    version = conn.dialect.server_version_info or ()
    if version < COLUMN_COMPRESSION:
        log.warning(
            "PostgreSQL %s cannot choose a column's compression (14 or later can): decision "
            "records stay compressed with the server's default",
            ".".join(map(str, version)),
        )
        return False
    try:
        with conn.begin_nested():
            for column in RECORD_COLUMNS:
                conn.execute(
                    text(f"ALTER TABLE decision ALTER COLUMN {column} SET COMPRESSION {method}")
                )
    except DBAPIError as exc:  # a server built without lz4
        reason = database_refusal(exc)
        log.warning(
            "decision records stay compressed with the server's default, not %s: %s",
            method,
            reason,
        )
        return False
    return True
