"""The legal officer's worklists: what waits on them, counted and listed for the dashboard.

Each worklist is one query over the domains' tables (no per-row lookups), so the dashboard
costs a handful of indexed queries however many requests there are (bench/load.py). The
dashboard shows each list's count and first rows; :func:`page_of` gives every row, paged,
for the list a count links to. Requests lists (assigned to me, due) are the requests page
itself, filtered (:mod:`portal.rfa.officer_list`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, lru_cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, case, func, or_, select, union
from sqlalchemy.orm import InstrumentedAttribute, Session, load_only
from sqlalchemy.orm.interfaces import ORMOption

from portal.accounts.models import User
from portal.consent.models import ConsentRequest
from portal.db import utcnow
from portal.eligibility.models import DecisionFreshness
from portal.packages.models import Package
from portal.paging import Page, paginate
from portal.registry.models import Item, Provider, RedactionMark
from portal.rfa.models import Rfa, RfaItem

T = TypeVar("T")

__all__ = [
    "ACTIVE_STATUSES",
    "DUE_WITHIN_DAYS",
    "LISTS",
    "PREVIEW_ROWS",
    "Counts",
    "assigned_to",
    "awaiting_release",
    "consent_pending",
    "counts",
    "due_soon",
    "marks_pending",
    "page_of",
    "stale_decisions",
]

#: Requests someone still works on (a deadline matters, an assignment means work).
ACTIVE_STATUSES = (
    "submitted",
    "in_review",
    "clarification_requested",
    "approved",
    "partially_approved",
)
#: Requests whose latest decision may still be used or revised (a stale one matters).
CHECKED_STATUSES = (
    "in_review",
    "clarification_requested",
    "approved",
    "partially_approved",
    "transmitted",
    "acknowledged",
)
DUE_WITHIN_DAYS = 7
PREVIEW_ROWS = 5
#: The worklists with a page of their own (``/worklists/<name>``), by name -> heading.
LISTS = {
    "release": "Packages awaiting your release",
    "stale": "Requests whose decision is older than its facts",
    "consent": "Consent requests awaiting the provider's answer",
    "marks": "Redaction marks awaiting your confirmation",
}


#: Each worklist's statement is built once per officer (or once) and reused: building one
#: cost more CPU than running it (SQLAlchemy statements are immutable and thread-safe).
_USERS_KEPT = 256


def today() -> date:
    return utcnow().date()


def assigned_to(user: User) -> Select[Rfa]:
    """Active requests assigned to ``user``, by deadline (none last), then oldest."""
    return _assigned_to(user.id)


@lru_cache(maxsize=_USERS_KEPT)
def _assigned_to(user_id: int) -> Select[Rfa]:
    return (
        select(Rfa)
        .where(Rfa.assigned_to_id == user_id, Rfa.status.in_(ACTIVE_STATUSES))
        .order_by(Rfa.deadline.is_(None), Rfa.deadline, Rfa.submitted_at, Rfa.id)
    )


def due_soon(*, on: date | None = None, days: int = DUE_WITHIN_DAYS) -> Select[Rfa]:
    """Active requests overdue or due within ``days`` days, earliest deadline first."""
    return _due_soon(on or today(), days)


@lru_cache(maxsize=8)
def _due_soon(on: date, days: int) -> Select[Rfa]:
    limit = on + timedelta(days=days)
    return (
        select(Rfa)
        .where(Rfa.status.in_(ACTIVE_STATUSES), Rfa.deadline.is_not(None), Rfa.deadline <= limit)
        .order_by(Rfa.deadline, Rfa.id)
    )


def awaiting_release(user: User) -> Select[Package]:
    """Assembled packages another officer made: ``user`` may release them (four-eyes)."""
    return _awaiting_release(user.id)


@lru_cache(maxsize=_USERS_KEPT)
def _awaiting_release(user_id: int) -> Select[Package]:
    return (
        select(Package)
        .where(Package.status == "assembled", Package.assembled_by_id != user_id)
        .order_by(Package.updated_at, Package.id)
    )


@cache
def stale_decisions() -> Select[Rfa]:
    """Requests whose latest decision rests on facts that changed since: a candidate flagged
    for a re-check (a consent revocation), a candidate added after it, or a consent event of
    a candidate's provider for the request's authority recorded after it, oldest decision
    first. The times are kept by triggers (:mod:`portal.eligibility.freshness`); both halves
    are read from partial indexes, so the list costs what it holds, not every decided
    request. (A candidate taken out again keeps the request listed until it is checked; a
    candidate taken out that the decision covered is caught by the package page:
    plan_package.)"""
    changed = select(DecisionFreshness.rfa_id).where(
        DecisionFreshness.changed_at > DecisionFreshness.decided_at
    )
    flagged = select(RfaItem.rfa_id).where(RfaItem.needs_recheck.is_(True))
    return (
        select(Rfa)
        .join(DecisionFreshness, DecisionFreshness.rfa_id == Rfa.id)
        .where(
            Rfa.id.in_(union(changed, flagged)),
            Rfa.status.in_(CHECKED_STATUSES),
            DecisionFreshness.decided_at.is_not(None),
        )
        .order_by(DecisionFreshness.decided_at, Rfa.id)
    )


@cache
def consent_pending() -> Select[ConsentRequest]:
    """Consent requests still waiting for the provider, oldest first."""
    return (
        select(ConsentRequest)
        .where(ConsentRequest.status == "open")
        .order_by(ConsentRequest.created_at, ConsentRequest.id)
    )


def _waits_on(user_id: int) -> object:
    """A mark waits on the user: pending and proposed by someone else (or imported), or its
    removal asked for by someone else."""
    return or_(
        and_(
            RedactionMark.review == "pending",
            or_(RedactionMark.proposed_by_id.is_(None), RedactionMark.proposed_by_id != user_id),
        ),
        and_(
            RedactionMark.removal_requested_at.is_not(None),
            RedactionMark.removal_requested_by_id != user_id,
        ),
    )


def marks_pending(user: User) -> Select[Item]:
    """Items with marks awaiting ``user``'s confirmation, the longest waiting first."""
    return _marks_pending(user.id)


