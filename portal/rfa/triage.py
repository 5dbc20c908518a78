"""The legal officer's side of requests for assistance: the triage queue, assignment, status
moves, candidate items and consent requests to providers.

Functions take the session explicitly, flush but never commit, and refuse bad input with
:class:`TriageError` (safe to show) before changing anything. Audit events name the
request and what happened, never what the request says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, load_only

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_active_officer, require_active_officer, where_legal_officer
from portal.authz.scopes import scoped
from portal.consent.ledger import DEFAULT_PURPOSE, current_state
from portal.consent.models import ConsentRequest, ConsentRequestItem
from portal.db import Unindexed, utcnow
from portal.eligibility.decisions import latest_decision
from portal.notifications import service as notifications
from portal.pages.numerals import whole_number
from portal.paging import Page, paginate
from portal.registry.models import Item, Provider
from portal.rfa.drafting import RequestError, post_message
from portal.rfa.models import Rfa, RfaItem
from portal.rfa.search import PAGE_SIZE, ItemQuery, ResultPage, matching
from portal.rfa.status import DECIDED, IllegalTransition, transition

QUEUE_STATUSES = ("submitted", "in_review", "clarification_requested")
#: Statuses in which candidate items may still be added (and removed).
OPEN_STATUSES = QUEUE_STATUSES
#: Statuses in which a candidate may still be taken out: before a decision, and after it while
#: packages can still be made (a provider revoked consent for one item: the rest is shared
#: without it, under a new check). Taking an item out only narrows what may be shared.
REMOVABLE_STATUSES = (
    *OPEN_STATUSES,
    "approved",
    "partially_approved",
    "transmitted",
    "acknowledged",
)
QUEUE_PAGE_SIZE = 50
#: What the queue shows of a request (the only columns it loads).
QUEUE_COLUMNS = (
    Rfa.code,
    Rfa.authority_id,
    Rfa.urgency,
    Rfa.status,
    Rfa.deadline,
    Rfa.submitted_at,
    Rfa.assigned_to_id,
)
NOTE_MAX = 20_000


class TriageError(Exception):
    """An officer action was refused; nothing changed. The message says why."""


@dataclass(frozen=True)
class QueueFilter:
    """``assignee``: None (anyone), ``"me"``, ``"unassigned"`` or a user id as text."""

    status: str | None = None
    authority_id: int | None = None
    assignee: str | None = None


def queue(db: Session, viewer: User, wanted: QueueFilter, *, page: int = 1) -> Page[Rfa]:
    """One page of open requests, most urgent first, then oldest submitted first."""
    statuses, others = _queue_filters(viewer, wanted)
    # Counted from the status index: a count has no order to keep.
    counted = select(Rfa.id).where(Rfa.status.in_(statuses), *others)
    return paginate(db, queue_statement(viewer, wanted), page, QUEUE_PAGE_SIZE, counted=counted)


def queue_statement(viewer: User, wanted: QueueFilter) -> Select[Rfa]:
    """The open requests ``wanted`` asks for, in the queue's order (see :func:`queue`)."""
    statuses, others = _queue_filters(viewer, wanted)
    shown = load_only(*QUEUE_COLUMNS, raiseload=True)  # a request's long texts stay behind
    return (
        # Not from a status index (on SQLite): a page is the first rows of ix_rfa_triage.
        select(Rfa)
        .where(Unindexed(Rfa.status).in_(statuses), *others)
        # Most urgent first: see URGENCIES (the order of ix_rfa_triage).
        .order_by(Rfa.urgency.desc(), Rfa.submitted_at, Rfa.id)
        .options(shown)
    )


def _queue_filters(
    viewer: User, wanted: QueueFilter
) -> tuple[tuple[str, ...], list[ColumnElement[bool]]]:
    """The statuses ``wanted`` asks for, and its other conditions."""
    statuses: tuple[str, ...] = QUEUE_STATUSES
    if wanted.status is not None:
        if wanted.status not in QUEUE_STATUSES:
            raise TriageError("Choose a status of the queue.")
        statuses = (wanted.status,)
    others: list[ColumnElement[bool]] = []
    if wanted.authority_id is not None:
        others.append(Rfa.authority_id == wanted.authority_id)
    if wanted.assignee == "me":
        others.append(Rfa.assigned_to_id == viewer.id)
    elif wanted.assignee == "unassigned":
        others.append(Rfa.assigned_to_id.is_(None))
    elif wanted.assignee:
        assignee_id = whole_number(wanted.assignee)
        if assignee_id is None:
            raise TriageError("Choose an assignee from the list.")
        others.append(Rfa.assigned_to_id == assignee_id)
    return statuses, others


