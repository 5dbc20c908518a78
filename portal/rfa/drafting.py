"""The requester's side of requests for assistance: drafts, submission, withdrawal and the
clarification thread.

Functions take the session explicitly, flush but never commit, and refuse bad input with
typed errors that change nothing. Request contents never reach the audit log: events
name the request and what happened, not what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_legal_officer, is_requester, requests_for
from portal.codes import CodeSeries, CodesUnavailable, add_numbered
from portal.db import utcnow
from portal.eligibility.policy.mandate import Mandate
from portal.notifications import service as notifications
from portal.pages.i18n import N_
from portal.rfa.models import PROCEEDINGS_TYPES, URGENCIES, Message, Rfa
from portal.rfa.status import IllegalTransition, transition

MESSAGE_MAX = 20_000
TEXT_MAX = 20_000
REFERENCE_MAX = 200
#: ``RFA-2026-0001``; past 9999 a year's numbers grow a digit.
RFA_CODES = CodeSeries("RFA", Rfa.code, digits=4)


class RequestError(Exception):
    """A request change was refused; nothing changed."""


class ValidationFailed(RequestError):
    """The entries do not make a valid draft or submission; ``errors`` says why, per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


class StaleEdit(RequestError):
    """Someone else saved the request since this edit began."""


class NotEditable(RequestError):
    """Only drafts can be edited (or submitted), and only by their own authority's requesters."""


class NotAllowed(RequestError):
    """This user may not do that to this request."""


@dataclass
class RfaFields:
    """What a requester enters; empty strings and ``None`` mean "not given"."""

    their_reference: str = ""
    legal_basis: str = ""
    proceedings_type: str = ""
    offences: list[str] = field(default_factory=list)
    persons_concerned: str = ""
    summary_of_facts: str = ""
    assistance_sought: str = ""
    period_from: date | None = None
    period_to: date | None = None
    places: str = ""
    urgency: str = "normal"
    urgency_justification: str = ""
    deadline: date | None = None
    confidentiality: str = ""

    @classmethod
    def of(cls, rfa: Rfa) -> RfaFields:
        return cls(**{f.name: getattr(rfa, f.name) for f in fields(cls)})

    def cleaned(self) -> RfaFields:
        """Surrounding whitespace removed, offences without blanks or repeats."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if isinstance(value, str):
                values[name] = value.strip()
        values["offences"] = list(dict.fromkeys(o.strip() for o in self.offences if o.strip()))
        return RfaFields(**values)


#: Field -> message when the field is missing on submission (translated when shown).
REQUIRED_FOR_SUBMISSION = {
    "their_reference": N_("Enter your reference for this request."),
    "legal_basis": N_("Enter the legal basis of the request."),
    "proceedings_type": N_("Choose the type of proceedings."),
    "offences": N_("Choose at least one offence."),
    "summary_of_facts": N_("Enter a summary of the facts."),
    "assistance_sought": N_("Describe the assistance sought."),
    "period_from": N_("Enter the start of the period concerned."),
    "period_to": N_("Enter the end of the period concerned."),
}


def validate(
    data: RfaFields, mandate: Mandate, *, for_submission: bool, today: date | None = None
) -> dict[str, list[str]]:
    """Field -> messages (empty when valid), every field checked at once so a person sees
    all that is wrong in one answer. Drafts need a reference and proceedings type, must be
    consistent and may not set a deadline in the past; submission also needs every field
    of :data:`REQUIRED_FOR_SUBMISSION`. Messages are English phrases marked for the catalogs
    (``N_``): a page shows them in the reader's language (:func:`portal.pages.i18n.translate`),
    the API and the command line in English."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not data.their_reference:
        add("their_reference", REQUIRED_FOR_SUBMISSION["their_reference"])
    elif len(data.their_reference) > REFERENCE_MAX:
        add(
            "their_reference",
            N_("Your reference must be at most %(limit)s characters.", limit=REFERENCE_MAX),
        )
    if data.proceedings_type not in PROCEEDINGS_TYPES:
        add("proceedings_type", REQUIRED_FOR_SUBMISSION["proceedings_type"])
    known = set(mandate.offences())
    unknown = [o for o in data.offences if o not in known]
    if unknown:
        add(
            "offences",
            N_(
                "Choose offences from the list: %(offences)s is not one.",
                offences=", ".join(unknown),
            ),
        )
    if data.urgency not in URGENCIES:
        add("urgency", N_("Choose how urgent the request is."))
    elif data.urgency != "normal" and not data.urgency_justification:
        add("urgency_justification", N_("Explain why the request is urgent."))
    if data.period_from and data.period_to and data.period_to < data.period_from:
        add("period_to", N_("The end of the period must not be before its start."))
    if data.deadline is not None and data.deadline < (today or utcnow().date()):
        add("deadline", N_("The deadline must not be in the past."))
    for f in fields(data):
        value = getattr(data, f.name)
        if isinstance(value, str) and len(value) > TEXT_MAX:
            add(f.name, N_("This field must be at most %(limit)s characters.", limit=TEXT_MAX))
    if for_submission:
        for name, message in REQUIRED_FOR_SUBMISSION.items():
            if not getattr(data, name) and name not in errors:
                add(name, message)
    return errors


