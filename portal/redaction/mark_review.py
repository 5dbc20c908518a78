"""Redaction marks and their review: four eyes on every change that decides what leaves.

A mark is *proposed* by one legal officer (or arrives by import, with no proposer) and is
``pending``: eligibility fails its item, so no package can be made with it, until a
*different* legal officer *confirms* it. Every change (moving a box, another reason, another
scope) makes the mark pending again with its editor as proposer. A confirmation names the
``version`` the officer looked at: a mark changed since is refused, not confirmed blind.

Removing a mark takes away a redaction, so it needs four eyes too: a removal is *requested*
and the mark keeps applying until another officer *confirms the removal*. Only a proposer
taking back their own mark that was never confirmed withdraws it at once.

Each step goes to the mark's history (:class:`RedactionMarkEvent`) and to the audit log, by
the mark's code, never its term. Functions flush and never commit; they refuse with
:class:`MarkRefused`, whose message is for the officer and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import require_active_officer
from portal.db import aware_utc
from portal.notifications import service as notifications
from portal.redaction.matcher import Matcher, TermTooShort
from portal.registry import mark_terms
from portal.registry.models import Item, Person, RedactionMark, RedactionMarkEvent
from portal.sealing import Sealer

__all__ = [
    "BOX_MEDIA_TYPES",
    "MIN_BOX_SIDE",
    "REASONS",
    "TERM_MEDIA_TYPES",
    "Box",
    "MarkRefused",
    "cancel_removal",
    "confirm_all",
    "confirm_mark",
    "confirm_removal",
    "edit_mark",
    "history_of",
    "mark_of_item",
    "next_mark_code",
    "propose_box",
    "propose_term",
    "request_removal",
]

#: Why a mark is there: an officer picks one (imports may carry their own words).
REASONS = (
    "Identifies a witness or victim at risk",
    "Identifies a source",
    "Contact details or address of a person at risk",
    "Identity document or number",
    "Face or other feature that identifies a person",
    "Place that could lead to a person at risk",
    "The provider asked for it to be withheld",
)
#: Where a term can be searched: text, PDF text layers and, with OCR, scans and photos.
TERM_MEDIA_TYPES = frozenset(
    {"text/plain", "application/pdf", "image/jpeg", "image/png", "image/tiff", "image/webp"}
)
#: Where a box can be drawn: a page of a PDF or a photo (a box mark of each kind).
BOX_MEDIA_TYPES = {
    "application/pdf": "pdf_box",
    "image/jpeg": "image_box",
    "image/png": "image_box",
}
#: A box smaller than this share of the page on either side is refused (a slip of the mouse).
MIN_BOX_SIDE = 0.002

_CODE = re.compile(r"^M(\d+)$")


class MarkRefused(Exception):
    """A change to a mark refused; the message says why (naming codes, never terms)."""


@dataclass(frozen=True)
class Box:
    """A box in fractions of the page, origin top left."""

    x0: float
    y0: float
    x1: float
    y1: float

    def checked(self) -> Box:
        """This box, or MarkRefused saying what is wrong with it."""
        values = (self.x0, self.y0, self.x1, self.y1)
        if any(value != value or value < 0 or value > 1 for value in values):  # NaN too
            raise MarkRefused(
                "A box must lie on the page: each coordinate is a fraction from 0 to 1."
            )
        if self.x1 - self.x0 < MIN_BOX_SIDE or self.y1 - self.y0 < MIN_BOX_SIDE:
            raise MarkRefused(
                "A box needs a width and a height: x1 must be greater than x0 and y1 greater "
                "than y0 (the right and bottom edges after the left and top)."
            )
        return self


def _flush(db: Session, mark: RedactionMark, item: Item) -> None:
    """Write the change; MarkRefused when another officer changed the mark meanwhile."""
    what = _what(mark, item)  # before: a failed flush leaves the objects unreadable
    try:
        db.flush()
    except StaleDataError:
        raise MarkRefused(
            f"{what} was changed by someone else at the same moment: look at it again."
        ) from None


def _officer(by: User) -> None:
    require_active_officer(by, MarkRefused)


def _reason(reason: str) -> str:
    if reason not in REASONS:
        raise MarkRefused("Choose the reason for the mark from the list.")
    return reason


def _applies(applies: str) -> str:
    if applies not in ("always", "without_protection"):
        raise MarkRefused(
            "Choose when the mark applies: always, or only for authorities without "
            "witness-protection capacity."
        )
    return applies


def _what(mark: RedactionMark, item: Item) -> str:
    return f"Mark {mark.code} of {item.code}"


def _event(
    db: Session,
    mark: RedactionMark,
    item: Item,
    action: str,
    by: User | None,
    moment: datetime,
    detail: Mapping[str, object] | None = None,
) -> None:
    """The step in the mark's history and in the audit log (never the term)."""
    shown = dict(detail or {})
    db.add(
        RedactionMarkEvent(
            item_id=item.id,
            mark_code=mark.code,
            action=action,
            actor_id=by.id if by is not None else None,
            version=mark.version,
            at=moment,
            detail=shown,
        )
    )
    db.flush()
    audit.record(
        db,
        audit.actor_label(by) if by is not None else "import",
        f"mark.{action}",
        f"item:{item.code}",
        {"mark": mark.code, "version": mark.version, **shown},
        now=moment,
    )


