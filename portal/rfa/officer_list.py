"""The legal officer's list of requests: search, filters, sortable columns, pages.

:func:`parse` reads the query string into a :class:`RequestQuery` and names every value it
could not use (the page says so and shows the list unfiltered by it, never a 500);
:func:`listing` runs it through the viewer's scope (staff never see drafts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from sqlalchemy import Select, or_
from sqlalchemy.orm import Session, load_only

from portal.accounts.models import User
from portal.authz.scopes import scoped
from portal.db import utcnow
from portal.pages.numerals import whole_number
from portal.paging import Page, page_number, paginate
from portal.registry.models import Authority
from portal.rfa.models import RFA_STATUSES, Rfa

__all__ = [
    "DUE_WINDOWS",
    "SORTS",
    "RequestQuery",
    "listing",
    "listing_statement",
    "parse",
]

#: Sortable columns: name -> what the column sorts by (ties broken by the request's id).
SORTS = ("reference", "authority", "status", "deadline", "assignee", "updated")
#: Due windows of the filter: value -> label. "overdue": deadline passed; N: within N days
#: (overdue included), as on the dashboard; "none": no deadline.
DUE_WINDOWS: Mapping[str, str] = {
    "overdue": "Overdue",
    "7": "Overdue or due within 7 days",
    "30": "Overdue or due within 30 days",
    "none": "No deadline",
}
SEARCH_MAX = 200
#: The list's statuses (never draft: staff do not see drafts).
LISTED_STATUSES = tuple(s for s in RFA_STATUSES if s != "draft")
#: Statuses in which a deadline still matters (as on the dashboard).
_ACTIVE = ("submitted", "in_review", "clarification_requested", "approved", "partially_approved")


@dataclass(frozen=True)
class RequestQuery:
    """What the officer asked for; ``problems`` names the values that were not used."""

    text: str = ""
    authority_id: int | None = None
    status: str | None = None
    assignee: str | None = None  # "me", "nobody" or a user id as text
    due: str | None = None
    sort: str = "updated"
    descending: bool = True
    page: int = 1
    problems: tuple[str, ...] = field(default=())

    def args(self, **changes: object) -> dict[str, str]:
        """The query string of this query with ``changes`` (for links: sort, page)."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        values = {
            "q": query.text,
            "authority": str(query.authority_id) if query.authority_id is not None else "",
            "status": query.status or "",
            "assignee": query.assignee or "",
            "due": query.due or "",
            "sort": "" if query.sort == "updated" and query.descending else query.sort,
            "dir": ""
            if query.sort == "updated" and query.descending
            else ("desc" if query.descending else "asc"),
            "page": str(query.page) if query.page > 1 else "",
        }
        return {key: value for key, value in values.items() if value}

    @property
    def filtered(self) -> bool:
        return any((self.text, self.authority_id, self.status, self.assignee, self.due))


