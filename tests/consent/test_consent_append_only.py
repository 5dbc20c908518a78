"""The consent ledger is append-only in the database itself (migration 0004): raw SQL
UPDATE and DELETE of a consent event are refused on both backends, while inserting new
events still works. Also: a standing consent covers items registered after it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal import migrate
from portal.consent.ledger import current_state, decline, grant
from portal.db import make_engine
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make
from tests.support.ledger_world import EARLY, NOW, consent_world

SEED = [
    "INSERT INTO provider (code, name, kind, public_name, created_at)"
    " VALUES ('P1', 'Provider one', 'ngo', 'NGO one', CURRENT_TIMESTAMP)",
    "INSERT INTO authority (code, name, kind, country, created_at)"
    " VALUES ('A1', 'Authority one', 'court', 'XX', CURRENT_TIMESTAMP)",
    "INSERT INTO consent (code, provider_id, item_id, authority_id, event, purpose,"
    " conditions, recorded_at) VALUES ('CNS-1', (SELECT id FROM provider),"
    " NULL, (SELECT id FROM authority), 'grant', 'criminal_proceedings', '',"
    " CURRENT_TIMESTAMP)",
]


def test_raw_sql_cannot_change_or_delete_a_consent_event(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
        for statement in (
            "UPDATE consent SET event = 'decline', reason = 'changed'",
            "UPDATE consent SET expires_at = CURRENT_TIMESTAMP",
            "DELETE FROM consent",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
        with engine.begin() as connection:
            # Appending is what the ledger is for: a revoke event goes in.
            connection.execute(
                text(
                    "INSERT INTO consent (code, provider_id, item_id, authority_id, event,"
                    " purpose, conditions, reason, recorded_at) VALUES ('CNS-2',"
                    " (SELECT id FROM provider), NULL, (SELECT id FROM authority), 'revoke',"
                    " 'criminal_proceedings', '', 'withdrawn', CURRENT_TIMESTAMP)"
                )
            )
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT code, event FROM consent ORDER BY code"))
            assert [tuple(r) for r in rows] == [("CNS-1", "grant"), ("CNS-2", "revoke")]
    finally:
        engine.dispose()


def test_downgrade_to_0003_removes_the_triggers(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine, "0004")  # (later revisions have downgrades of their own)
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
        with engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
            connection.execute(text("DELETE FROM consent"))  # no trigger any more
        migrate.upgrade(engine, "0004")
        assert migrate.current_revision(engine) == "0004"
        with engine.begin() as connection:
            connection.execute(text(SEED[-1]))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text("DELETE FROM consent"))
    finally:
        engine.dispose()


def test_standing_consent_covers_items_registered_later(session: Session) -> None:
    authority, provider, items, rep = consent_world(session)
    grant(session, provider, authority, items=None, by=rep, now=EARLY)
    later = make.item(session, provider)  # registered after the standing grant
    decline(
        session, provider, authority, items=[items[0]], reason="Not this one.", by=rep,
        now=EARLY + timedelta(days=1),
    )  # fmt: skip
    ids = [items[0].id, items[1].id, later.id]
    states = current_state(session, provider.id, authority.id, ids, now=NOW)
    assert [states[i].status for i in ids] == ["declined", "granted", "granted"]
    assert states[later.id].scope == "standing"
