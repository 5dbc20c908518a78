"""PostgreSQL trigram indexes for the repository search.

``portal.rfa.search`` matches title, place and tags with ``LIKE '%...%'``. Reading items in id
order until a page is full makes a common word cheap, but a rare one (an item code, a
misspelt name, a word nobody used) reads every item. GIN trigram indexes (the pg_trgm
extension) answer those from the index: 36 ms -> 1.3 ms a search over 100k items.

Made by migration 0009 and again after ``portal restore`` (a dump of one schema cannot
carry the extension they need). pg_trgm ships with PostgreSQL and has been a "trusted"
extension since PostgreSQL 13: a user with CREATE on the database may install it. It goes
into the portal's schema (the first on the search path) unless the database has it
already, wherever that is. When it cannot be installed, a warning says so and the search
works without these indexes, only slower. SQLite needs none (its scans meet the target).

The indexes are on expressions in the exact form ``portal.rfa.search`` writes them, because
the planner matches expression indexes by form; the models cannot declare them (they need
the extension's operator class), see ``portal.migrate.DATABASE_ONLY_INDEXES``.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from portal.db import database_refusal

__all__ = ["INSTALL_LOCK", "TRIGRAM_INDEXES", "create_trigram_indexes", "extension_schema"]

log = logging.getLogger(__name__)

#: index name -> the indexed expression, as portal.rfa.search writes it
TRIGRAM_INDEXES: dict[str, str] = {
    "ix_item_title_trgm": "lower(title)",
    "ix_item_place_trgm": "lower(place)",
    "ix_item_tags_trgm": "lower(CAST(tags AS VARCHAR))",
}
# Two upgrades installing the extension at once would both try; the second would fail.
# (The tests take it too: tests/conftest.py.)
INSTALL_LOCK = 0x7067_7472_676D  # "pgtrgm"


def extension_schema(conn: Connection) -> str | None:
    """The schema pg_trgm is installed in, None when it is not."""
    schema = conn.scalar(
        text(
            "SELECT n.nspname FROM pg_extension e"
            " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    )
    return None if schema is None else str(schema)


def _install_extension(conn: Connection) -> str | None:
    """pg_trgm's schema, installing the extension when it is missing; None if it cannot be."""
    schema = extension_schema(conn)
    if schema is not None:  # as it nearly always is: no lock held until the upgrade commits
        return schema
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INSTALL_LOCK})
    schema = extension_schema(conn)  # installed meanwhile by the one that held the lock
    if schema is not None:
        return schema
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION pg_trgm"))
    except DBAPIError as exc:
        reason = database_refusal(exc)
        log.warning(
            "pg_trgm could not be installed (%s): the repository search works without its "
            "indexes, only slower on rare words. Install it and run `portal init` again.",
            reason,
        )
        return None
    return extension_schema(conn)


def create_trigram_indexes(conn: Connection) -> bool:
    """Make the indexes that are missing (PostgreSQL; nothing elsewhere), inside the
    caller's transaction. False when pg_trgm is not available."""
    if conn.dialect.name != "postgresql":
        return False
    schema = _install_extension(conn)
    if schema is None:
        return False
    opclass = f'"{schema}".gin_trgm_ops'
    for name, expression in TRIGRAM_INDEXES.items():
        conn.execute(
            text(f"CREATE INDEX IF NOT EXISTS {name} ON item USING gin (({expression}) {opclass})")
        )
    conn.execute(text("ANALYZE item"))
    return True
