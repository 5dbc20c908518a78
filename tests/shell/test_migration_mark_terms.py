"""Migration 0012 seals the terms of term marks already stored, with the portal's key."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from portal import migrate
from portal.db import make_engine
from portal.registry.mark_terms import purpose
from portal.sealing import Sealer, SealingKeyUnavailable
from tests.conftest import DatabaseUnderTest

TERM = "Amar Fictus"


def _engine_at_0011_with_a_term_mark(database: DatabaseUnderTest) -> Engine:
    engine = make_engine(database.url)
    migrate.upgrade(engine, "0011")
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO provider (code, name, kind, public_name, created_at)"
            " VALUES ('PRV-1', 'p', 'ngo', 'p', CURRENT_TIMESTAMP)",
            "INSERT INTO item (code, provider_id, kind, title, description, media_type,"
            " original_filename, size_bytes, sha256, place, sensitivity, tags, cleared_as_is,"
            " created_at) VALUES ('ITM-1', (SELECT id FROM provider), 'document', 't', '',"
            " 'text/plain', 'a.txt', 1, '" + "a" * 64 + "', '', 'low', '[]', false,"
            " CURRENT_TIMESTAMP)",
        ):
            connection.execute(text(statement))
        connection.execute(
            text(
                "INSERT INTO redaction_mark (code, item_id, kind, term, reason, applies, review,"
                " created_at) VALUES ('M-1', (SELECT id FROM item), 'term', :term, 'r',"
                " 'always', 'confirmed', CURRENT_TIMESTAMP)"
            ),
            {"term": TERM},
        )
    return engine


def _sealed(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.scalar(text("SELECT term_sealed FROM redaction_mark")))


def test_the_upgrade_seals_stored_terms_and_the_downgrade_opens_them(
    database: DatabaseUnderTest,
) -> None:
    engine = _engine_at_0011_with_a_term_mark(database)
    sealer = Sealer.random()
    try:
        migrate.upgrade(engine, sealer=sealer)
        sealed = _sealed(engine)
        assert TERM not in sealed
        assert sealer.unseal(sealed, purpose("ITM-1", "M-1")) == TERM
        with engine.connect() as connection:
            columns = connection.execute(text("SELECT * FROM redaction_mark")).keys()
        assert "term" not in columns
        # the kind_fields check now asks a term mark for its sealed term
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO redaction_mark (code, item_id, kind, reason, applies, review,"
                    " created_at) VALUES ('M-2', (SELECT id FROM item), 'term', 'r', 'always',"
                    " 'confirmed', CURRENT_TIMESTAMP)"
                )
            )
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes.update(connection=connection, sealer=sealer)
            command.downgrade(config, "0011")
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT term FROM redaction_mark")) == TERM
    finally:
        engine.dispose()


def test_without_the_key_a_database_with_terms_is_refused_unchanged(
    database: DatabaseUnderTest,
) -> None:
    engine = _engine_at_0011_with_a_term_mark(database)
    try:
        with pytest.raises(SealingKeyUnavailable, match="1 redaction mark term") as refused:
            migrate.upgrade(engine)
        assert TERM not in str(refused.value)
        assert migrate.current_revision(engine) == "0011"
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT term FROM redaction_mark")) == TERM
    finally:
        engine.dispose()
