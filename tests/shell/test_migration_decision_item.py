"""Migration 0031 takes the wording out of ``decision_item`` and keeps its rows and its
immutability: by ALTER TABLE where the database can, and on SQLite older than 3.35 (no DROP
COLUMN) by copying the table and making 0003's triggers again, which this test runs here.
Migration 0033 drops the table (the outcomes are in the decisions' results); its downgrade
makes it again, immutable, filled from those results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from portal import migrate
from portal.db import make_engine
from portal.eligibility.policy.engine import ItemResult
from tests.conftest import DatabaseUnderTest

MIGRATION = Path(migrate.__file__).resolve().parent.parent / "migrations" / "versions"


def _migration() -> ModuleType:
    path = MIGRATION / "0031_decision_item_without_wording.py"
    spec = importlib.util.spec_from_file_location("migration_0031", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_rows(connection: Connection) -> None:
    """Rows as 0030 stored them (foreign keys are off on this connection: only the table
    itself is under test)."""
    connection.execute(
        text(
            "INSERT INTO decision_item (decision_id, item_id, outcome, explanation) VALUES"
            " ('d-1', 1, 'share', 'Shared.'), ('d-1', 2, 'withhold', 'Withheld.')"
        )
    )


def _assert_immutable_without_wording(connection: Connection) -> None:
    columns = {column["name"] for column in inspect(connection).get_columns("decision_item")}
    assert columns == {"id", "decision_id", "item_id", "outcome"}
    rows = connection.execute(
        text("SELECT item_id, outcome FROM decision_item ORDER BY item_id")
    ).all()
    assert [tuple(row) for row in rows] == [(1, "share"), (2, "withhold")]
    indexes = {index["name"] for index in inspect(connection).get_indexes("decision_item")}
    assert "ix_decision_item_item_id" in indexes
    for statement in (
        "UPDATE decision_item SET outcome = 'share'",
        "DELETE FROM decision_item",
    ):
        with (
            pytest.raises(DBAPIError, match="decision records are immutable"),
            connection.begin_nested(),  # PostgreSQL: the refusal aborts this savepoint only
        ):
            connection.execute(text(statement))


def test_older_sqlite_gets_the_table_copied_with_its_triggers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    migrating = make_engine(url)
    try:
        migrate.upgrade(migrating, "0030")
    finally:
        migrating.dispose()
    engine = create_engine(url)  # no foreign keys: rows without decisions and items
    try:
        with engine.begin() as connection:
            _two_rows(connection)
            _migration().rebuild_without_wording(Operations(MigrationContext.configure(connection)))
        with engine.connect() as connection:
            _assert_immutable_without_wording(connection)
    finally:
        engine.dispose()


def test_the_upgrade_keeps_rows_and_immutability(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine, "0030")
        with engine.begin() as connection:
            if database.backend == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            else:
                connection.exec_driver_sql("SET session_replication_role = replica")  # no FKs
            _two_rows(connection)
            if database.backend == "postgresql":
                connection.exec_driver_sql("SET session_replication_role = DEFAULT")
        migrate.upgrade(engine, "0031")
        with engine.connect() as connection:
            _assert_immutable_without_wording(connection)
    finally:
        engine.dispose()


def _foreign_keys_off(connection: Connection, backend: str) -> None:
    """Rows without the requests and items they refer to (only the tables are under test)."""
    if backend == "sqlite":
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    else:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")


def test_0033_drops_the_table_and_its_downgrade_fills_it_from_the_results(
    database: DatabaseUnderTest,
) -> None:
    engine = make_engine(database.url)
    fields = ["item_id", "item", "title", "provider", "outcome", "explanation", "marks", "results"]
    assert fields == list(ItemResult._fields)  # as the engine writes them today
    results = {  # what matters of results format 1: named item fields, item rows
        "format": 1,
        "item_fields": fields,
        "items": [
            [1, "ITM-1", "t", "p", "share", "Shared.", [], []],
            [2, "ITM-2", "t", "p", "withhold", "Withheld.", [], []],
        ],
    }
    try:
        migrate.upgrade(engine)
        assert "decision_item" not in inspect(engine).get_table_names()
        with engine.begin() as connection:
            _foreign_keys_off(connection, database.backend)
            connection.execute(
                text(
                    "INSERT INTO decision (id, rfa_id, policy_id, policy_revision, engine_version,"
                    " snapshot_json, snapshot_sha256, results_json, outcome, created_at) VALUES"
                    " ('d-1', 1, 'p', :hex, '1', '{}', :hex, :results, 'partially_eligible',"
                    " CURRENT_TIMESTAMP)"
                ),
                {"hex": "a" * 64, "results": json.dumps(results)},
            )
            connection.execute(  # as bench/seed.py makes them: results without items
                text(
                    "INSERT INTO decision (id, rfa_id, policy_id, policy_revision, engine_version,"
                    " snapshot_json, snapshot_sha256, results_json, outcome, created_at) VALUES"
                    " ('d-2', 1, 'p', :hex, '1', '{}', :hex, '{}', 'eligible', CURRENT_TIMESTAMP)"
                ),
                {"hex": "a" * 64},
            )
        config = migrate.alembic_config()
        with engine.begin() as connection:
            _foreign_keys_off(connection, database.backend)
            config.attributes["connection"] = connection
            command.downgrade(config, "0032")
        with engine.connect() as connection:
            _assert_immutable_without_wording(connection)
            decided = connection.scalars(text("SELECT DISTINCT decision_id FROM decision_item"))
            assert list(decided) == ["d-1"]
        migrate.upgrade(engine)
        assert "decision_item" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
