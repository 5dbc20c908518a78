"""Throw-away databases for the benchmarks: a temporary SQLite file, or a PostgreSQL schema
of its own that is dropped afterwards. Both are migrated to head as ``portal init`` does, so
a benchmark measures the production schema: its indexes, statistics and triggers included
(the models alone lack the PostgreSQL search statistics and trigram indexes)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, make_url, text

from portal.db import make_engine, normalize_url
from portal.migrate import upgrade


@contextmanager
def sqlite_engine(prefix: str = "bench-") -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(url: str) -> Iterator[Engine]:
    base = normalize_url(url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    engine = make_engine(f"{base}{separator}options={quote(f'-csearch_path={schema}')}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_database(url: str, name: str, *, recreate: bool = False) -> str:
    """The URL of database ``name`` on the server of ``url``, created when missing (dropped
    and created again when ``recreate``). For benchmarks that keep their data between runs;
    only ever pass a name that belongs to the benchmark."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    base = make_url(normalize_url(url))
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if exists and recreate:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
