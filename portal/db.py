"""Database engine, declarative base, column helpers, the append-only guard and the
per-request session."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from flask import g
from sqlalchemy import (
    CheckConstraint,
    Connection,
    DateTime,
    Engine,
    MetaData,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    ORMExecuteState,
    QueryableAttribute,
    Session,
    UOWTransaction,
    sessionmaker,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

_T = TypeVar("_T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware_utc(moment: datetime | None) -> datetime:
    """``moment`` in UTC, or now when None. Naive datetimes are refused, as the columns do:
    a local time must never pass for UTC."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime given; use a timezone-aware UTC datetime")
    return moment.astimezone(UTC)


def stored_utc(value: datetime) -> datetime:
    """A timestamp as the database returns it, in UTC (SQLite hands back naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zones; naive values read back are UTC by construction,
    and naive values written are refused so local times never sneak in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else aware_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else stored_utc(value)


HEX_DIGITS = "0123456789abcdef"


def one_of(column: str, values: Iterable[str], name: str | None = None) -> CheckConstraint:
    """A check constraint restricting ``column`` to ``values`` (an enum stored as text)."""
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_valid")


def hex_digest(column: str, length: int = 64) -> CheckConstraint:
    """``column`` is NULL or exactly ``length`` lowercase hex digits.

    Written with nested ``replace`` so the same SQL works on SQLite and PostgreSQL.
    """
    stripped = column
    for digit in HEX_DIGITS:
        stripped = f"replace({stripped}, '{digit}', '')"
    return CheckConstraint(
        f"{column} IS NULL OR (length({column}) = {length} AND {stripped} = '')",
        name=f"{column}_hex",
    )


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: Connection, _name: str | None) -> None:
    """Open the transaction before a SAVEPOINT on SQLite.

    pysqlite begins a transaction only before INSERT/UPDATE/DELETE, so a SAVEPOINT issued
    first would start one of its own, and releasing it would COMMIT: work done inside
    ``begin_nested()`` would survive a rollback of the enclosing transaction. ``BEGIN
    IMMEDIATE`` takes the write lock at once (waiting up to the busy timeout), which is what
    the nested block is about to need anyway.
    """
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is not None and not getattr(dbapi_connection, "in_transaction", True):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def serialize_on(db: Session, table: type[Any], row_id: int) -> None:
    """Make the writers that depend on one row take turns until this transaction ends: check,
    then write, without another writer doing the same in between (two revocations of one
    consent, two packages for one request).

    PostgreSQL locks the row (``SELECT … FOR UPDATE``); what is read after the lock is what
    the previous writer committed. SQLite has no row locks: it takes the database's write lock
    (``BEGIN IMMEDIATE``, waiting up to the busy timeout) unless this transaction holds it.
    """
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and not getattr(dbapi_connection, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    db.execute(select(table.id).where(table.id == row_id).with_for_update())


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _private_sqlite_file(url: str) -> None:
    """Create a missing SQLite database file empty with mode 0600 (SQLite would use the umask;
    its WAL files take the database file's mode)."""
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if path.exists() or not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        # A connection reads the planner's statistics when it opens, and keeps them: renewed
        # as often as portal worker refreshes them (see refresh_planner_statistics).
        kwargs.setdefault("pool_recycle", STATISTICS_INTERVAL)
        engine = create_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _note_checkin)  # a new connection needs no ping
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_when_idle)
    return engine


#: A pooled connection idle longer than this is pinged before use (seconds).
IDLE_PING_SECONDS = 5.0
_CHECKED_IN = "portal.checked_in_at"


