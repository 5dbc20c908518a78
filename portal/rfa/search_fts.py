"""SQLite trigram full-text index for the repository search.

SQLite has no index for ``LIKE '%word%'``: a rare or absent title read all items (148 ms at
1M). An FTS5 table with the ``trigram`` tokenizer over the searched text (title, place and
the tags' JSON text) finds the items holding every trigram of the searched text; the search
joins it on rowid and keeps its ``LIKE`` as the exact filter, so the results are the same
(the index only narrows; its case folding is wider than SQLite's ``LIKE``, never narrower).
Texts shorter than three characters have no trigram and skip the index.

The FTS table is "external content" (it stores only the index; its text is the item row's)
and three triggers keep it in step with ``item``. Made by migration 0029, and for databases
created from the models by an ``after_create`` hook on the item table; PostgreSQL uses its
trigram indexes instead (``portal.rfa.search_indexes``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, event

__all__ = [
    "FTS_COLUMNS",
    "FTS_TABLE",
    "FTS_TABLES",
    "MIN_CHARS",
    "create_search_fts",
    "drop_search_fts",
    "fts_phrase",
    "has_search_fts",
    "install_schema_hooks",
    "sqlite_has_trigram_fts",
]

FTS_TABLE = "item_search"
#: The item columns indexed, in the FTS table under the same names (as in _STATEMENTS).
FTS_COLUMNS = ("title", "place", "tags")
#: The FTS table and the shadow tables SQLite makes for it (not in the models).
FTS_TABLES = frozenset(
    {FTS_TABLE, *(f"{FTS_TABLE}_{shadow}" for shadow in ("data", "idx", "docsize", "config"))}
)
#: A trigram index cannot narrow a search for fewer characters than this.
MIN_CHARS = 3

# An external-content FTS table forgets a row only when told its old values exactly.
_FORGET = (
    "INSERT INTO item_search(item_search, rowid, title, place, tags)"
    " VALUES ('delete', old.id, old.title, old.place, old.tags);"
)
_ADD = (
    "INSERT INTO item_search(rowid, title, place, tags)"
    " VALUES (new.id, new.title, new.place, new.tags);"
)
_STATEMENTS = (
    "CREATE VIRTUAL TABLE item_search USING fts5(title, place, tags,"
    " content='item', content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER item_search_insert AFTER INSERT ON item BEGIN {_ADD} END",
    f"CREATE TRIGGER item_search_delete AFTER DELETE ON item BEGIN {_FORGET} END",
    "CREATE TRIGGER item_search_update AFTER UPDATE OF id, title, place, tags ON item"
    f" BEGIN {_FORGET} {_ADD} END",
    "INSERT INTO item_search(item_search) VALUES ('rebuild')",  # the rows already there
)


def sqlite_has_trigram_fts(conn: Connection) -> bool:
    """Whether this SQLite library can make the index: FTS5 compiled in and the trigram
    tokenizer (SQLite 3.34 or later). Without it the search scans, as before 0029."""
    version = conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    options = {row[0] for row in conn.exec_driver_sql("PRAGMA compile_options")}
    return tuple(int(part) for part in version.split(".")) >= (3, 34) and "ENABLE_FTS5" in options


def create_search_fts(conn: Connection) -> bool:
    """Make the index and its triggers and fill it from ``item`` (SQLite; nothing elsewhere),
    inside the caller's transaction. False when not SQLite, or when this SQLite library cannot
    make it (the search then scans, see :func:`sqlite_has_trigram_fts`)."""
    if conn.dialect.name != "sqlite" or not sqlite_has_trigram_fts(conn):
        return False
    for statement in _STATEMENTS:
        conn.exec_driver_sql(statement)
    return True


def drop_search_fts(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    for trigger in ("item_search_insert", "item_search_delete", "item_search_update"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.exec_driver_sql("DROP TABLE IF EXISTS item_search")


def has_search_fts(conn: Connection) -> bool:
    """Whether the database has the index: SQLite at migration 0029 or later (a database
    migrated down, or never up, is searched by scanning; about 10 µs to ask)."""
    if conn.dialect.name != "sqlite":
        return False
    found = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'item_search'"
    )
    return found.first() is not None


def fts_phrase(column: str, searched: str) -> str:
    """An FTS5 query for ``searched`` as a substring of ``column``: one quoted phrase, which
    the trigram tokenizer splits into the text's trigrams (every character literal)."""
    return f'{column} : "{searched.replace(chr(34), chr(34) * 2)}"'


def _after_item_created(target: Table, connection: Connection, **_: Any) -> None:
    create_search_fts(connection)


def _before_item_dropped(target: Table, connection: Connection, **_: Any) -> None:
    drop_search_fts(connection)


def install_schema_hooks(item_table: Table) -> None:
    """Databases made by ``Base.metadata.create_all`` (the tests) get the index with the
    item table, and lose it with the table (``drop_all``); migrated ones get it from 0029."""
    if not event.contains(item_table, "after_create", _after_item_created):
        event.listen(item_table, "after_create", _after_item_created)
        event.listen(item_table, "before_drop", _before_item_dropped)