def parse(args: Mapping[str, str]) -> RequestQuery:
    """Read the query string; a value that cannot be used is left out and named."""
    problems: list[str] = []
    text = " ".join(args.get("q", "").split())
    if len(text) > SEARCH_MAX:
        problems.append(f"The search is at most {SEARCH_MAX} characters; it was shortened.")
        text = text[:SEARCH_MAX]
    authority_text = args.get("authority", "").strip()
    authority_id = whole_number(authority_text)
    if authority_text and authority_id is None:
        problems.append("Choose an authority from the list.")
    status = args.get("status", "").strip() or None
    if status is not None and status not in LISTED_STATUSES:
        problems.append("Choose a status from the list.")
        status = None
    assignee = args.get("assignee", "").strip() or None
    if assignee is not None and assignee not in ("me", "nobody") and whole_number(assignee) is None:
        problems.append("Choose an assignee from the list.")
        assignee = None
    due = args.get("due", "").strip() or None
    if due is not None and due not in DUE_WINDOWS:
        problems.append("Choose a due window from the list.")
        due = None
    sort = args.get("sort", "").strip() or "updated"
    if sort not in SORTS:
        problems.append("Choose a column to sort by.")
        sort = "updated"
    direction = args.get("dir", "").strip()
    descending = direction == "desc" if direction in ("asc", "desc") else sort == "updated"
    return RequestQuery(
        text=text,
        authority_id=authority_id,
        status=status,
        assignee=assignee,
        due=due,
        sort=sort,
        descending=descending,
        page=page_number(args.get("page")),
        problems=tuple(problems),
    )


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(stmt: Select[Rfa], query: RequestQuery, viewer: User) -> Select[Rfa]:
    if query.text:
        pattern = _like(query.text)
        stmt = stmt.where(
            or_(
                Rfa.code.ilike(pattern, escape="\\"),
                Rfa.their_reference.ilike(pattern, escape="\\"),
                Rfa.summary_of_facts.ilike(pattern, escape="\\"),
                Rfa.assistance_sought.ilike(pattern, escape="\\"),
            )
        )
    if query.authority_id is not None:
        stmt = stmt.where(Rfa.authority_id == query.authority_id)
    stmt = stmt.where(Rfa.status.in_([query.status] if query.status else LISTED_STATUSES))
    if query.assignee == "me":
        stmt = stmt.where(Rfa.assigned_to_id == viewer.id)
    elif query.assignee == "nobody":
        stmt = stmt.where(Rfa.assigned_to_id.is_(None))
    elif query.assignee is not None:
        stmt = stmt.where(Rfa.assigned_to_id == int(query.assignee))
    if query.due == "none":
        stmt = stmt.where(Rfa.deadline.is_(None))
    elif query.due is not None:
        today: date = utcnow().date()
        days = -1 if query.due == "overdue" else int(query.due)
        stmt = stmt.where(
            Rfa.status.in_(_ACTIVE),
            Rfa.deadline.is_not(None),
            Rfa.deadline <= today + timedelta(days=days),
        )
    return stmt


def _ordered(stmt: Select[Rfa], query: RequestQuery) -> Select[Rfa]:
    if query.sort == "authority":
        stmt = stmt.join(Authority, Authority.id == Rfa.authority_id)
        key: object = Authority.name
    elif query.sort == "assignee":
        stmt = stmt.outerjoin(User, User.id == Rfa.assigned_to_id)
        key = User.display_name
    else:
        key = {
            "reference": Rfa.code,
            "status": Rfa.status,
            "deadline": Rfa.deadline,
            "updated": Rfa.updated_at,
        }[query.sort]
    column = key.desc() if query.descending else key.asc()  # type: ignore[attr-defined]
    tie = Rfa.id.desc() if query.descending else Rfa.id.asc()
    if query.sort in ("deadline", "assignee"):  # no deadline / nobody: always last
        empty = Rfa.deadline.is_(None) if query.sort == "deadline" else Rfa.assigned_to_id.is_(None)
        return stmt.order_by(empty, column, tie)
    return stmt.order_by(column, tie)


#: What the list shows of a request: only these columns are loaded (a request's texts are
#: long), and reading another one raises instead of querying once per row.
LISTED_COLUMNS = (
    Rfa.code,
    Rfa.their_reference,
    Rfa.authority_id,
    Rfa.status,
    Rfa.deadline,
    Rfa.assigned_to_id,
    Rfa.updated_at,
)


def listing(db: Session, viewer: User, query: RequestQuery) -> Page[Rfa]:
    """One page of the requests ``viewer`` may see that match ``query``."""
    return paginate(db, listing_statement(viewer, query), query.page)


def listing_statement(viewer: User, query: RequestQuery) -> Select[Rfa]:
    """The requests ``viewer`` may see that match ``query``, in the list's order."""
    stmt = _ordered(_filtered(scoped(Rfa, viewer), query, viewer), query)
    return stmt.options(load_only(*LISTED_COLUMNS, raiseload=True))