def _geometry(mark: RedactionMark) -> dict[str, object]:
    detail: dict[str, object] = {"kind": mark.kind, "reason": mark.reason, "applies": mark.applies}
    if mark.page is not None:
        detail["page"] = mark.page
    if mark.x0 is not None:
        detail["box"] = [mark.x0, mark.y0, mark.x1, mark.y1]
    return detail


def next_mark_code(db: Session, item: Item) -> str:
    """The next free ``M<n>`` of the item: above every code it has or ever had (a removed
    mark's code is never given to another, so its history stays its own)."""
    codes = set(db.scalars(select(RedactionMark.code).where(RedactionMark.item_id == item.id)))
    codes.update(
        db.scalars(
            select(RedactionMarkEvent.mark_code).where(RedactionMarkEvent.item_id == item.id)
        )
    )
    numbers = [int(match.group(1)) for code in codes if (match := _CODE.match(code))]
    return f"M{max(numbers, default=0) + 1}"


def mark_of_item(db: Session, item: Item, mark_code: str) -> RedactionMark:
    """Mark ``mark_code`` of ``item``; MarkRefused when it has none."""
    mark = db.scalar(
        select(RedactionMark).where(
            RedactionMark.item_id == item.id, RedactionMark.code == mark_code[:40]
        )
    )
    if mark is None:
        raise MarkRefused(f"{item.code} has no mark {mark_code[:40]}.")
    return mark


def _person(db: Session, person_code: str | None) -> Person | None:
    if not person_code:
        return None
    person = db.scalar(select(Person).where(Person.code == person_code[:32]))
    if person is None:
        raise MarkRefused(f"There is no person {person_code[:32]}.")
    return person


def propose_term(
    db: Session,
    sealer: Sealer,
    item: Item,
    term: str,
    reason: str,
    *,
    by: User,
    applies: str = "always",
    person_code: str | None = None,
    now: datetime | None = None,
) -> RedactionMark:
    """A pending term mark on ``item`` (the term sealed at rest)."""
    _officer(by)
    if item.media_type not in TERM_MEDIA_TYPES:
        raise MarkRefused(f"{item.code} is {item.media_type}: a term cannot be searched in it.")
    term = " ".join(term.split())
    if len(term) > 200:
        raise MarkRefused("A term is at most 200 characters.")
    code = next_mark_code(db, item)
    try:
        Matcher([(code, term)])
    except TermTooShort:
        raise MarkRefused(
            "The term is too short: it needs at least 3 letters or digits (a shorter one would "
            "match almost everywhere)."
        ) from None
    sealed = mark_terms.seal_term(sealer, item.code, code, term)
    return _proposed(
        db, item, by, reason, applies, person_code, now, code=code, kind="term", term_sealed=sealed
    )


def _proposed(
    db: Session,
    item: Item,
    by: User,
    reason: str,
    applies: str,
    person_code: str | None,
    now: datetime | None,
    **what: object,
) -> RedactionMark:
    """A new pending mark of ``item`` (``what``: its code, kind and kind's fields), proposed
    by ``by``, flushed and in its history."""
    moment = aware_utc(now)
    person = _person(db, person_code)
    mark = RedactionMark(
        item_id=item.id,
        reason=_reason(reason),
        applies=_applies(applies),
        review="pending",
        person_id=person.id if person is not None else None,
        proposed_by_id=by.id,
        proposed_at=moment,
        created_at=moment,
        **what,
    )
    db.add(mark)
    db.flush()
    _event(db, mark, item, "proposed", by, moment, _geometry(mark))
    notifications.marks_await_confirmation(db, item, by)
    return mark


