"""Triggers that keep :class:`~portal.eligibility.models.DecisionFreshness` in step: when each
request was last decided, and when its facts last changed.

The stale decisions' worklist (the legal officers' dashboard) used to work this out on every
page: the latest decision of every request (a GROUP BY over all decisions), then for each
decided request whether a candidate was added after it, or a consent event of a candidate's
provider for its authority recorded after it. That read every decided request and its
candidates: 5 of the dashboard's 13 ms with 1,000 decisions on SQLite (bench/pages.py), and
it grew with every request ever decided. The triggers record each such fact as it happens,
so the worklist reads only the stale rows, from a partial index.

Triggers rather than application code, because candidates, consent events and decisions are
written from several places (views, commands, imports, the demo), and a row written without
its note would leave a stale decision off the worklist without a sound. Each trigger upserts
the request's row (``INSERT ... ON CONFLICT DO UPDATE``, SQLite and PostgreSQL alike), taking
the later of the stored time and the new one: a row missing is made, concurrent writers of one
request wait for each other on its row, and an event dated before the one stored changes
nothing. On SQLite they run for each row inserted; on PostgreSQL once for each statement, over
the rows it inserted (see :func:`_postgresql_statements`). Bulk work costs a little more: the
eligibility bench's seeding (100,000 candidates, 60,000 consent events) took 29.2 s on SQLite
and 81.3 s on PostgreSQL, against 22.0 and 65.5 s without the triggers; 23.0 and 62.3 s before
a candidate counted the consent events already recorded for it (below).

The times compare as the query before compared them, and give the same list whatever the
order in which events and candidates are written (a candidate added counts the consent events
already recorded for it: an imported event may be stamped later than a candidate added after
it). One gap is left on PostgreSQL: a consent event and a candidate of its item written by
two transactions at the same moment see neither the other, and their pair is counted only
through the candidate's own time (which already lists the request, unless a check came in
between). Several statements of one transaction lock their requests' rows in each statement's
order, not the transaction's: two such transactions on the same requests can deadlock, and
PostgreSQL then stops one of them.

**Migrations that rebuild a table on SQLite** (``batch_alter_table``) of ``item``, ``rfa``,
``rfa_item``, ``consent`` or ``decision`` must drop these triggers first and make them again
after (:func:`drop_freshness_triggers`, :func:`create_freshness_triggers`): SQLite checks the
triggers that name a table when it renames one, and drops a table's own triggers with it.

What counts as a change, as the worklist's query counted it before:

- a candidate added (``rfa_item`` inserted): its ``added_at``;
- a consent event (``consent`` inserted) for the request's authority, of the provider of one
  of its candidates, standing (no item) or for that candidate: its ``recorded_at``;
- a decision (``decision`` inserted): its ``created_at`` is the request's ``decided_at``.

A candidate taken out again leaves its time behind: the request stays on the worklist until
it is checked again (the query before forgot it). That is the careful side: its facts did
change after the decision. Re-check flags (set by a revocation) are read from their own
partial index (``ix_rfa_item_flagged``).

Made by migration 0034 (which also fills the table from the history), and for databases
created from the models by a hook on the metadata (the tests).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, MetaData, Table, func, insert, select
from sqlalchemy import event as sa_event

__all__ = [
    "TRIGGERS",
    "create_freshness_triggers",
    "drop_freshness_triggers",
    "fill_freshness",
    "install_schema_hooks",
    "trigger_names",
]

TABLE = "decision_freshness"


class _Trigger(NamedTuple):
    """One trigger: its name (also its PostgreSQL function's), the table it watches, the column
    it upserts, and the rows it upserts (request id, time): on SQLite for each inserted row
    (``NEW``, when ``when`` holds), on PostgreSQL for each statement (``added``: the rows it
    inserted)."""

    name: str
    table: str
    column: str
    rows: str
    when: str = ""


# The requests of a consent event's authority with a candidate of its provider: for an item's
# event, the candidates that are that item; for a standing one, every candidate of the
# provider. Apart, so that each is an index lookup (one OR of the two read all the provider's
# items for every event: seeding 60,000 events took minutes). ``{e}``: the event's row.
_ITEM_EVENT = (
    "item i JOIN rfa_item ri ON ri.item_id = i.id"
    " JOIN rfa r ON r.id = ri.rfa_id AND r.authority_id = {e}.authority_id"
    " WHERE i.id = {e}.item_id AND i.provider_id = {e}.provider_id"
)
_STANDING_EVENT = (
    "item i JOIN rfa_item ri ON ri.item_id = i.id"
    " JOIN rfa r ON r.id = ri.rfa_id AND r.authority_id = {e}.authority_id"
    " WHERE i.provider_id = {e}.provider_id AND {e}.item_id IS NULL"
)

# The consent events already recorded that concern a candidate ``{c}`` being added: for that
# item, or standing for its provider; each an index lookup (``ix_consent_lookup``). Counted
# with the candidate, so that the order in which an event and a candidate are written does
# not matter (an imported event may be stamped later than the candidate added after it).
_ITEM_EVENTS_OF = (
    "item i JOIN rfa r ON r.id = {c}.rfa_id JOIN consent ev ON ev.provider_id = i.provider_id"
    " AND ev.authority_id = r.authority_id AND ev.item_id = {c}.item_id WHERE i.id = {c}.item_id"
)
_STANDING_EVENTS_OF = (
    "item i JOIN rfa r ON r.id = {c}.rfa_id JOIN consent ev ON ev.provider_id = i.provider_id"
    " AND ev.authority_id = r.authority_id AND ev.item_id IS NULL WHERE i.id = {c}.item_id"
)

_SQLITE_TRIGGERS = (
    _Trigger(
        "decision_freshness_on_decision",
        "decision",
        "decided_at",
        "VALUES (NEW.rfa_id, NEW.created_at)",
    ),
    _Trigger(
        "decision_freshness_on_candidate",
        "rfa_item",
        "changed_at",
        "SELECT NEW.rfa_id, max(at) FROM (SELECT NEW.added_at AS at UNION ALL "  # noqa: S608
        + " UNION ALL ".join(
            f"SELECT ev.recorded_at FROM {events.format(c='NEW')}"  # noqa: S608 - constant SQL
            for events in (_ITEM_EVENTS_OF, _STANDING_EVENTS_OF)
        )
        + ") AS events WHERE true",
    ),
    # SQLite reads "SELECT ... FROM t ON CONFLICT" as a join's ON: these end with a WHERE.
    _Trigger(
        "decision_freshness_on_item_consent",
        "consent",
        "changed_at",
        "SELECT DISTINCT ri.rfa_id, NEW.recorded_at FROM "  # noqa: S608 - constant SQL
        + _ITEM_EVENT.format(e="NEW"),
        when="NEW.item_id IS NOT NULL",
    ),
    _Trigger(
        "decision_freshness_on_standing_consent",
        "consent",
        "changed_at",
        "SELECT DISTINCT ri.rfa_id, NEW.recorded_at FROM "  # noqa: S608 - constant SQL
        + _STANDING_EVENT.format(e="NEW"),
        when="NEW.item_id IS NULL",
    ),
)
_POSTGRESQL_TRIGGERS = (
    _Trigger(
        "decision_freshness_on_decision",
        "decision",
        "decided_at",
        "SELECT rfa_id, max(created_at) FROM added GROUP BY rfa_id ORDER BY rfa_id",
    ),
    _Trigger(
        "decision_freshness_on_candidate",
        "rfa_item",
        "changed_at",
        "SELECT rfa_id, max(at) FROM (SELECT rfa_id, added_at AS at FROM added"  # noqa: S608
        + "".join(
            " UNION ALL SELECT a.rfa_id, ev.recorded_at FROM added a CROSS JOIN "  # noqa: S608
            + events.format(c="a")
            for events in (_ITEM_EVENTS_OF, _STANDING_EVENTS_OF)
        )
        + ") AS events GROUP BY rfa_id ORDER BY rfa_id",
    ),
    _Trigger(
        "decision_freshness_on_consent",
        "consent",
        "changed_at",
        "SELECT rfa_id, max(at) FROM ("  # noqa: S608 - constant SQL
        + " UNION ALL ".join(
            "SELECT ri.rfa_id, c.recorded_at AS at FROM added c CROSS JOIN "  # noqa: S608
            + rows.format(e="c")
            for rows in (_ITEM_EVENT, _STANDING_EVENT)
        )
        + ") AS events GROUP BY rfa_id ORDER BY rfa_id",
    ),
)
#: The triggers' names, by dialect.
TRIGGERS = {
    "sqlite": tuple(t.name for t in _SQLITE_TRIGGERS),
    "postgresql": tuple(t.name for t in _POSTGRESQL_TRIGGERS),
}


def _upsert(column: str, rows: str, later: str) -> str:
    return (
        f"INSERT INTO {TABLE} (rfa_id, {column}) {rows}"
        f" ON CONFLICT (rfa_id) DO UPDATE SET {column} = {later}"
    )


def _sqlite_statements() -> list[str]:
    # SQLite's two-argument max() is NULL when either is: the stored time may be NULL.
    return [
        f"CREATE TRIGGER {t.name} AFTER INSERT ON {t.table}"
        + (f" WHEN {t.when}" if t.when else "")
        + " BEGIN "
        + _upsert(
            t.column,
            t.rows,
            f"max(coalesce({TABLE}.{t.column}, excluded.{t.column}), excluded.{t.column})",
        )
        + "; END"
        for t in _SQLITE_TRIGGERS
    ]


def _postgresql_statements() -> list[str]:
    """Statement-level triggers over the inserted rows: a row-level one updated the request's
    row once per candidate, and PostgreSQL keeps every version of a row a transaction updates
    (100,000 candidates added at once took 5 minutes instead of seconds). Each upserts its
    requests' rows in the order of their ids, so two statements that touch the same requests
    lock their rows in the same order and do not deadlock on each other."""
    statements = []
    for t in _POSTGRESQL_TRIGGERS:
        body = _upsert(t.column, t.rows, f"GREATEST({TABLE}.{t.column}, EXCLUDED.{t.column})")
        statements += [
            # The tables are found in the schema the function was made in, whatever the
            # search_path of the session that writes (a maintenance session's, say).
            f"CREATE FUNCTION {t.name}() RETURNS trigger LANGUAGE plpgsql"
            " SET search_path FROM CURRENT AS $$"
            f" BEGIN {body}; RETURN NULL; END $$",
            f"CREATE TRIGGER {t.name} AFTER INSERT ON {t.table} REFERENCING NEW TABLE AS added"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {t.name}()",
        ]
    return statements


def create_freshness_triggers(conn: Connection) -> None:
    """Make the triggers, inside the caller's transaction (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        statements = _postgresql_statements()
    elif conn.dialect.name == "sqlite":
        statements = _sqlite_statements()
    else:  # pragma: no cover - the portal runs on these two
        raise RuntimeError(f"no freshness triggers for {conn.dialect.name}")
    for statement in statements:
        conn.exec_driver_sql(statement)


def drop_freshness_triggers(conn: Connection) -> None:
    postgresql = conn.dialect.name == "postgresql"
    for t in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        if postgresql:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t.name} ON {t.table}")
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {t.name}()")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t.name}")


