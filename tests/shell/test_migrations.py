"""Alembic migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from portal import migrate
from portal.accounts.models import User
from portal.db import make_engine
from portal.eligibility.freshness import TRIGGERS, trigger_names
from portal.eligibility.models import DecisionFreshness
from portal.models import Base
from portal.registry.models import Item
from portal.rfa.models import URGENCIES, Rfa
from portal.rfa.search import ItemQuery, conditions, search
from portal.rfa.triage import QUEUE_PAGE_SIZE, QueueFilter, queue_statement
from portal.web.worklists import stale_decisions
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make

# The trigram indexes exist on PostgreSQL only (see portal.rfa.search_indexes).
POSTGRESQL_ONLY = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def test_migrations_match_models(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_object": migrate.compared_with_models},
            )
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_enforces_constraints(database: DatabaseUnderTest) -> None:
    """Check constraints and foreign keys exist in the migrated database, not only in models."""
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        bad_statements = [
            # unknown enum value
            "INSERT INTO provider (code, name, kind, public_name, created_at)"
            " VALUES ('P1', 'n', 'cartel', 'n', CURRENT_TIMESTAMP)",
            # item pointing at a provider that does not exist
            "INSERT INTO item (code, provider_id, kind, title, description, media_type,"
            " original_filename, size_bytes, sha256, place, sensitivity, tags, cleared_as_is,"
            " created_at) VALUES ('I1', 999, 'photo', 't', '', 'image/jpeg', 'a.jpg', 1,"
            " '" + "a" * 64 + "', '', 'low', '[]', false, CURRENT_TIMESTAMP)",
            # a legal officer attached to an authority
            "INSERT INTO authority (code, name, kind, country, created_at)"
            " VALUES ('A1', 'a', 'court', 'XX', CURRENT_TIMESTAMP);"
            "INSERT INTO user_account (email, display_name, role, authority_id, failed_logins,"
            " session_epoch, is_active, created_at) VALUES ('x@example.org', 'x',"
            " 'legal_officer', (SELECT id FROM authority WHERE code = 'A1'), 0, 0, true,"
            " CURRENT_TIMESTAMP)",
        ]
        for statement in bad_statements:
            with pytest.raises(IntegrityError), engine.begin() as connection:
                for part in statement.split(";"):
                    connection.execute(text(part))
    finally:
        engine.dispose()


def test_decision_records_cannot_be_changed_even_with_raw_sql(
    database: DatabaseUnderTest,
) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO authority (code, name, kind, country, created_at)"
                    " VALUES ('A1', 'a', 'court', 'XX', CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO rfa (code, authority_id, status, their_reference, legal_basis,"
                    " proceedings_type, offences, persons_concerned, summary_of_facts,"
                    " assistance_sought, places, urgency, urgency_justification,"
                    " confidentiality, created_at, submitted_at, updated_at, version)"
                    " VALUES ('R1', (SELECT id FROM authority), 'submitted', 'x', '',"
                    " 'investigation', '[]', '', '', '', '', 'normal', '', '',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO decision (id, rfa_id, policy_id, policy_revision,"
                    " engine_version, snapshot_json, snapshot_sha256, results_json, outcome,"
                    " created_at) VALUES ('d1', (SELECT id FROM rfa), 'p', :h, '1', '{}', :h,"
                    " '{}', 'eligible', CURRENT_TIMESTAMP)"
                ),
                {"h": "a" * 64},
            )
        for statement in (
            "UPDATE decision SET outcome = 'ineligible'",
            "DELETE FROM decision",
        ):
            with pytest.raises(DBAPIError, match="immutable"), engine.begin() as connection:
                connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT outcome FROM decision")) == "eligible"
    finally:
        engine.dispose()


@POSTGRESQL_ONLY
@pytest.mark.parametrize(
    ("query", "index"),
    [
        (ItemQuery(title="NO. 98765"), "ix_item_title_trgm"),
        (ItemQuery(place="north market"), "ix_item_place_trgm"),
        (ItemQuery(tags=("Siege",)), "ix_item_tags_trgm"),
    ],
)
def test_search_statements_can_use_the_trigram_indexes_on_postgresql(
    database: DatabaseUnderTest, query: ItemQuery, index: str
) -> None:
    """The planner matches an expression index only by its exact form: the migration's
    indexes must fit the statements portal.rfa.search writes (with scans forbidden, the plan
    names the index or falls back to a sequential scan)."""
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        statement = select(Item.id).where(*conditions(query))
        sql = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            connection.execute(text("SET LOCAL enable_indexscan = off"))
            plan = "\n".join(connection.scalars(text(f"EXPLAIN {sql}")))
        assert f"Bitmap Index Scan on {index}" in plan, plan
    finally:
        engine.dispose()


@POSTGRESQL_ONLY
def test_without_pg_trgm_the_upgrade_goes_on_and_search_still_answers(
    database: DatabaseUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """A database user who may not install extensions gets the whole schema without the
    trigram indexes, a warning that says why, and the same search answers."""
    name = f"r_{uuid.uuid4().hex[:12]}"  # a database and a role of the same name
    admin = make_engine(database.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))  # not allowed to CREATE EXTENSION
    base = make_url(database.url).set(query={})
    owner = make_engine(base.set(database=name).render_as_string(hide_password=False))
    with owner.begin() as conn:
        conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{name}"'))
    owner.dispose()
    url = base.set(database=name, username=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        with caplog.at_level(logging.WARNING, logger="portal.rfa.search_indexes"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert "pg_trgm could not be installed" in caplog.text
        indexes = {index["name"] for index in inspect(engine).get_indexes("item")}
        assert not indexes & migrate.DATABASE_ONLY_INDEXES
        with Session(engine) as session:
            assert search(session, ItemQuery(title="nothing like this")).items == []
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.mark.parametrize("status", [None, "clarification_requested"])
def test_the_triage_queue_is_read_from_its_index_in_order(
    database: DatabaseUnderTest, status: str | None
) -> None:
    """A page of the triage queue is the first rows of ix_rfa_triage with an open status, not
    a sort of every open request: the index must hold the very order the queue asks for
    (urgency DESC, see portal.rfa.models.URGENCIES). With sorts forbidden on PostgreSQL, a
    plan that still needs one names a Sort node; SQLite says "TEMP B-TREE"."""
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        wanted = QueueFilter(status=status)
        statement = queue_statement(User(id=1), wanted).limit(QUEUE_PAGE_SIZE + 1)
        sql = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        with engine.begin() as connection:
            if database.backend == "postgresql":
                connection.execute(text("SET LOCAL enable_seqscan = off"))
                connection.execute(text("SET LOCAL enable_sort = off"))
                plan = "\n".join(connection.scalars(text(f"EXPLAIN {sql}")))
                assert "Sort" not in plan, plan
            else:
                rows = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
                plan = "\n".join(str(row[-1]) for row in rows)
                assert "TEMP B-TREE" not in plan, plan
        assert "ix_rfa_triage" in plan, plan
    finally:
        engine.dispose()


def test_urgencies_sort_alphabetically_from_least_to_most_urgent() -> None:
    """The queue orders by ``urgency DESC`` (its index's order): that is most urgent first only
    while URGENCIES, listed from least to most urgent, is also in alphabetical order. (The
    queue's order itself is tested over HTTP in tests/rfa/test_triage.py.)"""
    assert list(URGENCIES) == sorted(URGENCIES)


@POSTGRESQL_ONLY
def test_decision_records_are_stored_with_lz4_and_the_downgrade_restores_the_default(
    database: DatabaseUnderTest,
) -> None:
    """Migration 0032: the decision's record columns are compressed with lz4 from now on (the
    method PostgreSQL uses for each new value), and a downgrade gives them back the server's
    default."""
    engine = make_engine(database.url)

    def compression() -> dict[str, str]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = "
                    "'decision'::regclass AND attname IN ('snapshot_json', 'results_json')"
                )
            )
            return {str(name): str(method) for name, method in rows}

    try:
        migrate.upgrade(engine)
        assert compression() == {"snapshot_json": "l", "results_json": "l"}
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0031")
        assert compression() == {"snapshot_json": "", "results_json": ""}
    finally:
        migrate.upgrade(engine)
        engine.dispose()