def _check(data: RfaFields, mandate: Mandate, *, for_submission: bool) -> RfaFields:
    cleaned = data.cleaned()
    errors = validate(cleaned, mandate, for_submission=for_submission)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _requester_of(rfa: Rfa, user: User) -> None:
    if not requests_for(user, rfa.authority_id):
        raise NotAllowed(N_("Only requesters of the requesting authority can change this request."))


def next_code(db: Session, year: int) -> str:
    """The next free ``RFA-YYYY-NNNN`` of ``year`` (not reserved: drafts are added with
    :func:`portal.codes.add_numbered`)."""
    return RFA_CODES.next_codes(db, year)[0]


def _apply(rfa: Rfa, data: RfaFields) -> None:
    for f in fields(data):
        setattr(rfa, f.name, getattr(data, f.name))


def create_draft(
    db: Session, author: User, data: RfaFields, mandate: Mandate, *, now: datetime | None = None
) -> Rfa:
    """A new draft of ``author``'s authority with the next free code of the year."""
    if not is_requester(author) or author.authority_id is None:
        raise NotAllowed(N_("Only requesters of an authority can create requests."))
    cleaned = _check(data, mandate, for_submission=False)
    moment = now or utcnow()
    authority_id = author.authority_id

    def draft(codes: list[str]) -> list[Rfa]:
        rfa = Rfa(
            code=codes[0],
            authority_id=authority_id,
            created_by_id=author.id,
            status="draft",
            created_at=moment,
        )
        _apply(rfa, cleaned)
        return [rfa]

    try:
        [rfa] = add_numbered(db, RFA_CODES, moment.year, draft)
    except CodesUnavailable:
        raise RequestError(N_("No request code could be allocated just now; try again.")) from None
    audit.record(db, audit.actor_label(author), "rfa.create", f"rfa:{rfa.code}", now=moment)
    return rfa


def _check_version(db: Session, rfa: Rfa, expected_version: int) -> None:
    if rfa.version != expected_version:
        raise StaleEdit(
            N_(
                "Someone else saved this request while you were editing it. Their changes "
                "are kept; yours are still in the form below: check them against the saved "
                "request and save again."
            )
        )


def _flush(db: Session) -> None:
    try:
        db.flush()
    except StaleDataError:
        raise StaleEdit(
            N_("Someone else saved this request at the same moment. Reload it and try again.")
        ) from None


def _checked_edit(
    db: Session,
    rfa: Rfa,
    by: User,
    data: RfaFields,
    mandate: Mandate,
    expected_version: int,
    for_submission: bool,
) -> RfaFields:
    """The cleaned entries of an edit of a draft by its requester (saved or submitted)."""
    _requester_of(rfa, by)
    if rfa.status != "draft":
        raise NotEditable(
            N_("This request has already been submitted.")
            if for_submission
            else N_("This request has been submitted and can no longer be edited.")
        )
    _check_version(db, rfa, expected_version)
    return _check(data, mandate, for_submission=for_submission)