def trigger_names(conn: Connection) -> list[str]:
    """The names of the triggers this database has (any, not only these), sorted."""
    if conn.dialect.name == "postgresql":
        query = (
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return sorted(str(name) for name in conn.exec_driver_sql(query).scalars())


def fill_freshness(conn: Connection, tables: MetaData) -> int:
    """One row per request with candidates or decisions, from the history as it stands (what
    the triggers would have written); for a database that had none. Returns the rows written.
    ``tables``: the metadata holding the tables (reflected in a migration)."""
    rfa, rfa_item, item, consent, decision, freshness = (
        tables.tables[name] for name in ("rfa", "rfa_item", "item", "consent", "decision", TABLE)
    )
    decided = dict(  # of requests that exist (a decision does not outlive its request)
        conn.execute(
            select(decision.c.rfa_id, func.max(decision.c.created_at))
            .join(rfa, rfa.c.id == decision.c.rfa_id)
            .group_by(decision.c.rfa_id)
        ).all()
    )
    changed: dict[int, datetime] = dict(
        conn.execute(
            select(rfa_item.c.rfa_id, func.max(rfa_item.c.added_at))
            .join(rfa, rfa.c.id == rfa_item.c.rfa_id)
            .group_by(rfa_item.c.rfa_id)
        ).all()
    )
    consents = conn.execute(
        select(rfa_item.c.rfa_id, func.max(consent.c.recorded_at))
        .join(item, item.c.id == rfa_item.c.item_id)
        .join(rfa, rfa.c.id == rfa_item.c.rfa_id)
        .join(
            consent,
            (consent.c.provider_id == item.c.provider_id)
            & (consent.c.authority_id == rfa.c.authority_id)
            & (consent.c.item_id.is_(None) | (consent.c.item_id == item.c.id)),
        )
        .group_by(rfa_item.c.rfa_id)
    ).all()
    for rfa_id, recorded_at in consents:
        before = changed.get(rfa_id)
        changed[rfa_id] = recorded_at if before is None else max(before, recorded_at)
    rows: dict[int, dict[str, Any]] = defaultdict(dict)
    for rfa_id, at in decided.items():
        rows[rfa_id]["decided_at"] = at
    for rfa_id, at in changed.items():
        rows[rfa_id]["changed_at"] = at
    values = [
        {"rfa_id": rfa_id, "decided_at": row.get("decided_at"), "changed_at": row.get("changed_at")}
        for rfa_id, row in sorted(rows.items())
    ]
    if values:
        conn.execute(insert(freshness), values)
    return len(values)


def _after_create(target: MetaData, connection: Connection, **kw: Any) -> None:
    created: list[Table] | None = kw.get("tables")  # those made now ([] when none was)
    names = set(target.tables) if created is None else {table.name for table in created}
    if TABLE in names:
        create_freshness_triggers(connection)


def _before_drop(target: MetaData, connection: Connection, **kw: Any) -> None:
    dropped: list[Table] | None = kw.get("tables")
    names = set(target.tables) if dropped is None else {table.name for table in dropped}
    if TABLE in names:
        drop_freshness_triggers(connection)


def install_schema_hooks(metadata: MetaData) -> None:
    """Databases made by ``metadata.create_all`` (the tests) get the triggers once every table
    is there; migrated ones get them from 0034."""
    if not sa_event.contains(metadata, "after_create", _after_create):
        sa_event.listen(metadata, "after_create", _after_create)
        sa_event.listen(metadata, "before_drop", _before_drop)
