"""Schema migrations (Alembic) driven from Python, so `portal init` needs no alembic.ini."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from portal.config import REPO_ROOT
from portal.rfa.search_fts import FTS_TABLES
from portal.rfa.search_indexes import TRIGRAM_INDEXES
from portal.sealing import Sealer

MIGRATIONS_DIR = REPO_ROOT / "migrations"

#: Indexes the migrations make that the models cannot declare: PostgreSQL trigram indexes
#: for the repository search (0009), which need the pg_trgm extension's operator class.
DATABASE_ONLY_INDEXES = frozenset(TRIGRAM_INDEXES)
#: Tables the migrations make that the models cannot declare: SQLite's full-text index for
#: the repository search (0029) and its shadow tables.
DATABASE_ONLY_TABLES = FTS_TABLES


def compared_with_models(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object`` hook: everything except :data:`DATABASE_ONLY_INDEXES`
    and :data:`DATABASE_ONLY_TABLES`."""
    if type_ == "index":
        return not (reflected and name in DATABASE_ONLY_INDEXES)
    return not (type_ == "table" and reflected and name in DATABASE_ONLY_TABLES)


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # ConfigParser interpolation would choke on '%' in URL-encoded options.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head", *, sealer: Sealer | None = None) -> None:
    """Bring the database at ``engine`` up to ``revision``. ``sealer`` is the portal's, for
    migrations that seal values already stored (0012 seals the terms of term marks): without
    it, such a migration refuses a database that holds any."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["sealer"] = sealer
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
