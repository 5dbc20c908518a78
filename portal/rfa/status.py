"""The status machine of a request for assistance, in one place.

    draft → submitted → in_review ⇄ clarification_requested
          → approved | partially_approved | declined → transmitted → acknowledged → closed
    and withdrawn (by the requester, once submitted and before a decision; a draft was
    never sent, so there is nothing to withdraw).

Every transition names the roles that may make it. :func:`transition` refuses anything
else with a message that says what is allowed, changes nothing in that case, and audits
and timelines every change it makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.db import utcnow
from portal.notifications import service as notifications
from portal.pages import labels
from portal.rfa.models import Rfa, RfaStatusChange

DECIDED = ("approved", "partially_approved", "declined")

#: (from, to) -> roles that may make the move. "system" is the portal itself (e.g. a
#: package released for the request).
TRANSITIONS: Mapping[tuple[str, str], frozenset[str]] = {
    ("draft", "submitted"): frozenset({"requester"}),
    ("submitted", "in_review"): frozenset({"legal_officer"}),
    ("in_review", "clarification_requested"): frozenset({"legal_officer"}),
    ("clarification_requested", "in_review"): frozenset({"legal_officer", "requester"}),
    **{("in_review", decided): frozenset({"legal_officer"}) for decided in DECIDED},
    ("approved", "transmitted"): frozenset({"legal_officer", "system"}),
    ("partially_approved", "transmitted"): frozenset({"legal_officer", "system"}),
    ("transmitted", "acknowledged"): frozenset({"recipient", "system"}),
    ("acknowledged", "closed"): frozenset({"legal_officer"}),
    ("declined", "closed"): frozenset({"legal_officer"}),
    **{
        (before, "withdrawn"): frozenset({"requester"})
        for before in ("submitted", "in_review", "clarification_requested")
    },
}

LABELS: Mapping[str, str] = labels.RFA_STATUS


def status_label(status: str) -> str:
    """A status as a page shows it on its own, in the request's language: "In review"."""
    from portal.pages.i18n import gettext

    return str(gettext(LABELS.get(status, status))).capitalize()


class IllegalTransition(Exception):
    """The move is not allowed from this state, or not for this role; nothing changed."""


def next_states(status: str, role: str) -> list[str]:
    """The states ``role`` may move a request in ``status`` to."""
    return [to for (frm, to), roles in TRANSITIONS.items() if frm == status and role in roles]


def check_transition(status: str, to_status: str, role: str) -> None:
    """Raise :class:`IllegalTransition` with a clear message unless the move is allowed."""
    roles = TRANSITIONS.get((status, to_status))
    if roles is None:
        allowed = [LABELS[to] for (frm, to) in TRANSITIONS if frm == status]
        options = ", ".join(allowed) if allowed else "nothing: this is a final state"
        raise IllegalTransition(
            f"A request that is {LABELS.get(status, status)} cannot become "
            f"{LABELS.get(to_status, to_status)}; from here it can become: {options}."
        )
    if role not in roles:
        allowed_roles = " or ".join(sorted(r.replace("_", " ") for r in roles))
        raise IllegalTransition(
            f"Moving a request from {LABELS[status]} to {LABELS[to_status]} is for "
            f"{allowed_roles}, not {role.replace('_', ' ')}."
        )


def transition(
    db: Session,
    rfa: Rfa,
    to_status: str,
    *,
    by: User | None,
    note: str = "",
    now: datetime | None = None,
) -> RfaStatusChange:
    """Move ``rfa`` to ``to_status`` as ``by`` (``None``: the portal itself), record the step
    in the timeline and the audit log. Flushes; the caller commits."""
    role = by.role if by is not None else "system"
    from_status = rfa.status
    check_transition(from_status, to_status, role)
    moment = now or utcnow()
    rfa.status = to_status
    if to_status == "submitted" and rfa.submitted_at is None:
        rfa.submitted_at = moment
    change = RfaStatusChange(
        rfa_id=rfa.id,
        from_status=from_status,
        to_status=to_status,
        note=note,
        changed_by_id=by.id if by is not None else None,
        changed_at=moment,
    )
    db.add(change)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by) if by is not None else audit.SYSTEM_ACTOR,
        "rfa.transition",
        f"rfa:{rfa.code}",
        {"from": from_status, "to": to_status},
        now=moment,
    )
    notifications.status_changed(db, rfa, by, LABELS[to_status])
    return change