def officers(db: Session) -> list[User]:
    """Active legal officers, by name (the people a request can be assigned to)."""
    return list(
        db.scalars(
            select(User)
            .where(where_legal_officer(), User.is_active.is_(True))
            .order_by(User.display_name, User.id)
        )
    )


def assign(db: Session, rfa: Rfa, assignee: User | None, *, by: User) -> Rfa:
    """Assign the request to ``assignee`` (None: nobody)."""
    require_active_officer(by, TriageError)
    if rfa.status not in QUEUE_STATUSES:
        raise TriageError("Only requests in the queue can be assigned.")
    if assignee is not None and not is_active_officer(assignee):
        raise TriageError("Requests can only be assigned to an active legal officer.")
    rfa.assigned_to_id = assignee.id if assignee is not None else None
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "rfa.assign",
        f"rfa:{rfa.code}",
        {"assignee": assignee.id if assignee is not None else None},
    )
    return rfa


def _move(db: Session, rfa: Rfa, to_status: str, by: User, note: str = "") -> None:
    try:
        transition(db, rfa, to_status, by=by, note=note)
    except IllegalTransition as exc:
        raise TriageError(str(exc)) from None


def start_review(db: Session, rfa: Rfa, *, by: User) -> Rfa:
    require_active_officer(by, TriageError)
    _move(db, rfa, "in_review", by)
    return rfa


def request_clarification(db: Session, rfa: Rfa, message: str, *, by: User) -> Rfa:
    """Post ``message`` in the request's thread and ask the requester to answer it."""
    require_active_officer(by, TriageError)
    if rfa.status != "in_review":
        _move(db, rfa, "clarification_requested", by)  # raises the clear message
    if not message.strip():
        raise TriageError("Write the question for the requester.")
    try:
        post_message(db, rfa, by, message)
    except RequestError as exc:
        raise TriageError(str(exc)) from None
    _move(db, rfa, "clarification_requested", by)
    return rfa


def decide(db: Session, rfa: Rfa, outcome: str, note: str, *, by: User) -> Rfa:
    """Record the decision on the request; approval needs an eligibility check on file."""
    require_active_officer(by, TriageError)
    if outcome not in DECIDED:
        raise TriageError("Choose approved, partially approved or declined.")
    note = note.strip()
    if not note:
        raise TriageError("Write a note explaining the decision.")
    if len(note) > NOTE_MAX:
        raise TriageError(f"The note must be at most {NOTE_MAX} characters.")
    if outcome != "declined" and latest_decision(db, rfa.id) is None:
        raise TriageError(
            "Run an eligibility check before approving: no decision record exists yet."
        )
    _move(db, rfa, outcome, by, note)
    return rfa


# --- candidates ------------------------------------------------------------------------------


def _editable(rfa: Rfa, by: User) -> None:
    require_active_officer(by, TriageError)
    if rfa.status not in OPEN_STATUSES:
        raise TriageError("Candidate items can only change before the request is decided.")


def can_remove_candidates(rfa: Rfa) -> bool:
    """Whether a candidate of ``rfa`` may be taken out (see :data:`REMOVABLE_STATUSES`)."""
    return rfa.status in REMOVABLE_STATUSES


def candidate_ids(db: Session, rfa_id: int, among: Iterable[int] | None = None) -> set[int]:
    stmt = select(RfaItem.item_id).where(RfaItem.rfa_id == rfa_id)
    if among is not None:
        stmt = stmt.where(RfaItem.item_id.in_(list(among)))
    return set(db.scalars(stmt))


def flagged_for_recheck(db: Session, rfa_id: int) -> set[int]:
    """The candidates a consent revocation flagged since the request's last check."""
    return set(
        db.scalars(
            select(RfaItem.item_id).where(RfaItem.rfa_id == rfa_id, RfaItem.needs_recheck.is_(True))
        )
    )


def candidates(db: Session, rfa: Rfa) -> list[Item]:
    return list(
        db.scalars(
            select(Item)
            .join(RfaItem, RfaItem.item_id == Item.id)
            .where(RfaItem.rfa_id == rfa.id)
            .order_by(Item.code)
        )
    )