@lru_cache(maxsize=_USERS_KEPT)
def _marks_pending(user_id: int) -> Select[Item]:
    waiting = (
        select(
            RedactionMark.item_id,
            func.min(func.coalesce(RedactionMark.proposed_at, RedactionMark.created_at)).label(
                "since"
            ),
        )
        .where(_waits_on(user_id))  # type: ignore[arg-type]
        .group_by(RedactionMark.item_id)
        .subquery()
    )
    return (
        select(Item).join(waiting, waiting.c.item_id == Item.id).order_by(waiting.c.since, Item.id)
    )


def review_requests(db: Session, item_ids: Sequence[int]) -> dict[int, str]:
    """Item id -> code of the most recently changed request it is a candidate of (its marks
    are reviewed under a request: /review/<request>/items/<item>)."""
    found: dict[int, str] = {}
    if not item_ids:
        return found
    rows = db.execute(
        select(RfaItem.item_id, Rfa.code)
        .join(Rfa, Rfa.id == RfaItem.rfa_id)
        .where(RfaItem.item_id.in_(item_ids))
        .order_by(Rfa.updated_at.desc(), Rfa.id.desc())
    )
    for item_id, code in rows:
        found.setdefault(item_id, code)
    return found


def rfa_codes(db: Session, rfa_ids: Sequence[int]) -> dict[int, str]:
    if not rfa_ids:
        return {}
    rows = db.execute(select(Rfa.id, Rfa.code).where(Rfa.id.in_(rfa_ids)))
    return {row.id: row.code for row in rows}


def provider_names(db: Session, provider_ids: Sequence[int]) -> dict[int, str]:
    if not provider_ids:
        return {}
    rows = db.execute(select(Provider.id, Provider.name).where(Provider.id.in_(provider_ids)))
    return {row.id: row.name for row in rows}


def _count_of(stmt: Select[object]) -> ScalarSelect[int]:
    """How many rows ``stmt`` finds, as a subquery of the one statement of :func:`counts`."""
    return select(func.count()).select_from(stmt.order_by(None).subquery()).scalar_subquery()


@dataclass(frozen=True)
class Counts:
    assigned: int
    overdue: int
    due: int  # overdue included
    release: int
    stale: int
    consent: int
    marks: int