def _page(item: Item, page: int | None, page_count: int) -> int | None:
    kind = BOX_MEDIA_TYPES.get(item.media_type)
    if kind is None:
        raise MarkRefused(f"{item.code} is {item.media_type}: a box cannot be drawn on it.")
    if kind == "image_box":
        if page not in (None, 1):
            raise MarkRefused(f"{item.code} is a photo: it has one page.")
        return None
    if page is None or page < 1 or page > page_count:
        raise MarkRefused(
            f"{item.code} has {page_count} page(s): choose a page from 1 to {page_count}."
        )
    return page


def propose_box(
    db: Session,
    item: Item,
    page: int | None,
    box: Box,
    reason: str,
    *,
    page_count: int,
    by: User,
    applies: str = "always",
    person_code: str | None = None,
    now: datetime | None = None,
) -> RedactionMark:
    """A pending box on page ``page`` of a PDF (of ``page_count`` pages) or on a photo."""
    _officer(by)
    on_page = _page(item, page, page_count)
    box = box.checked()
    return _proposed(
        db, item, by, reason, applies, person_code, now,
        code=next_mark_code(db, item), kind=BOX_MEDIA_TYPES[item.media_type], page=on_page,
        x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1,
    )  # fmt: skip


def _current(mark: RedactionMark, item: Item, version: int) -> None:
    if mark.version != version:
        raise MarkRefused(
            f"{_what(mark, item)} changed since you opened it (version {version}, now "
            f"{mark.version}): look at it again."
        )


def edit_mark(
    db: Session,
    mark: RedactionMark,
    item: Item,
    *,
    version: int,
    by: User,
    box: Box | None = None,
    page: int | None = None,
    page_count: int = 1,
    reason: str | None = None,
    applies: str | None = None,
    now: datetime | None = None,
) -> None:
    """Move a box, or give another reason or scope: the mark is pending again, proposed by
    ``by`` (another officer confirms the change)."""
    _officer(by)
    _current(mark, item, version)
    before = _geometry(mark)
    if box is not None:
        if mark.kind not in ("pdf_box", "image_box"):
            raise MarkRefused(f"{_what(mark, item)} is not a box: it cannot be moved.")
        on_page = _page(item, page if mark.kind == "pdf_box" else None, page_count)
        box = box.checked()
        mark.page, mark.x0, mark.y0, mark.x1, mark.y1 = on_page, box.x0, box.y0, box.x1, box.y1
    if reason is not None and reason != mark.reason:  # an imported mark keeps its own words
        mark.reason = _reason(reason)
    if applies is not None:
        mark.applies = _applies(applies)
    if _geometry(mark) == before:
        raise MarkRefused(f"{_what(mark, item)}: nothing was changed.")
    moment = aware_utc(now)
    mark.review = "pending"
    mark.confirmed_by_id = mark.confirmed_at = None
    mark.proposed_by_id, mark.proposed_at = by.id, moment
    _flush(db, mark, item)
    _event(db, mark, item, "edited", by, moment, _geometry(mark))
    notifications.marks_await_confirmation(db, item, by)


def confirm_mark(
    db: Session,
    mark: RedactionMark,
    item: Item,
    *,
    version: int,
    by: User,
    now: datetime | None = None,
) -> None:
    """Confirm a pending mark as it was at ``version``; never by its proposer."""
    _officer(by)
    _current(mark, item, version)
    if mark.review != "pending":
        raise MarkRefused(f"{_what(mark, item)} is already confirmed.")
    if mark.proposed_by_id == by.id:
        raise MarkRefused(
            f"{_what(mark, item)}: you proposed it; another legal officer must confirm it."
        )
    moment = aware_utc(now)
    mark.review = "confirmed"
    mark.confirmed_by_id, mark.confirmed_at = by.id, moment
    _flush(db, mark, item)
    _event(db, mark, item, "confirmed", by, moment)
    _settle_when_done(db, item)


