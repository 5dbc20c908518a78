"""``portal restore``: a backup (see :mod:`portal.backup.dump`) into an empty database.

Restore only goes into an empty database and checks, before the portal can use it: the
files' hashes, the Alembic revision, the blobs, the whole audit chain and that its head is
the one recorded. When a check fails after the data went in, the restored tables are
removed again (SQLite: the copy never replaces the target; PostgreSQL: the schema is
emptied), so a failed restore leaves the target as empty as it was.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.orm import Session

from portal import migrate
from portal.audit import ChainHead, head, verify
from portal.backup.dump import (
    BLOB_LIST,
    PG_DUMP,
    SHOWN,
    SQLITE_COPY,
    BackupError,
    BackupManifest,
    fsync_file,
    libpq,
    pg_tool,
    read_backup,
    run_tool,
)
from portal.config import Settings
from portal.db import make_engine
from portal.eligibility.record_compression import compress_decision_records
from portal.rfa.search_indexes import TRIGRAM_INDEXES, create_trigram_indexes
from portal.storage import BlobNotFound, DigestMismatch, FileBlobStore, fsync_dir

#: an index in pg_restore --list: "215; 1259 16404 INDEX public ix_item_title_trgm owner"
_TOC_INDEX = re.compile(r"^\d+; \d+ \d+ INDEX \S+ (?P<name>\S+)")


@dataclass(frozen=True)
class RestoreResult:
    manifest: BackupManifest
    audit_message: str
    upgrade_needed: bool


# --------------------------------------------------------------------------- restore


def restore(settings: Settings, src: Path) -> RestoreResult:
    """Restore the backup in ``src`` into the (empty) database and check it."""
    manifest = read_backup(src)
    _check_revision_known(manifest.alembic_revision)
    engine = make_engine(settings.database_url)
    try:
        if engine.dialect.name != manifest.database:
            raise BackupError(
                f"the backup is of a {manifest.database} database but PORTAL_DATABASE_URL "
                f"is {engine.dialect.name}"
            )
        _check_blobs(settings, src)
        if manifest.database == "sqlite":
            message = _restore_sqlite(engine, src, manifest)
        else:
            message = _restore_postgresql(engine, settings.database_url, src, manifest)
    finally:
        engine.dispose()
    return RestoreResult(
        manifest, message, upgrade_needed=manifest.alembic_revision != migrate.head_revision()
    )


def _check_revision_known(revision: str) -> None:
    try:
        known = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise BackupError(
            f"the backup's schema revision {revision} is unknown to this portal version "
            f"(made by a newer version?); restore with the version that made it"
        )


def _check_blobs(settings: Settings, src: Path) -> None:
    store = FileBlobStore(settings.blob_dir)
    missing: list[str] = []
    damaged: list[str] = []
    for line in (src / BLOB_LIST).read_text(encoding="ascii").splitlines():
        digest = line.strip()
        try:
            store.verify(digest)
        except BlobNotFound:
            missing.append(digest)
        except DigestMismatch:
            damaged.append(digest)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: " + _listing(missing))
    if damaged:
        problems.append(
            f"{len(damaged)} damaged (bytes differ from their digest): " + _listing(damaged)
        )
    if problems:
        raise BackupError(
            f"the blob store {store.root} does not hold the backup's blobs (copy them first, "
            "e.g. rsync -a BACKUP_BLOBS/ " + f"{store.root}/); " + "; ".join(problems)
        )


def _listing(digests: list[str]) -> str:
    shown = ", ".join(digests[:SHOWN])
    return shown + (f" and {len(digests) - SHOWN} more" if len(digests) > SHOWN else "")


def _check_restored(conn: Connection, manifest: BackupManifest) -> str:
    """Revision, row counts, audit chain and head as recorded; the chain's message."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision != manifest.alembic_revision:
        raise BackupError(
            f"the restored schema is at revision {revision}, the backup recorded "
            f"{manifest.alembic_revision}"
        )
    recorded = ChainHead.parse(manifest.audit_head)
    with Session(bind=conn) as session:
        result = verify(session, anchor=recorded)
        restored_head = head(session)
    if not result.ok:
        raise BackupError(f"the restored audit log does not verify: {result.message()}")
    if restored_head != recorded:
        raise BackupError(
            f"the restored audit head is {restored_head}, the backup recorded {recorded}"
        )
    for table, count in sorted(manifest.row_counts.items()):
        found = conn.scalar(text(f'SELECT count(*) FROM "{table}"'))  # noqa: S608 - names from Base
        if found != count:
            raise BackupError(f"table {table}: {found} rows restored, {count} recorded")
    return result.message()