def add_candidates(db: Session, rfa: Rfa, item_ids: Sequence[int], *, by: User) -> int:
    """Add the items not yet candidates; returns how many were added."""
    _editable(rfa, by)
    wanted = set(item_ids)
    if not wanted:
        raise TriageError("Choose at least one item to add.")
    found = set(db.scalars(select(Item.id).where(Item.id.in_(wanted))))
    if found != wanted:
        raise TriageError("Some of the chosen items do not exist; nothing was added.")
    new = sorted(wanted - candidate_ids(db, rfa.id, wanted))
    now = utcnow()
    db.add_all([RfaItem(rfa_id=rfa.id, item_id=i, added_by_id=by.id, added_at=now) for i in new])
    db.flush()
    if new:
        audit.record(
            db, audit.actor_label(by), "rfa.candidates.add", f"rfa:{rfa.code}", {"items": new}
        )
    return len(new)


def remove_candidate(db: Session, rfa: Rfa, item_id: int, *, by: User) -> None:
    """Take an item out of the request's candidates. After a decision this makes the decision
    stale (its items are no longer the candidates): packages wait for a new check."""
    require_active_officer(by, TriageError)
    if not can_remove_candidates(rfa):
        raise TriageError(
            f"The request is {rfa.status.replace('_', ' ')}; its candidate items can no longer "
            "change."
        )
    row = db.scalar(select(RfaItem).where(RfaItem.rfa_id == rfa.id, RfaItem.item_id == item_id))
    if row is None:
        raise TriageError("That item is not a candidate of this request.")
    db.delete(row)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "rfa.candidates.remove",
        f"rfa:{rfa.code}",
        {"items": [item_id]},
    )


# --- consent requests ------------------------------------------------------------------------


def missing_consent(db: Session, rfa: Rfa) -> list[tuple[Provider, list[Item]]]:
    """Candidates without active consent for the request's authority and not already in an
    open consent request of this request, grouped by provider (by code)."""
    asked = set(
        db.scalars(
            select(ConsentRequestItem.item_id)
            .join(ConsentRequest, ConsentRequest.id == ConsentRequestItem.consent_request_id)
            .where(ConsentRequest.rfa_id == rfa.id, ConsentRequest.status == "open")
        )
    )
    by_provider: dict[int, list[Item]] = {}
    for item in candidates(db, rfa):
        if item.id not in asked:
            by_provider.setdefault(item.provider_id, []).append(item)
    groups: list[tuple[Provider, list[Item]]] = []
    for provider_id, items in by_provider.items():
        states = current_state(db, provider_id, rfa.authority_id, [i.id for i in items])
        missing = [i for i in items if not states[i.id].active]
        provider = db.get(Provider, provider_id)
        if missing and provider is not None:
            groups.append((provider, missing))
    return sorted(groups, key=lambda group: group[0].code)


def ask_for_consent(db: Session, rfa: Rfa, *, by: User) -> list[ConsentRequest]:
    """One consent request per provider for the items of :func:`missing_consent`. The note
    names the request by code only: providers never see the requester's details."""
    _editable(rfa, by)
    groups = missing_consent(db, rfa)
    if not groups:
        raise TriageError("Every candidate item has consent or an open consent request.")
    now = utcnow()
    made: list[ConsentRequest] = []
    for provider, items in groups:
        request = ConsentRequest(
            rfa_id=rfa.id,
            provider_id=provider.id,
            authority_id=rfa.authority_id,
            purpose=DEFAULT_PURPOSE,
            note=f"For request {rfa.code}.",
            status="open",
            created_by_id=by.id,
            created_at=now,
        )
        db.add(request)
        db.flush()
        db.add_all([ConsentRequestItem(consent_request_id=request.id, item_id=i.id) for i in items])
        db.flush()
        audit.record(
            db,
            audit.actor_label(by),
            "consent_request.create",
            f"consent_request:{request.id}",
            {"rfa": rfa.code, "provider": provider.code, "items": [i.id for i in items]},
        )
        notifications.consent_requested(db, request)
        made.append(request)
    return made


# --- search paging ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchPosition:
    """Where a keyset page of :func:`portal.rfa.search.search` falls: "page N of M" (``capped``:
    more than M pages; counting stops at :data:`COUNT_CAP` matches), and the ``after`` value
    that opens the previous page (None with ``has_previous``: the first page)."""

    page: int
    pages: int
    total: int
    capped: bool
    has_previous: bool
    previous_after: int | None