def _note_checkin(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    """When the connection was last known to work (connected, or given back after use)."""
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_when_idle(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object
) -> None:
    """``pool_pre_ping``, only for connections idle longer than :data:`IDLE_PING_SECONDS`.

    Under load a connection goes back to work within milliseconds, and a ping on every
    checkout was one round trip of every page's ten; a server restart or an idle timeout
    happens to connections that sat in the pool, and those are still pinged. A dead
    connection raises DisconnectionError: the pool drops it and connects again."""
    last = record.info.get(_CHECKED_IN)
    if last is not None and time.monotonic() - last < IDLE_PING_SECONDS:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except Exception as exc:  # the driver's OperationalError: closed, reset, terminated
        raise DisconnectionError(type(exc).__name__) from exc
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
    with contextlib.suppress(Exception):
        dbapi_connection.rollback()  # the ping's transaction (psycopg begins one)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Every domain's models must be mapped before the first query: relationships name
    # other domains' models by string.
    import portal.models  # noqa: F401

    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back otherwise."""
    with factory() as session, session.begin():
        yield session


GuardTarget = Session | sessionmaker[Session] | type[Session]


def append_only_guard(
    models: tuple[type[Base], ...],
    error: type[Exception],
    describe: Callable[[Any], str],
    *,
    kept: str,
    instead: str,
    bulk: str,
) -> Callable[[GuardTarget], None]:
    """A function that makes SQLAlchemy refuse, in the sessions of the target it is given (a
    session, a session factory or the Session class), any ORM update or delete of rows of
    ``models``: ``error("<describe(row)> cannot be deleted: <kept>")``, ``error("<describe(row)>
    cannot be changed: <instead>")``, or ``error(bulk)`` for an UPDATE or DELETE statement.
    Installing it twice on one target changes nothing. (Database triggers stop raw SQL.)"""
    tables = frozenset(model.__tablename__ for model in models)

    def refuse_changes(session: Session, _context: UOWTransaction, _instances: Any) -> None:
        for obj in session.deleted:
            if isinstance(obj, models):
                raise error(f"{describe(obj)} cannot be deleted: {kept}")
        for obj in session.dirty:
            if isinstance(obj, models) and session.is_modified(obj):
                raise error(f"{describe(obj)} cannot be changed: {instead}")

    def refuse_bulk_changes(state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete):
            return
        table = getattr(state.statement, "table", None)
        named = getattr(table, "name", None) in tables
        if named or any(mapper.class_ in models for mapper in state.all_mappers):
            raise error(bulk)

    def install(target: GuardTarget) -> None:
        if not event.contains(target, "before_flush", refuse_changes):
            event.listen(target, "before_flush", refuse_changes)
        if not event.contains(target, "do_orm_execute", refuse_bulk_changes):
            event.listen(target, "do_orm_execute", refuse_bulk_changes)

    return install


def db() -> Session:
    """The database session of the current web or API request (opened on first use, closed
    when the request's application context ends)."""
    if "db_session" not in g:
        from portal.state import portal_state

        g.db_session = portal_state().sessions()
    session: Session = g.db_session
    return session


def close_request_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


class Unindexed(ColumnElement[_T]):
    """``column`` in a WHERE term that SQLite must not answer from an index: written ``+column``
    there (https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_),
    as it is on other databases.

    Without statistics (a file :func:`refresh_planner_statistics` has not analysed yet) SQLite
    prefers an index on a filtered column, sorting what it finds, to an index that holds the
    order a LIMITed statement asks for and whose first rows are the answer; where that order's
    index is always the better one, this says so whatever the statistics. PostgreSQL weighs
    both itself.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[_T] | QueryableAttribute[_T]) -> None:
        self.column = column.expression if isinstance(column, QueryableAttribute) else column
        self.type = self.column.type


@compiles(Unindexed)
def _unindexed(element: Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"


#: How often ``portal worker`` refreshes SQLite's planner statistics, and how long a pooled
#: SQLite connection is kept (it reads them when it opens).
STATISTICS_INTERVAL = 3600.0


def refresh_planner_statistics(engine: Engine) -> bool:
    """Give SQLite's query planner fresh statistics (ANALYZE); whether it ran.

    Without statistics SQLite chooses indexes by rules of thumb: for a paged list filtered on
    a status and ordered by another column, it read the status index and sorted every match
    (the officers' request list with 10,000 requests: 7 ms a page) where the index holding
    the list's order gives the page from its first rows (0.05 ms). The benches measure
    analysed databases; ``portal worker`` runs this when it starts and every hour, so a
    portal's own file is planned the same way. PostgreSQL keeps its statistics itself
    (autovacuum): nothing is done there.

    A full ANALYZE, one table at a time: each holds the write lock only for its own table
    (the load bench's file: 0.23 s in all, 0.2 s of it for 100,000 items). A sampled one
    (``PRAGMA analysis_limit``) is faster but counted about 1,000 requests per status whatever
    the truth, and with 100,000 requests that brought the sort back (59 ms a page).
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).scalars()
        for table in list(tables):
            quoted = table.replace('"', '""')
            connection.exec_driver_sql(f'ANALYZE "{quoted}"')
            connection.commit()
    return True


def database_refusal(exc: DBAPIError) -> str:
    """The first line of what the database said when it refused a statement (for a warning
    that names the reason: never parameters, which SQLAlchemy appends after it)."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
