"""Shared fixtures.

Database tests run on SQLite always and on PostgreSQL when
``PORTAL_TEST_DATABASE_URL`` is set (CI sets it). Each PostgreSQL test gets a
schema of its own, so parallel runs cannot see each other's rows. When the
variable is set but the server cannot be reached, the test fails: CI must not
pass by skipping. The suite runs in parallel processes (pytest-xdist, ``make pytest``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from portal.config import REPO_ROOT, Settings
from portal.db import make_engine, make_session_factory, normalize_url
from portal.models import Base
from portal.rfa.search_indexes import INSTALL_LOCK, extension_schema

PG_ENV = "PORTAL_TEST_DATABASE_URL"
REDIS_ENV = "PORTAL_TEST_REDIS_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} to run this test on PostgreSQL")
    return normalize_url(url)


def _keep_pg_trgm_in_public(admin: Engine) -> None:
    """pg_trgm in the ``public`` schema, which no test drops.

    The search's migration installs pg_trgm into the first schema on the search path
    when the database lacks it (``portal.rfa.search_indexes``): a test's own schema. Another
    process's test would then use it, and dropping that schema at teardown would drop the
    extension under it ("referenced operator class was concurrently dropped")."""
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INSTALL_LOCK})
            schema = extension_schema(conn)
            if schema is None:
                conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA public"))
            elif schema != "public":  # left in a test's schema by a run that was killed
                conn.execute(text("ALTER EXTENSION pg_trgm SET SCHEMA public"))
    except DBAPIError as exc:
        pytest.fail(
            f"pg_trgm could not be put in the public schema of the test database ({exc.orig}):"
            " the PostgreSQL tests need it there (install PostgreSQL's contrib extensions, or"
            " connect as a user who may CREATE EXTENSION)",
            pytrace=False,
        )


_trgm_kept: set[str] = set()


@dataclass
class DatabaseUnderTest:
    url: str
    backend: str
    schema: str | None = None


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseUnderTest]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield DatabaseUnderTest(url=f"sqlite:///{tmp_path / 'test.db'}", backend="sqlite")
        return
    base = _postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(base)
    if base not in _trgm_kept:
        try:
            _keep_pg_trgm_in_public(admin)
        except BaseException:
            admin.dispose()
            raise
        _trgm_kept.add(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield DatabaseUnderTest(url=url, backend="postgresql", schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    """An engine on a database with every table created from the models."""
    eng = make_engine(database.url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path, database: DatabaseUnderTest) -> Settings:
    """Settings for a test portal whose database has the tables (via ``engine``)."""
    instance = tmp_path / "instance"
    return Settings(
        instance_dir=instance,
        database_url=database.url,
        data_dir=instance / "data",
        policies_dir=REPO_ROOT / "policies",
        templates_dir=REPO_ROOT / "templates",
        secret_key_file=instance / "secret_key",
        testing=True,
    )


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis not configured: set {REDIS_ENV} to run this test against Redis")
    return url