#: Counting every match of a common word would double the cost of a search on 100k items;
#: past this many matches (20 pages) the page says "of more than 20 pages". 1000 rather than
#: 5000: counting 5000 matches of "witness" cost 26 ms of a 30 ms search on PostgreSQL under
#: bench/load.py, and nobody pages that far instead of narrowing the search.
COUNT_CAP = 1000


def search_position(
    db: Session, query: ItemQuery, result: ResultPage, after: int | None, page: int
) -> SearchPosition:
    """Place a keyset page among the matches; ``page`` is the number the link carried (only
    a label: the rows shown are decided by ``after``)."""
    ids, key = matching(db, select(Item.id), query)
    if after is None and result.next_after is None:
        # The first page is the only one: its rows are all the matches. Counting them again
        # would scan the whole table once more for a rare word or one that matches nothing.
        total = len(result.items)
    else:
        capped_rows = ids.limit(COUNT_CAP + 1).subquery()
        total = db.scalar(select(func.count()).select_from(capped_rows)) or 0
    previous_after = None
    if after is not None and result.items:
        # The previous page starts after the match PAGE_SIZE + 1 places back, if any.
        previous_after = db.scalar(
            ids.where(key < result.items[0].id).order_by(key.desc()).offset(PAGE_SIZE).limit(1)
        )
    capped = total > COUNT_CAP
    pages = max(1, -(-min(total, COUNT_CAP) // PAGE_SIZE))
    number = 1 if after is None else max(2, page)
    return SearchPosition(
        page=number,
        pages=max(pages, number),
        total=min(total, COUNT_CAP),
        capped=capped,
        has_previous=after is not None,
        previous_after=previous_after,
    )


# --- bulk actions ----------------------------------------------------------------------------

#: Status moves offered for many requests at once: the ones that need no note or message.
#: Every row still goes through the status machine (portal.rfa.status.transition), which
#: refuses a move it does not allow with its reason.
BULK_MOVES = {"in_review": "In review (start or resume the review)", "closed": "Closed"}
BULK_MAX = 100


@dataclass(frozen=True)
class RowResult:
    """What a bulk action did to one request: ``done`` or refused with ``reason``."""

    code: str
    done: bool
    reason: str = ""


def _bulk_rows(db: Session, codes: Sequence[str], by: User) -> dict[str, Rfa | None]:
    """The chosen requests by code, in the order chosen; None for one ``by`` may not see."""
    require_active_officer(by, TriageError)
    wanted = list(dict.fromkeys(code.strip() for code in codes if code.strip()))
    if not wanted:
        raise TriageError("Choose at least one request.")
    if len(wanted) > BULK_MAX:
        raise TriageError(f"Choose at most {BULK_MAX} requests at a time.")
    found = {rfa.code: rfa for rfa in db.scalars(scoped(Rfa, by).where(Rfa.code.in_(wanted)))}
    return {code: found.get(code) for code in wanted}


def _each(
    db: Session, codes: Sequence[str], by: User, act: Callable[[Rfa], None]
) -> list[RowResult]:
    """Run ``act`` on every chosen request, each in a savepoint of its own: a refused row
    changes nothing and is reported with its reason; the rows done are kept (the caller
    commits them together)."""
    results: list[RowResult] = []
    for code, rfa in _bulk_rows(db, codes, by).items():
        if rfa is None:
            results.append(RowResult(code, False, "No such request."))
            continue
        try:
            with db.begin_nested():
                act(rfa)
        except TriageError as exc:
            db.refresh(rfa)
            results.append(RowResult(code, False, str(exc)))
        else:
            results.append(RowResult(code, True))
    return results


def bulk_assign(
    db: Session, codes: Sequence[str], assignee: User | None, *, by: User
) -> list[RowResult]:
    """Assign every chosen request to ``assignee`` (None: nobody), row by row."""
    if assignee is not None and not is_active_officer(assignee):
        raise TriageError("Requests can only be assigned to an active legal officer.")

    def act(rfa: Rfa) -> None:
        assign(db, rfa, assignee, by=by)

    return _each(db, codes, by, act)


def bulk_move(db: Session, codes: Sequence[str], to_status: str, *, by: User) -> list[RowResult]:
    """Move every chosen request to ``to_status`` through the status machine, row by row."""
    if to_status not in BULK_MOVES:
        raise TriageError("Choose a status to move the requests to.")
    return _each(db, codes, by, lambda rfa: _move(db, rfa, to_status, by))