def counts(
    db: Session,
    user: User,
    *,
    on: date | None = None,
    assigned: int | None = None,
    stale: int | None = None,
) -> Counts:
    """Every worklist's count for ``user``, in one statement (one round trip; ``assigned``,
    ``stale``: counted by the caller already, see :func:`requests_and_count`)."""
    statement = _counts_statement(user.id, on or today(), assigned is None, stale is None)
    row = db.execute(statement).one()
    found = {name: int(value or 0) for name, value in row._mapping.items()}
    return Counts(
        assigned=found["assigned"] if assigned is None else assigned,
        overdue=found["overdue"],
        due=found["due"],
        release=found["release"],
        stale=found["stale"] if stale is None else stale,
        consent=found["consent"],
        marks=found["marks"],
    )


#: What the dashboard shows of a worklist's row, by the row's model: only these columns are
#: loaded (``load_only(..., raiseload=True)``: reading another fails a test, not a query per row).
SHOWN_COLUMNS: dict[type, tuple[InstrumentedAttribute[Any], ...]] = {
    Rfa: (Rfa.code, Rfa.status, Rfa.deadline),
    Package: (Package.code, Package.updated_at),
    ConsentRequest: (ConsentRequest.rfa_id, ConsentRequest.provider_id, ConsentRequest.created_at),
    Item: (Item.code,),
}


def _shown(model: type) -> ORMOption:
    return load_only(*SHOWN_COLUMNS[model], raiseload=True)


@lru_cache(maxsize=_USERS_KEPT)
def _counts_statement(
    user_id: int, day: date, with_assigned: bool, with_stale: bool
) -> Select[*tuple[Any, ...]]:
    """The one statement of :func:`counts` (built once per officer, day and shape)."""
    due = _due_soon(day, DUE_WITHIN_DAYS).with_only_columns(Rfa.deadline).order_by(None).subquery()
    columns: dict[str, ColumnElement[int]] = {
        "due": func.count(),  # one pass over the index for due and overdue
        "overdue": func.count(case((due.c.deadline < day, 1))),
        "release": _count_of(_awaiting_release(user_id).with_only_columns(Package.id)),
        "consent": _count_of(consent_pending().with_only_columns(ConsentRequest.id)),
        "marks": _count_of(_marks_pending(user_id).with_only_columns(Item.id)),
    }
    if with_assigned:
        columns["assigned"] = _count_of(_assigned_to(user_id).with_only_columns(Rfa.id))
    if with_stale:
        columns["stale"] = _count_of(stale_decisions().with_only_columns(Rfa.id))
    labelled = [column.label(name) for name, column in columns.items()]
    return select(*labelled).select_from(due)


def requests_and_count(
    db: Session, stmt: Select[Rfa], limit: int = PREVIEW_ROWS
) -> tuple[int, list[Rfa]]:
    """How many requests ``stmt`` finds, and its first ``limit`` (the columns of
    :data:`SHOWN_COLUMNS`), in one pass: the ids in order (a few thousand integers at most),
    then the rows shown. A count and a list would evaluate the conditions twice (the stale
    ones are correlated subqueries)."""
    ids = list(db.scalars(stmt.with_only_columns(Rfa.id)))
    shown = ids[:limit]
    rows = {
        rfa.id: rfa
        for rfa in db.scalars(select(Rfa).where(Rfa.id.in_(shown or [0])).options(_shown(Rfa)))
    }
    return len(ids), [rows[i] for i in shown if i in rows]


def first_rows(db: Session, stmt: Select[T], limit: int = PREVIEW_ROWS) -> Sequence[T]:
    """The first rows of a worklist, for the dashboard: the columns of :data:`SHOWN_COLUMNS`."""
    model = stmt.column_descriptions[0]["entity"]
    return db.scalars(stmt.limit(limit).options(_shown(model))).all()


def page_of(db: Session, name: str, user: User, page: int) -> Page[object]:
    """One page of the worklist ``name`` (a key of :data:`LISTS`)."""
    stmt: Select[object] = {
        "release": awaiting_release(user),
        "stale": stale_decisions(),
        "consent": consent_pending(),
        "marks": marks_pending(user),
    }[name]
    return paginate(db, stmt, page)
