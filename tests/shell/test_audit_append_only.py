"""The audit log is append-only in the database itself (migration 0007): raw SQL UPDATE,
DELETE (and TRUNCATE on PostgreSQL) of audit events are refused on both backends, while the
application keeps appending. Also :func:`allow_audit_tampering`, which tests that tamper with
the chain use to do what only a database superuser could."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from portal import migrate
from portal.audit import AuditEvent, record, verify
from portal.db import make_engine, make_session_factory, transaction
from tests.conftest import DatabaseUnderTest


def allow_audit_tampering(conn: Connection) -> None:
    """Remove the append-only guard of ``audit_event`` on this connection's database.

    What an attacker with database superuser (or table owner) rights can do: the
    triggers are no defence against them, the hash chain (with a published head) is.
    PostgreSQL: disable the triggers; SQLite: drop them. No-op when they are absent
    (a schema made by ``create_all`` rather than the migrations).
    """
    if conn.dialect.name == "postgresql":
        found = conn.scalar(
            text(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass"
                " AND NOT tgisinternal"
            )
        )
        if found:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        return
    for event in ("update", "delete"):
        conn.execute(text(f"DROP TRIGGER IF EXISTS audit_event_no_{event}"))


@pytest.fixture
def migrated(database: DatabaseUnderTest) -> Iterator[Engine]:
    engine = make_engine(database.url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _append(engine: Engine, count: int) -> None:
    sessions = make_session_factory(engine)
    for n in range(count):
        with transaction(sessions) as session:
            record(session, "cli", "test.event", f"thing:{n}", {"n": n})


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'someone else' WHERE seq = 2",
        "UPDATE audit_event SET details = '{}'",
        "DELETE FROM audit_event WHERE seq = 3",
        "DELETE FROM audit_event",
    ],
)
def test_raw_sql_cannot_change_or_delete_an_audit_event(migrated: Engine, statement: str) -> None:
    _append(migrated, 3)
    with migrated.connect() as conn:
        before = conn.execute(text("SELECT * FROM audit_event ORDER BY seq")).all()
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as conn:
        conn.execute(text(statement))
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT * FROM audit_event ORDER BY seq")).all() == before
    _append(migrated, 1)  # appending still works, and the chain is whole
    with make_session_factory(migrated)() as session:
        assert verify(session).ok
    assert _count(migrated) == 4


def test_truncate_is_refused_on_postgresql(migrated: Engine) -> None:
    if migrated.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (DELETE without WHERE is covered above)")
    _append(migrated, 2)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as conn:
        conn.execute(text("TRUNCATE audit_event"))
    assert _count(migrated) == 2


def test_a_superuser_can_still_tamper_and_the_chain_shows_it(migrated: Engine) -> None:
    """The triggers stop the application's account and mistakes; someone who can drop them
    is caught by the chain instead."""
    _append(migrated, 4)
    with migrated.begin() as conn:
        allow_audit_tampering(conn)
        conn.execute(text("UPDATE audit_event SET actor = 'someone else' WHERE seq = 2"))
    with make_session_factory(migrated)() as session:
        result = verify(session)
    assert not result.ok and result.first_bad_seq == 2


def test_downgrade_to_0006_removes_the_triggers(migrated: Engine) -> None:
    _append(migrated, 2)
    config = migrate.alembic_config()
    with migrated.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    with migrated.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 2"))  # no trigger any more
    migrate.upgrade(migrated)
    assert migrate.current_revision(migrated) == migrate.head_revision()
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    assert _count(migrated) == 1