def update_draft(
    db: Session, rfa: Rfa, by: User, data: RfaFields, mandate: Mandate, *, expected_version: int
) -> Rfa:
    """Save new entries on a draft, unless it changed since ``expected_version``."""
    cleaned = _checked_edit(db, rfa, by, data, mandate, expected_version, for_submission=False)
    _apply(rfa, cleaned)
    _flush(db)
    audit.record(db, audit.actor_label(by), "rfa.update", f"rfa:{rfa.code}")
    return rfa


def submit(
    db: Session, rfa: Rfa, by: User, data: RfaFields, mandate: Mandate, *, expected_version: int
) -> Rfa:
    """Save the entries and submit the draft, when they are complete and valid."""
    cleaned = _checked_edit(db, rfa, by, data, mandate, expected_version, for_submission=True)
    if cleaned != RfaFields.of(rfa):
        _apply(rfa, cleaned)
        _flush(db)
        audit.record(db, audit.actor_label(by), "rfa.update", f"rfa:{rfa.code}")
    try:
        transition(db, rfa, "submitted", by=by)
    except IllegalTransition as exc:
        raise NotEditable(*exc.args) from None
    _flush(db)
    return rfa


def withdraw(db: Session, rfa: Rfa, by: User, reason: str) -> Rfa:
    """Withdraw the request (the reason goes on its timeline, not in the audit log)."""
    _requester_of(rfa, by)
    reason = reason.strip()
    if not reason:
        raise ValidationFailed({"reason": [N_("Say why the request is withdrawn.")]})
    if len(reason) > TEXT_MAX:
        raise ValidationFailed(
            {"reason": [N_("The reason must be at most %(limit)s characters.", limit=TEXT_MAX)]}
        )
    try:
        transition(db, rfa, "withdrawn", by=by, note=reason)
    except IllegalTransition as exc:
        raise NotAllowed(*exc.args) from None
    _flush(db)
    return rfa


def may_post(rfa: Rfa, user: User) -> bool:
    """Requesters of the request's authority and legal officers write in its thread."""
    if rfa.status == "draft":
        return False
    if is_legal_officer(user):
        return True
    return requests_for(user, rfa.authority_id)


def post_message(
    db: Session, rfa: Rfa, author: User, body: str, *, return_to_review: bool = False
) -> Message:
    """Add a message to the clarification thread; a requester answering a clarification
    request may also send the request back to review."""
    if not may_post(rfa, author):
        raise NotAllowed(N_("You cannot write in the thread of this request."))
    body = body.strip()
    if not body:
        raise ValidationFailed({"body": [N_("Write a message.")]})
    if len(body) > MESSAGE_MAX:
        raise ValidationFailed(
            {"body": [N_("A message must be at most %(limit)s characters.", limit=MESSAGE_MAX)]}
        )
    if return_to_review and not (is_requester(author) and rfa.status == "clarification_requested"):
        raise NotAllowed(N_("Only an answer to a clarification request returns it to review."))
    message = Message(rfa_id=rfa.id, author_id=author.id, body=body, created_at=utcnow())
    db.add(message)
    db.flush()
    audit.record(
        db, audit.actor_label(author), "rfa.message", f"rfa:{rfa.code}", {"message": message.id}
    )
    notifications.message_posted(db, rfa, author)
    if return_to_review:
        transition(db, rfa, "in_review", by=author, note="Clarification answered.")
    return message


def thread(db: Session, rfa: Rfa) -> Sequence[tuple[Message, User | None]]:
    """The request's messages, oldest first, with their authors."""
    rows = db.execute(
        select(Message, User)
        .outerjoin(User, User.id == Message.author_id)
        .where(Message.rfa_id == rfa.id)
        .order_by(Message.created_at, Message.id)
    )
    return [(message, user) for message, user in rows]
