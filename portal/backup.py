"""``portal backup`` and ``portal restore``: a consistent database dump plus the blob list.

A backup is a directory::

    database.dump      PostgreSQL: pg_dump --format=custom (one schema)
    database.sqlite3   SQLite: a copy made with the online backup API
    blobs.txt          every blob digest the database refers to that is in the store
    backup.json        portal version, Alembic revision, time, database kind, audit head
                       (SEQ:HASH), row counts, sha256 of the other files

Everything in ``backup.json`` and ``blobs.txt`` is read from the same snapshot as the
dump (PostgreSQL: an exported snapshot handed to ``pg_dump --snapshot``; SQLite: the
copy itself), so they describe exactly what was dumped.

The blob store is content-addressed and append-only, so it is copied with any file copy
(``rsync -a``), before or after the dump: a blob is never changed once written. Restore
checks that every listed digest is in the target store and still hashes to its name.

Restore only goes into an empty database and checks, before the portal can use it: the
files' hashes, the Alembic revision, the blobs, the whole audit chain and that its head is
the one recorded. When a check fails after the data went in, the restored tables are
removed again (SQLite: the copy never replaces the target; PostgreSQL: the schema is
emptied), so a failed restore leaves the target as empty as it was.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal import migrate
from portal.audit import ChainHead, head, verify
from portal.config import Settings
from portal.db import make_engine, normalize_url
from portal.models import Base
from portal.packages.models import Package, PackageItem, Recall
from portal.registry.models import Item
from portal.rfa.models import Assurance, Attachment
from portal.rfa.search_indexes import TRIGRAM_INDEXES, create_trigram_indexes
from portal.storage import BlobNotFound, DigestMismatch, FileBlobStore, file_sha256, fsync_dir

__all__ = [
    "BACKUP_FORMAT",
    "BLOB_COLUMNS",
    "BackupError",
    "BackupManifest",
    "RestoreResult",
    "backup",
    "restore",
]

BACKUP_FORMAT = 1
MANIFEST = "backup.json"
BLOB_LIST = "blobs.txt"
PG_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite3"
#: an index in pg_restore --list: "215; 1259 16404 INDEX public ix_item_title_trgm owner"
_TOC_INDEX = re.compile(r"^\d+; \d+ \d+ INDEX \S+ (?P<name>\S+)")

# Columns whose values are keys of blobs the portal keeps in its store. (Renditions live
# only inside the encrypted package, so package_item.rendition_sha256 is not one.)
BLOB_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Item.sha256,
    PackageItem.source_sha256,
    Attachment.sha256,
    Assurance.sha256,
    Package.file_sha256,
    Package.signature_sha256,
    Recall.notice_sha256,
)
_SHOWN = 20  # digests named in an error message; the rest are counted


class BackupError(Exception):
    """A backup or restore was refused or failed; the message says why and what to do."""


@dataclass(frozen=True)
class BackupManifest:
    """What ``backup.json`` records."""

    portal_version: str
    alembic_revision: str
    created_at: str
    database: str
    audit_head: str
    row_counts: dict[str, int]
    blobs: int
    blobs_missing: list[str]
    files: dict[str, str]
    pg_schema: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": BACKUP_FORMAT, **self.__dict__}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BackupManifest:
        if data.get("format") != BACKUP_FORMAT:
            raise BackupError(f"{MANIFEST}: unknown backup format {data.get('format')!r}")
        try:
            fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
            manifest = cls(**fields)
            ChainHead.parse(manifest.audit_head)
        except (TypeError, ValueError) as exc:
            raise BackupError(f"{MANIFEST} is not a valid backup description: {exc}") from None
        if manifest.database not in ("sqlite", "postgresql"):
            raise BackupError(f"{MANIFEST}: unknown database kind {manifest.database!r}")
        return manifest


@dataclass(frozen=True)
class RestoreResult:
    manifest: BackupManifest
    audit_message: str
    upgrade_needed: bool


# --------------------------------------------------------------------------- backup


def backup(settings: Settings, dest: Path) -> BackupManifest:
    """Write a backup of the portal at ``settings`` into ``dest`` (absent or empty).

    The directory appears complete or not at all: it is written beside ``dest`` and
    renamed into place at the end.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory; choose a new one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    try:
        engine = make_engine(settings.database_url)
        try:
            if engine.dialect.name == "sqlite":
                facts = _dump_sqlite(engine, staging)
            elif engine.dialect.name == "postgresql":
                facts = _dump_postgresql(engine, settings.database_url, staging)
            else:
                raise BackupError(f"cannot back up a {engine.dialect.name} database")
        finally:
            engine.dispose()
        manifest = _write_listing(settings, staging, facts)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
        fsync_dir(dest.parent)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass(frozen=True)
class _Facts:
    database: str
    file: str
    revision: str
    audit_head: ChainHead
    row_counts: dict[str, int]
    blob_refs: frozenset[str]
    pg_schema: str | None = None