def _restore_sqlite(engine: Engine, src: Path, manifest: BackupManifest) -> str:
    target_name = engine.url.database
    if not target_name or target_name == ":memory:" or target_name.startswith("file:"):
        raise BackupError(f"cannot restore into the SQLite database {target_name!r}")
    target = Path(target_name)
    if target.exists() and _has_tables(engine):
        raise BackupError(f"{target} is not empty; restore only into a new, empty database")
    engine.dispose()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    candidate = target.parent / f".{target.name}.restore-{secrets.token_hex(4)}"
    try:
        os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner only
        shutil.copyfile(src / SQLITE_COPY, candidate)
        fsync_file(candidate)
        reader = create_engine(f"sqlite:///{candidate}")
        try:
            with reader.connect() as conn:
                message = _check_restored(conn, manifest)
        finally:
            reader.dispose()
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)  # of the empty database being replaced
        os.replace(candidate, target)
        fsync_dir(target.parent)
    finally:
        candidate.unlink(missing_ok=True)
    return message


def _has_tables(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(inspect(conn).get_table_names())


def _restore_postgresql(
    engine: Engine, database_url: str, src: Path, manifest: BackupManifest
) -> str:
    pg_restore = pg_tool("pg_restore")
    schema = manifest.pg_schema or "public"
    with engine.connect() as conn:
        _check_pg_target(conn, schema)
        existed = bool(
            conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema})
        )
    url, env = libpq(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-restore-") as work:
            use_list = Path(work) / "toc.list"
            toc = run_tool([pg_restore, "--list", str(src / PG_DUMP)], env, "pg_restore --list")
            use_list.write_text(_without_trigram_indexes(toc), encoding="utf-8")
            # --clean --if-exists: drop-if-present of the dump's own objects (the target was
            # checked to hold nothing), so even the dump's CREATE SCHEMA public goes through.
            run_tool(
                [pg_restore, "--single-transaction", "--exit-on-error", "--no-owner",
                 "--no-privileges", "--clean", "--if-exists", f"--use-list={use_list}",
                 f"--dbname={url}", str(src / PG_DUMP)],
                env,
                "pg_restore",
            )  # fmt: skip
        with engine.begin() as conn:
            revision = _check_restored(conn, manifest)
            create_trigram_indexes(conn)
            compress_decision_records(conn)
        return revision
    except BaseException:
        _empty_schema(engine, schema, recreate=existed)
        raise


def _without_trigram_indexes(toc: str) -> str:
    """pg_restore's table of contents without the search's trigram indexes: their operator
    class belongs to the pg_trgm extension, which a dump of one schema does not carry and
    the target may not have yet. They are made afresh after the data is in."""
    kept = []
    for line in toc.splitlines():
        index = _TOC_INDEX.match(line)
        if index is None or index["name"] not in TRIGRAM_INDEXES:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _check_pg_target(conn: Connection, schema: str) -> None:
    """The target holds no relations in ``schema`` and will use ``schema`` afterwards."""
    relations = conn.scalar(
        text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :s"
        ),
        {"s": schema},
    )
    if relations:
        raise BackupError(
            f"schema {schema} of the target database is not empty; restore only into a new, "
            "empty database"
        )
    search_path = str(conn.scalar(text("SHOW search_path")) or "")
    user = str(conn.scalar(text("SELECT current_user")))
    existing = set(conn.scalars(text("SELECT nspname FROM pg_namespace")))
    for entry in (part.strip().strip('"') for part in search_path.split(",")):
        name = user if entry == "$user" else entry
        if name == schema:
            return
        if name in existing:
            break
    raise BackupError(
        f"the backup holds schema {schema}, but the target's search_path ({search_path}) "
        f"would not use it; set PORTAL_DATABASE_URL's options=-csearch_path={schema}"
    )


def _empty_schema(engine: Engine, schema: str, *, recreate: bool) -> None:
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        if recreate:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
