"""Migration 0029 makes SQLite's search index, fills it from the items already stored, and
takes it away again on downgrade; PostgreSQL gets nothing from it (its trigram indexes are
0009's)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from portal import migrate
from portal.db import make_engine
from portal.rfa.search import ItemQuery, search
from portal.rfa.search_fts import FTS_TABLES
from tests.conftest import DatabaseUnderTest

TITLES = ("Witness statement, North Market", "شهادة الشاهد في السوق", "ထွက်ဆိုချက် ဈေးကွက်")


def _engine_at_0028_with_items(database: DatabaseUnderTest) -> Engine:
    engine = make_engine(database.url)
    migrate.upgrade(engine, "0028")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO provider (code, name, kind, public_name, created_at)"
                " VALUES ('PRV-1', 'p', 'ngo', 'p', CURRENT_TIMESTAMP)"
            )
        )
        for n, title in enumerate(TITLES):
            connection.execute(
                text(
                    "INSERT INTO item (code, provider_id, kind, title, description, media_type,"
                    " original_filename, size_bytes, sha256, place, sensitivity, tags,"
                    " cleared_as_is, created_at) VALUES (:code, (SELECT id FROM provider),"
                    " 'document', :title, '', 'text/plain', 'a.txt', 1, :sha, 'Old Camp', 'low',"
                    " '[\"siege\"]', false, CURRENT_TIMESTAMP)"
                ),
                {"code": f"ITM-{n}", "title": title, "sha": f"{n:064x}"},
            )
    return engine


def _search_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) & FTS_TABLES


def _triggers(engine: Engine) -> set[str]:
    if engine.dialect.name != "sqlite":
        return set()
    with engine.connect() as connection:
        names = connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        return {name for name in names if name.startswith("item_search")}


def _titles(engine: Engine, searched: str) -> list[str]:
    with Session(engine) as session:
        return [item.title for item in search(session, ItemQuery(title=searched)).items]


def test_upgrade_fills_the_index_and_downgrade_removes_it(database: DatabaseUnderTest) -> None:
    engine = _engine_at_0028_with_items(database)
    sqlite = database.backend == "sqlite"
    try:
        migrate.upgrade(engine)
        assert _search_tables(engine) == (FTS_TABLES if sqlite else set())
        assert len(_triggers(engine)) == (3 if sqlite else 0)
        if sqlite:  # the items stored before the migration are in the index
            with engine.begin() as connection:
                found = connection.scalars(
                    text("SELECT rowid FROM item_search WHERE item_search MATCH '\"الشاهد\"'")
                ).all()
                assert len(found) == 1
                connection.execute(
                    text("INSERT INTO item_search(item_search, rank) VALUES ('integrity-check', 1)")
                )
        for searched, title in zip(("witness", "الشاهد", "ဈေး"), TITLES, strict=True):
            assert _titles(engine, searched) == [title]
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0028")
        assert _search_tables(engine) == set()
        assert _triggers(engine) == set()
        assert _titles(engine, "الشاهد") == [TITLES[1]]  # the scan still answers
        with engine.begin() as connection:  # and items can change without the triggers
            connection.execute(text("UPDATE item SET title = 'renamed' WHERE code = 'ITM-0'"))
        migrate.upgrade(engine)
        assert _titles(engine, "renamed") == ["renamed"]
        assert _titles(engine, "witness") == []
    finally:
        engine.dispose()