def _facts(conn: Connection, database: str, file: str, schema: str | None = None) -> _Facts:
    """What the backup records, read through ``conn`` (the snapshot being dumped)."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None:
        raise BackupError("the database has no schema yet (run `portal init`); nothing to back up")
    present = set(inspect(conn).get_table_names())
    counts = {
        table.name: int(conn.scalar(select(func.count()).select_from(table)) or 0)
        for table in Base.metadata.sorted_tables
        if table.name in present
    }
    refs: set[str] = set()
    for column in BLOB_COLUMNS:
        refs.update(conn.scalars(select(column).where(column.is_not(None)).distinct()))
    with Session(bind=conn) as session:
        chain_head = head(session)
    return _Facts(database, file, revision, chain_head, counts, frozenset(refs), schema)


def _dump_sqlite(engine: Engine, staging: Path) -> _Facts:
    source = engine.url.database
    if not source or source == ":memory:" or source.startswith("file:"):
        raise BackupError(f"cannot back up the SQLite database {source!r}; use a file path")
    if not Path(source).is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    copy = staging / SQLITE_COPY
    src = sqlite3.connect(source, timeout=15)
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # a consistent snapshot, even while the portal writes
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    reader = create_engine(f"sqlite:///{copy}")
    try:
        with reader.connect() as conn:
            return _facts(conn, "sqlite", SQLITE_COPY)
    finally:
        reader.dispose()


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump/pg_restore and the environment carrying the password
    (never on the command line, where ``ps`` shows it)."""
    url = make_url(normalize_url(database_url))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client tools "
            "(Debian: postgresql-client, the same major version as the server or newer)"
        )
    return found


def _run(args: Sequence[str], env: Mapping[str, str], what: str) -> str:
    """Run a PostgreSQL client tool; its standard output."""
    done = subprocess.run(  # noqa: S603 - fixed tool, arguments are ours
        list(args), env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(
            f"{what} failed: " + ("; ".join(detail[-5:]) or f"exit {done.returncode}")
        )
    return done.stdout


def _dump_postgresql(engine: Engine, database_url: str, staging: Path) -> _Facts:
    pg_dump = _tool("pg_dump")
    url, env = _libpq(database_url)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
        schema = conn.scalar(text("SELECT current_schema()"))
        if not isinstance(snapshot, str) or not isinstance(schema, str):
            raise BackupError("could not take a database snapshot (no schema on the search path?)")
        facts = _facts(conn, "postgresql", PG_DUMP, schema)
        # The snapshot lives as long as this transaction: dump while it is open.
        _run(
            [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--schema={schema}",
             f"--file={staging / PG_DUMP}", f"--dbname={url}"],
            env,
            "pg_dump",
        )  # fmt: skip
        conn.rollback()
    return facts


def _write_listing(settings: Settings, staging: Path, facts: _Facts) -> BackupManifest:
    store = FileBlobStore(settings.blob_dir)
    present = sorted(digest for digest in facts.blob_refs if store.exists(digest))
    missing = sorted(facts.blob_refs.difference(present))
    (staging / BLOB_LIST).write_text("".join(f"{digest}\n" for digest in present))
    files = {name: file_sha256(staging / name)[0] for name in (facts.file, BLOB_LIST)}
    manifest = BackupManifest(
        portal_version=_portal_version(),
        alembic_revision=facts.revision,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        database=facts.database,
        audit_head=str(facts.audit_head),
        row_counts=facts.row_counts,
        blobs=len(present),
        blobs_missing=missing,
        files=files,
        pg_schema=facts.pg_schema,
    )
    (staging / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    for name in (*files, MANIFEST):
        _fsync_file(staging / name)
    fsync_dir(staging)
    return manifest


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


def read_backup(src: Path) -> BackupManifest:
    """The backup's description, after checking every file it lists hashes as recorded."""
    try:
        data = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{src} is not a portal backup (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{src / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise BackupError(f"{src / MANIFEST} is not a portal backup description")
    manifest = BackupManifest.from_json(data)
    expected = {PG_DUMP if manifest.database == "postgresql" else SQLITE_COPY, BLOB_LIST}
    if set(manifest.files) != expected:
        raise BackupError(f"{MANIFEST} lists {sorted(manifest.files)}, expected {sorted(expected)}")
    for name, digest in sorted(manifest.files.items()):
        path = src / name
        if not path.is_file():
            raise BackupError(f"the backup is incomplete: {name} is missing")
        if file_sha256(path)[0] != digest:
            raise BackupError(f"the backup is damaged: {name} does not match its recorded sha256")
    return manifest


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
    shown = ", ".join(digests[:_SHOWN])
    return shown + (f" and {len(digests) - _SHOWN} more" if len(digests) > _SHOWN else "")


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
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate = target.parent / f".{target.name}.restore-{secrets.token_hex(4)}"
    try:
        shutil.copyfile(src / SQLITE_COPY, candidate)
        _fsync_file(candidate)
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
    pg_restore = _tool("pg_restore")
    schema = manifest.pg_schema or "public"
    with engine.connect() as conn:
        _check_pg_target(conn, schema)
        existed = bool(
            conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema})
        )
    url, env = _libpq(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="portal-restore-") as work:
            use_list = Path(work) / "toc.list"
            toc = _run([pg_restore, "--list", str(src / PG_DUMP)], env, "pg_restore --list")
            use_list.write_text(_without_trigram_indexes(toc), encoding="utf-8")
            # --clean --if-exists: drop-if-present of the dump's own objects (the target was
            # checked to hold nothing), so even the dump's CREATE SCHEMA public goes through.
            _run(
                [pg_restore, "--single-transaction", "--exit-on-error", "--no-owner",
                 "--no-privileges", "--clean", "--if-exists", f"--use-list={use_list}",
                 f"--dbname={url}", str(src / PG_DUMP)],
                env,
                "pg_restore",
            )  # fmt: skip
        with engine.begin() as conn:
            revision = _check_restored(conn, manifest)
            create_trigram_indexes(conn)
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


# --------------------------------------------------------------------------- helpers


def _portal_version() -> str:
    try:
        return metadata.version("sharing-portal")
    except metadata.PackageNotFoundError:
        return "unknown"


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