def test_0034_fills_the_decisions_freshness_from_the_history_and_keeps_it(
    database: DatabaseUnderTest,
) -> None:
    """Migration 0034: the table is filled from what the database holds (here a candidate
    added while it was downgraded, so no trigger saw it), its triggers keep it from then on,
    and the downgrade takes table, indexes and triggers away (inserts still work)."""
    start = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    engine = make_engine(database.url)
    config = migrate.alembic_config()

    def listed() -> list[str]:
        with Session(engine) as db:
            return list(db.scalars(stale_decisions().with_only_columns(Rfa.code)))

    try:
        migrate.upgrade(engine)
        with Session(engine) as db:
            authority, provider = make.authority(db), make.provider(db)
            first, second = make.item(db, provider), make.item(db, provider)
            rfa = make.rfa(db, authority, "RFA-2026-0340", status="in_review")
            make.candidate(db, rfa, first, added_at=start)
            make.decision_row(db, rfa, start + timedelta(hours=1))
            db.commit()
            rfa_id, second_id = rfa.id, second.id
        assert listed() == []

        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0033")
        assert "decision_freshness" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            assert not set(trigger_names(connection)) & set(TRIGGERS[database.backend])
        with Session(engine) as db:
            later = start + timedelta(hours=2)
            make.candidate(db, db.get(Rfa, rfa_id), db.get(Item, second_id), added_at=later)
            db.commit()

        migrate.upgrade(engine)
        assert listed() == ["RFA-2026-0340"]
        with engine.connect() as connection:  # compare_metadata does not see triggers
            names = set(trigger_names(connection))
        assert names >= set(TRIGGERS[database.backend])
        with Session(engine) as db:
            row = db.get(DecisionFreshness, rfa_id)
            assert row is not None
            assert (row.decided_at, row.changed_at) == (
                start + timedelta(hours=1),
                start + timedelta(hours=2),
            )
            make.decision_row(db, db.get(Rfa, rfa_id), start + timedelta(hours=3))  # by the trigger
            db.commit()
        assert listed() == []
    finally:
        migrate.upgrade(engine)
        engine.dispose()
