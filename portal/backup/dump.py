"""``portal backup``: a consistent database dump plus the blob list (and reading one back).

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
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal.audit import ChainHead, head
from portal.config import Settings
from portal.db import make_engine, normalize_url
from portal.models import Base
from portal.packages.models import Package, PackageItem, Recall
from portal.registry.models import Item
from portal.rfa.models import Assurance, Attachment
from portal.storage import FileBlobStore, file_sha256, fsync_dir

BACKUP_FORMAT = 1
MANIFEST = "backup.json"
BLOB_LIST = "blobs.txt"
PG_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite3"

log = logging.getLogger(__name__)

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
SHOWN = 20  # digests named in an error message; the rest are counted


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
        for written in staging.iterdir():  # the database copy and what describes it: owner only
            written.chmod(0o600)
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


def libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL for pg_dump/pg_restore and the environment carrying the password
    (never on the command line, where ``ps`` shows it)."""
    url = make_url(normalize_url(database_url))
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client tools "
            "(Debian: postgresql-client, the same major version as the server or newer)"
        )
    return found


def run_tool(args: Sequence[str], env: Mapping[str, str], what: str) -> str:
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


def _without_compression_settings(pg_dump: str, env: Mapping[str, str]) -> list[str]:
    """``--no-toast-compression`` where pg_dump has it (14 or later): the dump then restores
    on a server built without lz4 too; ``portal restore`` sets the decision records'
    compression again, as far as the target can (see portal.eligibility.record_compression)."""
    version = run_tool([pg_dump, "--version"], env, "pg_dump --version")
    major = pg_major_version(version)
    if major is None:
        log.warning(
            "pg_dump's version not recognised (%s): the dump keeps its columns' compression "
            "settings",
            version.strip()[:80],
        )
        return []
    return ["--no-toast-compression"] if major >= 14 else []


def pg_major_version(version: str) -> int | None:
    """The major version in a PostgreSQL tool's ``--version`` ("pg_dump (PostgreSQL) 15.20")."""
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", version)
    return None if found is None else int(found.group(1))


def _dump_postgresql(engine: Engine, database_url: str, staging: Path) -> _Facts:
    pg_dump = pg_tool("pg_dump")
    url, env = libpq(database_url)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
        schema = conn.scalar(text("SELECT current_schema()"))
        if not isinstance(snapshot, str) or not isinstance(schema, str):
            raise BackupError("could not take a database snapshot (no schema on the search path?)")
        facts = _facts(conn, "postgresql", PG_DUMP, schema)
        # The snapshot lives as long as this transaction: dump while it is open.
        run_tool(
            [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--schema={schema}",
             *_without_compression_settings(pg_dump, env),
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
        fsync_file(staging / name)
    fsync_dir(staging)
    return manifest


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


# --------------------------------------------------------------------------- helpers


def _portal_version() -> str:
    try:
        return metadata.version("sharing-portal")
    except metadata.PackageNotFoundError:
        return "unknown"


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