def confirm_all(
    db: Session,
    item: Item,
    versions: Mapping[str, int],
    *,
    by: User,
    now: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """Confirm the pending marks of ``item`` the officer looked at (code -> version seen):
    (confirmed codes, codes left because ``by`` proposed them). Refused, changing nothing,
    when a mark changed since or a pending mark was not shown."""
    _officer(by)
    pending = db.scalars(
        select(RedactionMark)
        .where(RedactionMark.item_id == item.id, RedactionMark.review == "pending")
        .order_by(RedactionMark.id)
    ).all()
    if not pending:
        raise MarkRefused(f"{item.code} has no pending mark to confirm.")
    unseen = [mark.code for mark in pending if mark.code not in versions]
    if unseen:
        raise MarkRefused(
            f"{item.code}: mark(s) {', '.join(unseen)} were proposed since you opened the "
            "page: look at them first."
        )
    for mark in pending:
        _current(mark, item, versions[mark.code])
    confirmed: list[str] = []
    own: list[str] = []
    for mark in pending:
        if mark.proposed_by_id == by.id:
            own.append(mark.code)
            continue
        confirm_mark(db, mark, item, version=mark.version, by=by, now=now)
        confirmed.append(mark.code)
    return confirmed, own


def _settle_when_done(db: Session, item: Item) -> None:
    """Nothing of ``item`` waits for a second officer any more: its notices are read."""
    waiting = db.scalar(
        select(
            exists().where(
                RedactionMark.item_id == item.id,
                or_(
                    RedactionMark.review == "pending",
                    RedactionMark.removal_requested_at.is_not(None),
                ),
            )
        )
    )
    if not waiting:
        notifications.marks_settled(db, item)


def _ever_confirmed(db: Session, mark: RedactionMark, item: Item) -> bool:
    return mark.review == "confirmed" or bool(
        db.scalar(
            select(
                exists().where(
                    RedactionMarkEvent.item_id == item.id,
                    RedactionMarkEvent.mark_code == mark.code,
                    RedactionMarkEvent.action == "confirmed",
                )
            )
        )
    )


def _delete(db: Session, mark: RedactionMark, item: Item) -> None:
    db.delete(mark)
    _flush(db, mark, item)


def request_removal(
    db: Session,
    mark: RedactionMark,
    item: Item,
    *,
    version: int,
    by: User,
    now: datetime | None = None,
) -> bool:
    """Ask for the mark to go: True when it went at once (its proposer taking back a mark
    never confirmed), False when it now waits for another officer (and still applies)."""
    _officer(by)
    _current(mark, item, version)
    moment = aware_utc(now)
    if mark.proposed_by_id == by.id and not _ever_confirmed(db, mark, item):
        _delete(db, mark, item)
        _event(db, mark, item, "withdrawn", by, moment)
        _settle_when_done(db, item)
        return True
    if mark.removal_requested_at is not None:
        raise MarkRefused(f"Removing {mark.code} of {item.code} has already been asked for.")
    mark.removal_requested_by_id, mark.removal_requested_at = by.id, moment
    _flush(db, mark, item)
    _event(db, mark, item, "removal_requested", by, moment)
    notifications.marks_await_confirmation(db, item, by)
    return False


def cancel_removal(
    db: Session, mark: RedactionMark, item: Item, *, by: User, now: datetime | None = None
) -> None:
    """Take back a request to remove the mark (it keeps applying, as it did)."""
    _officer(by)
    if mark.removal_requested_at is None:
        raise MarkRefused(f"Nobody asked to remove {mark.code} of {item.code}.")
    moment = aware_utc(now)
    mark.removal_requested_by_id = mark.removal_requested_at = None
    _flush(db, mark, item)
    _event(db, mark, item, "removal_cancelled", by, moment)
    _settle_when_done(db, item)


def confirm_removal(
    db: Session,
    mark: RedactionMark,
    item: Item,
    *,
    version: int,
    by: User,
    now: datetime | None = None,
) -> None:
    """Remove the mark as a second officer; never by the officer who asked."""
    _officer(by)
    _current(mark, item, version)
    if mark.removal_requested_at is None:
        raise MarkRefused(f"Nobody asked to remove {mark.code} of {item.code}.")
    if mark.removal_requested_by_id == by.id:
        raise MarkRefused(
            f"You asked to remove {mark.code} of {item.code}; another legal officer must agree."
        )
    _delete(db, mark, item)
    _event(db, mark, item, "removed", by, aware_utc(now))
    _settle_when_done(db, item)


def history_of(
    db: Session, item: Item, mark_code: str | None = None
) -> Sequence[RedactionMarkEvent]:
    """The steps of the item's marks (of one mark when ``mark_code``), oldest first."""
    query = select(RedactionMarkEvent).where(RedactionMarkEvent.item_id == item.id)
    if mark_code is not None:
        query = query.where(RedactionMarkEvent.mark_code == mark_code)
    return db.scalars(query.order_by(RedactionMarkEvent.at, RedactionMarkEvent.id)).all()
