"""`portal backup` and `portal restore` through the real command line, on SQLite and
PostgreSQL: a populated portal (the demo) is backed up, restored into a fresh database with
its blobs copied over, and `portal audit verify` passes with the head recorded; every table
has the same rows. Bad input is refused with a clear message and loses nothing."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from portal import migrate
from portal.audit import record
from portal.backup.dump import BLOB_LIST, MANIFEST, PG_DUMP, SQLITE_COPY, pg_major_version
from portal.db import make_engine, make_session_factory, transaction
from portal.models import Base
from portal.registry.models import Item
from portal.rfa.search_indexes import TRIGRAM_INDEXES
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

FreshDatabase = Callable[[], str]


@pytest.fixture
def fresh_database(database: DatabaseUnderTest, tmp_path: Path) -> Iterator[FreshDatabase]:
    """Makes URLs of new, empty databases on the same backend (PostgreSQL: a new database
    on the server, with the same search_path, as an operator restoring would create)."""
    made: list[str] = []

    def make() -> str:
        name = f"r_{uuid.uuid4().hex[:12]}"
        if database.backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        admin = create_engine(make_url(database.url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        made.append(name)
        return make_url(database.url).set(database=name).render_as_string(hide_password=False)

    yield make
    if made:
        admin = create_engine(make_url(database.url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for name in made:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


def row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {
                table.name: conn.scalar(select(func.count()).select_from(table)) or 0
                for table in Base.metadata.sorted_tables
                if table.name in present
            }
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def blob_dir(portal: Portal) -> Path:
    return Path(portal.env["PORTAL_INSTANCE_DIR"]) / "data" / "blobs"


def populated(portal: Portal) -> str:
    """init + demo; returns the audit head."""
    assert portal("init").exit_code == 0
    demo = portal("demo")
    assert demo.exit_code == 0, demo.output
    return portal("audit", "head").output.strip()


def target(tmp_path: Path, url: str, *, blobs_from: Portal | None = None) -> Portal:
    instance = tmp_path / f"restored-{uuid.uuid4().hex[:6]}"
    restored = Portal(instance, url)
    if blobs_from is not None:  # what `rsync -a` of the blob store does
        shutil.copytree(blob_dir(blobs_from), blob_dir(restored))
    return restored


def test_round_trip(
    portal: Portal, database: DatabaseUnderTest, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    chain_head = populated(portal)
    before = row_counts(database.url)
    assert before["item"] > 0 and before["audit_event"] > 0 and before["user_account"] > 0

    dest = tmp_path / "backups" / "b1"
    made = portal("backup", str(dest))
    assert made.exit_code == 0, made.output
    assert chain_head in made.output

    dump = PG_DUMP if database.backend == "postgresql" else SQLITE_COPY
    assert sorted(p.name for p in dest.iterdir()) == sorted([dump, BLOB_LIST, MANIFEST])
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700  # owner only: it holds all case data
    assert {stat.S_IMODE(p.stat().st_mode) for p in dest.iterdir()} == {0o600}
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["database"] == database.backend
    assert manifest["alembic_revision"] == migrate.head_revision()
    assert manifest["audit_head"] == chain_head
    assert manifest["row_counts"] == before
    assert manifest["portal_version"] and manifest["created_at"]
    assert set(manifest["files"]) == {dump, BLOB_LIST}
    engine = make_engine(database.url)
    try:
        with engine.connect() as conn:
            item_blobs = set(conn.scalars(select(Item.sha256)))
    finally:
        engine.dispose()
    listed = (dest / BLOB_LIST).read_text().split()
    assert listed == sorted(listed) and set(listed) == item_blobs  # the demo: items only
    assert manifest["blobs"] == len(listed) and manifest["blobs_missing"] == []
    if database.backend == "postgresql":
        assert (dest / dump).read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
        # without the columns' compression settings: it restores on a server without lz4
        schema = subprocess.run(
            ["pg_restore", "--schema-only", "--file=-", str(dest / dump)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "CREATE TABLE" in schema and "SET COMPRESSION" not in schema
        assert manifest["pg_schema"] == database.schema

    url = fresh_database()
    restored = target(tmp_path, url, blobs_from=portal)
    done = restored("restore", str(dest))
    assert done.exit_code == 0, done.output
    assert f"audit chain intact: {before['audit_event']} events" in done.output
    assert "portal init" not in done.output  # same schema revision: no upgrade needed
    if database.backend == "sqlite":  # the restored database is private from the start
        restored_file = Path(url.removeprefix("sqlite:///"))
        assert stat.S_IMODE(restored_file.stat().st_mode) == 0o600
    # The secret key (session signing only) is configuration, not data: init makes a new
    # one when it was not restored with the instance's configuration.
    assert restored("init").exit_code == 0
    verified = restored("audit", "verify", "--anchor", chain_head)
    assert verified.exit_code == 0, verified.output
    assert row_counts(url) == before
    assert restored("audit", "head").output.strip() == chain_head
    restored_engine = make_engine(url)
    try:  # the append-only trigger came back with the schema
        with pytest.raises(DBAPIError, match="append-only"), restored_engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_event"))
        if database.backend == "postgresql":  # the search's trigram indexes were made again
            with restored_engine.connect() as conn:
                indexes = {index["name"] for index in inspect(conn).get_indexes("item")}
            assert set(TRIGRAM_INDEXES) <= indexes
            # restored without the dump's compression settings, then lz4 set again (0032)
            with restored_engine.connect() as conn:
                methods = conn.scalars(
                    text(
                        "SELECT attcompression FROM pg_attribute WHERE attrelid = "
                        "'decision'::regclass AND attname IN ('snapshot_json', 'results_json')"
                    )
                )
                assert list(methods) == ["l", "l"]
    finally:
        restored_engine.dispose()

    # The restored portal is a working portal: new events chain onto the old head.
    assert restored("demo").exit_code == 0
    assert restored("audit", "verify", "--anchor", chain_head).exit_code == 0

    # Restoring over a portal that has data is refused, and changes nothing.
    again = restored("restore", str(dest))
    assert again.exit_code == 1
    assert "not empty" in again.output
    assert restored("audit", "verify").exit_code == 0


def test_missing_and_damaged_blobs_are_listed_and_nothing_is_restored(
    portal: Portal, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    populated(portal)
    dest = tmp_path / "b"
    assert portal("backup", str(dest)).exit_code == 0
    listed = (dest / BLOB_LIST).read_text().split()
    assert len(listed) >= 3

    url = fresh_database()
    restored = target(tmp_path, url, blobs_from=portal)
    gone, bad = listed[0], listed[1]
    store = blob_dir(restored)
    (store / gone[:2] / gone[2:4] / gone).unlink()
    damaged = store / bad[:2] / bad[2:4] / bad
    damaged.write_bytes(damaged.read_bytes() + b"x")

    refused = restored("restore", str(dest))
    assert refused.exit_code == 1
    assert f"1 missing: {gone}" in refused.output
    assert "1 damaged" in refused.output and bad in refused.output
    assert table_names(url) == set()


def test_a_tampered_backup_is_refused(
    portal: Portal, fresh_database: FreshDatabase, tmp_path: Path, database: DatabaseUnderTest
) -> None:
    populated(portal)
    dest = tmp_path / "b"
    assert portal("backup", str(dest)).exit_code == 0
    dump = dest / (PG_DUMP if database.backend == "postgresql" else SQLITE_COPY)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    url = fresh_database()
    refused = target(tmp_path, url, blobs_from=portal)("restore", str(dest))
    assert refused.exit_code == 1
    assert "damaged" in refused.output and dump.name in refused.output
    assert table_names(url) == set()


def test_a_restore_whose_audit_head_differs_is_undone(
    portal: Portal, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    """The data went in but does not match what the backup recorded (here: the recorded
    head was edited, as if events had been cut from the dump's end): the target is left
    empty again."""
    populated(portal)
    dest = tmp_path / "b"
    assert portal("backup", str(dest)).exit_code == 0
    manifest = json.loads((dest / MANIFEST).read_text())
    seq, _digest = manifest["audit_head"].split(":")
    manifest["audit_head"] = f"{int(seq) + 1}:{'ab' * 32}"
    (dest / MANIFEST).write_text(json.dumps(manifest))

    url = fresh_database()
    refused = target(tmp_path, url, blobs_from=portal)("restore", str(dest))
    assert refused.exit_code == 1
    assert "audit" in refused.output and f"event {int(seq) + 1}" in refused.output
    assert table_names(url) == set()


def test_backup_needs_a_new_or_empty_destination(portal: Portal, tmp_path: Path) -> None:
    populated(portal)
    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    refused = portal("backup", str(dest))
    assert refused.exit_code == 1 and "not an empty directory" in refused.output
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert portal("backup", str(empty)).exit_code == 0
    assert (empty / MANIFEST).is_file()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_backup_of_a_database_without_schema_is_refused(portal: Portal, tmp_path: Path) -> None:
    refused = portal("backup", str(tmp_path / "b"))
    assert refused.exit_code == 1
    assert "portal init" in refused.output or "does not exist" in refused.output
    assert not (tmp_path / "b").exists()


def test_restore_of_something_that_is_not_a_backup(portal: Portal, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    refused = portal("restore", str(tmp_path / "nothing"))
    assert refused.exit_code == 1 and "not a portal backup" in refused.output


def test_a_backup_taken_while_the_portal_writes_is_consistent(
    portal: Portal, database: DatabaseUnderTest, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    """Audit events keep being appended (own connection) during the backup: what backup.json
    records (head, row counts) is exactly what the dump holds, so the restore's checks pass."""
    populated(portal)
    engine = make_engine(database.url)
    sessions = make_session_factory(engine)
    stop = threading.Event()
    appended: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                with transaction(sessions) as session:
                    record(session, "cli", "test.busy", f"n:{len(appended)}", {})
                appended.append(1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(appended) < 5:
            time.sleep(0.01)
        dest = tmp_path / "busy"
        made = portal("backup", str(dest))
        assert made.exit_code == 0, made.output
        while len(appended) < 20:  # the writer carried on after the snapshot
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=60)
        engine.dispose()
    assert not errors, errors
    recorded = json.loads((dest / MANIFEST).read_text())
    assert row_counts(database.url)["audit_event"] > recorded["row_counts"]["audit_event"]

    url = fresh_database()
    done = target(tmp_path, url, blobs_from=portal)("restore", str(dest))
    assert done.exit_code == 0, done.output
    assert row_counts(url) == recorded["row_counts"]


@pytest.mark.parametrize(
    ("version", "major"),
    [
        ("pg_dump (PostgreSQL) 13.16", 13),
        ("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n", 15),
        ("pg_dump (PostgreSQL) 16.4 (Debian 16.4-1.pgdg120+1)", 16),
        ("pg_dump (PostgreSQL) 17beta1", 17),
        ("pg_dump 9000", None),
    ],
)
def test_the_major_version_of_a_postgresql_tool(version: str, major: int | None) -> None:
    assert pg_major_version(version) == major
