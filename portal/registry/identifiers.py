"""The register of protected identifiers: what identifies a person at risk (names in any
script, aliases, transliterations, phone and ID numbers, places), sealed at rest.

Values are sealed with :mod:`portal.sealing` for the purpose ``protected_identifier:<code>``
and unsealed only for legal officers' pages (:func:`identifiers_of`) and for package assembly
(:func:`identifiers_withheld_from`). Functions take the session explicitly, flush but never
commit, and refuse bad input with :class:`IdentifierRefused` before changing anything. Every
message, audit event and exception names identifiers by code and persons by code, never by the
value: the value may be the very name the portal must not disclose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_legal_officer
from portal.codes import CodeSeries, CodesUnavailable, add_numbered
from portal.db import aware_utc
from portal.redaction.renditions import MIN_TERM_LENGTH, fold
from portal.registry.models import (
    IDENTIFIER_KINDS,
    Assessment,
    Authority,
    Person,
    ProtectedIdentifier,
    RedactionMark,
)
from portal.sealing import Sealer

__all__ = [
    "IDENTIFIER_CODES",
    "MAX_VALUE_LENGTH",
    "PURPOSE",
    "Identifier",
    "IdentifierRefused",
    "NewIdentifier",
    "add_identifier",
    "add_identifiers",
    "checked_value",
    "has_protection_capacity",
    "identifiers_of",
    "identifiers_withheld_from",
    "kind_label",
    "matching_identifier",
    "purpose",
    "retire_identifier",
]

IDENTIFIER_CODES = CodeSeries("PID", ProtectedIdentifier.code, digits=5)
PURPOSE = "protected_identifier"
MAX_VALUE_LENGTH = 500


class IdentifierRefused(Exception):
    """An action on the register was refused; nothing changed. The message says why, naming
    codes and kinds only (safe to show, log and audit)."""


@dataclass(frozen=True)
class NewIdentifier:
    """An identifier to add: its person, kind and (plaintext) value."""

    person: Person
    kind: str
    value: str


@dataclass(frozen=True)
class Identifier:
    """A register row with its value unsealed (for legal officers' eyes only)."""

    row: ProtectedIdentifier
    value: str

    @property
    def code(self) -> str:
        return self.row.code

    @property
    def retired(self) -> bool:
        return self.row.retired_at is not None


def purpose(code: str) -> str:
    """What an identifier's sealed value is bound to."""
    return f"{PURPOSE}:{code}"


def kind_label(kind: str) -> str:
    return IDENTIFIER_KINDS.get(kind, "identifier").lower()


def checked_value(kind: str, value: str, *, person_code: str) -> str:
    """``value`` trimmed, or :class:`IdentifierRefused` naming the person and the kind."""
    if kind not in IDENTIFIER_KINDS:
        raise IdentifierRefused(f"Choose what kind of identifier this is for {person_code}.")
    text = value.strip()
    what = f"The {kind_label(kind)} for {person_code}"
    if len(text) > MAX_VALUE_LENGTH:
        raise IdentifierRefused(f"{what} must be at most {MAX_VALUE_LENGTH} characters.")
    if "\x00" in text or any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        raise IdentifierRefused(f"{what} holds characters that cannot be stored.")
    if len(fold(text)) < MIN_TERM_LENGTH:
        raise IdentifierRefused(
            f"{what} needs at least {MIN_TERM_LENGTH} letters or digits once spaces and case "
            "are ignored: shorter ones would match everywhere."
        )
    return text


def _refuse_unless_officer(by: User | None) -> None:
    if by is not None and (not is_legal_officer(by) or not by.is_active):
        raise IdentifierRefused("Only legal officers keep the register of protected identifiers.")


def _current_rows(
    db: Session, person_ids: Sequence[int], *, retired: bool = False
) -> list[ProtectedIdentifier]:
    if not person_ids:
        return []
    query = select(ProtectedIdentifier).where(ProtectedIdentifier.person_id.in_(person_ids))
    if not retired:
        query = query.where(ProtectedIdentifier.retired_at.is_(None))
    return list(db.scalars(query.order_by(ProtectedIdentifier.code)))


def _unsealed(sealer: Sealer, row: ProtectedIdentifier) -> str:
    return sealer.unseal(row.sealed, purpose(row.code))


def matching_identifier(
    db: Session, sealer: Sealer, person: Person, value: str, *, retired: bool = False
) -> ProtectedIdentifier | None:
    """The person's current identifier that reads like ``value`` (case, spaces and invisible
    characters ignored), if any; with ``retired``, retired ones count too."""
    wanted = fold(value)
    rows = _current_rows(db, [person.id], retired=retired)
    for row in rows:
        if fold(_unsealed(sealer, row)) == wanted:
            return row
    return None


def add_identifiers(
    db: Session,
    sealer: Sealer,
    new: Sequence[NewIdentifier],
    *,
    actor: str,
    by: User | None = None,
    now: datetime | None = None,
) -> list[ProtectedIdentifier]:
    """Add identifiers of persons at risk, each sealed under a fresh ``PID`` code; audited one
    event per identifier (its code, kind and person). ``by``: the legal officer (None for an
    import). Refuses the lot when any one is refused."""
    _refuse_unless_officer(by)
    moment = aware_utc(now)
    checked: list[tuple[NewIdentifier, str]] = []
    seen: dict[tuple[int, str], int] = {}
    for index, entry in enumerate(new):
        person = entry.person
        if not person.at_risk:
            raise IdentifierRefused(
                f"{person.code} is not flagged at risk; only persons at risk have protected "
                "identifiers."
            )
        text = checked_value(entry.kind, entry.value, person_code=person.code)
        duplicate = matching_identifier(db, sealer, person, text)
        if duplicate is not None or seen.setdefault((person.id, fold(text)), index) != index:
            where = f" as {duplicate.code}" if duplicate is not None else " twice"
            raise IdentifierRefused(
                f"This {kind_label(entry.kind)} is already registered for {person.code}{where}."
            )
        checked.append((entry, text))
    if not checked:
        return []

    def build(codes: list[str]) -> list[ProtectedIdentifier]:
        return [
            ProtectedIdentifier(
                code=code,
                person_id=entry.person.id,
                kind=entry.kind,
                sealed=sealer.seal(text, purpose(code)),
                created_by=by.display_name if by is not None else actor,
                created_by_id=by.id if by is not None else None,
                created_at=moment,
            )
            for code, (entry, text) in zip(codes, checked, strict=True)
        ]

    try:
        rows = list(add_numbered(db, IDENTIFIER_CODES, moment.year, build, count=len(checked)))
    except CodesUnavailable as exc:
        raise IdentifierRefused(f"No identifier code could be allocated: {exc}.") from None
    for row, (entry, _text) in zip(rows, checked, strict=True):
        audit.record(
            db,
            actor,
            "identifier.add",
            f"person:{entry.person.code}",
            {"identifier": row.code, "kind": row.kind},
            now=moment,
        )
    return rows


def add_identifier(
    db: Session,
    sealer: Sealer,
    person: Person,
    kind: str,
    value: str,
    *,
    by: User,
    now: datetime | None = None,
) -> ProtectedIdentifier:
    """Add one identifier for ``person`` (see :func:`add_identifiers`)."""
    [row] = add_identifiers(
        db, sealer, [NewIdentifier(person, kind, value)], actor=audit.actor_label(by), by=by,
        now=now,
    )  # fmt: skip
    return row


def retire_identifier(
    db: Session, identifier: ProtectedIdentifier, *, by: User, now: datetime | None = None
) -> ProtectedIdentifier:
    """Stop checking packages for the identifier; the row stays, marked retired (audited)."""
    _refuse_unless_officer(by)
    if identifier.retired_at is not None:
        raise IdentifierRefused(f"{identifier.code} is already retired.")
    moment = aware_utc(now)
    identifier.retired_at = moment
    identifier.retired_by_id = by.id
    db.flush()
    person_code = db.scalar(select(Person.code).where(Person.id == identifier.person_id))
    audit.record(
        db,
        audit.actor_label(by),
        "identifier.retire",
        f"person:{person_code}",
        {"identifier": identifier.code, "kind": identifier.kind},
        now=moment,
    )
    return identifier


def identifiers_of(db: Session, sealer: Sealer, person: Person) -> list[Identifier]:
    """Every identifier of ``person``, current ones first, with their values unsealed: for
    legal officers' pages only."""
    rows = db.scalars(
        select(ProtectedIdentifier)
        .where(ProtectedIdentifier.person_id == person.id)
        .order_by(ProtectedIdentifier.retired_at.is_not(None), ProtectedIdentifier.code)
    )
    return [Identifier(row, _unsealed(sealer, row)) for row in rows]


def has_protection_capacity(
    db: Session, authority: Authority, *, now: datetime, max_age: timedelta | None = None
) -> bool:
    """Whether ``authority`` can protect witnesses at ``now``: its latest witness_protection
    assessment made by then is satisfied, not expired and (with ``max_age``) not older than
    that, as the eligibility rule ``witness-protection`` reads it."""
    latest = db.scalar(
        select(Assessment)
        .where(
            Assessment.authority_id == authority.id,
            Assessment.criterion == "witness_protection",
            Assessment.assessed_at <= now,
        )
        .order_by(Assessment.assessed_at.desc(), Assessment.code.desc())
        .limit(1)
    )
    if latest is None or latest.finding != "satisfied":
        return False
    if latest.valid_until is not None and latest.valid_until <= now:
        return False
    return max_age is None or now - latest.assessed_at <= max_age


def identifiers_withheld_from(
    db: Session,
    sealer: Sealer,
    authority: Authority,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> list[tuple[str, str]]:
    """(code, value) of every current identifier that must not reach ``authority``.

    The rule mirrors the witness-protection rule and the marks' ``applies``:

    * an authority without witness-protection capacity (:func:`has_protection_capacity` at
      ``now``, ``max_age`` being the rule's parameter) must not receive any identifier of any
      person flagged at risk, whatever items the package holds;
    * a confirmed redaction mark of a person that applies ``always`` means that person's
      identity leaves for no authority: their identifiers are withheld from every authority,
      with capacity or without (and whether or not they are still flagged at risk).

    Retired identifiers are never withheld. Values are unsealed here, in the caller's process:
    call it where the values are used (package assembly), never to log or show them.
    """
    moment = aware_utc(now)
    always = select(RedactionMark.person_id).where(
        RedactionMark.applies == "always",
        RedactionMark.review == "confirmed",
        RedactionMark.person_id.is_not(None),
    )
    protected: ColumnElement[bool] = Person.id.in_(always)
    if not has_protection_capacity(db, authority, now=moment, max_age=max_age):
        protected = or_(Person.at_risk.is_(True), protected)
    rows = db.scalars(
        select(ProtectedIdentifier)
        .join(Person, Person.id == ProtectedIdentifier.person_id)
        .where(ProtectedIdentifier.retired_at.is_(None), protected)
        .order_by(ProtectedIdentifier.code)
    )
    return [(row.code, _unsealed(sealer, row)) for row in rows]
