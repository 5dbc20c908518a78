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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
from portal.sealing import VERSION, CannotUnseal, Sealer

__all__ = [
    "IDENTIFIER_CODES",
    "MAX_VALUE_LENGTH",
    "PURPOSE",
    "Identifier",
    "IdentifierLookup",
    "IdentifierRefused",
    "NewIdentifier",
    "UnreadableIdentifiers",
    "add_identifier",
    "add_identifiers",
    "checked_value",
    "current_identifier_rows",
    "current_identifiers",
    "has_protection_capacity",
    "identifiers_listed",
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


_MAX_CODES_SHOWN = 10


class UnreadableIdentifiers(CannotUnseal):
    """Current identifiers whose sealed values do not open: nothing can be checked for them, so
    whatever needs them fails closed. The message names their codes (and why the first does not
    open), never a value; ``codes`` lists them so an officer can retire them."""

    def __init__(self, codes: Sequence[str], first: CannotUnseal) -> None:
        shown = ", ".join(codes[:_MAX_CODES_SHOWN])
        more = len(codes) - _MAX_CODES_SHOWN
        if more > 0:
            shown += f" and {more} more"
        super().__init__(
            f"{shown} cannot be opened (sealed with another key or damaged: {first}); retire "
            "them on the register's person page, or restore the portal's sealing key"
        )
        self.codes = tuple(codes)


@dataclass(frozen=True)
class NewIdentifier:
    """An identifier to add: its person, kind and (plaintext) value."""

    person: Person
    kind: str
    value: str


@dataclass(frozen=True)
class Identifier:
    """A register row with its value unsealed (for legal officers' eyes only); ``value`` is
    None only in :func:`identifiers_listed`, for a row that cannot be opened."""

    row: ProtectedIdentifier
    value: str | None

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


@dataclass
class _Folded:
    """One person's rows by folded value (each list in code order), and the rows that do not
    open with the exception saying why."""

    rows: dict[str, list[ProtectedIdentifier]] = field(default_factory=dict)
    unreadable: list[tuple[ProtectedIdentifier, CannotUnseal]] = field(default_factory=list)


class IdentifierLookup:
    """Finds a person's identifier by value, unsealing and folding each stored row once: one
    lookup serves a whole import or a whole add (see :func:`add_identifiers`), where checking
    every record against every row would be quadratic. It sees the rows of ``db`` when a person
    is first asked about, the rows added through it since, and retirements of those rows; use
    it within one transaction."""

    def __init__(self, db: Session, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer
        self._persons: dict[int, _Folded] = {}

    def matching(
        self, person: Person, value: str, *, retired: bool = False
    ) -> ProtectedIdentifier | None:
        """The person's current identifier that reads like ``value`` (case, spaces and
        invisible characters ignored), if any; with ``retired``, retired ones count too.
        Raises :class:`CannotUnseal` (naming the code) while one of those rows does not open."""
        folded = self._folded(person.id)
        for row, error in folded.unreadable:
            if retired or row.retired_at is None:
                raise error
        for row in folded.rows.get(fold(value), []):
            if retired or row.retired_at is None:
                return row
        return None

    def remember(self, row: ProtectedIdentifier, value: str) -> None:
        """Count ``row`` (just added with ``value``) in later lookups."""
        if row.person_id in self._persons:
            rows = self._persons[row.person_id].rows.setdefault(fold(value), [])
            rows.append(row)
            rows.sort(key=lambda each: each.code)

    def _folded(self, person_id: int) -> _Folded:
        folded = self._persons.get(person_id)
        if folded is None:
            folded = _Folded()
            for row in _current_rows(self.db, [person_id], retired=True):
                try:
                    text = _unsealed(self.sealer, row)
                except CannotUnseal as exc:
                    folded.unreadable.append((row, exc))
                else:
                    folded.rows.setdefault(fold(text), []).append(row)
            self._persons[person_id] = folded
        return folded


def matching_identifier(
    db: Session, sealer: Sealer, person: Person, value: str, *, retired: bool = False
) -> ProtectedIdentifier | None:
    """The person's identifier that reads like ``value`` (see :meth:`IdentifierLookup.matching`;
    to look up many values, keep one :class:`IdentifierLookup`)."""
    return IdentifierLookup(db, sealer).matching(person, value, retired=retired)


def add_identifiers(
    db: Session,
    sealer: Sealer,
    new: Sequence[NewIdentifier],
    *,
    actor: str,
    by: User | None = None,
    now: datetime | None = None,
    lookup: IdentifierLookup | None = None,
) -> list[ProtectedIdentifier]:
    """Add identifiers of persons at risk, each sealed under a fresh ``PID`` code; audited one
    event per identifier (its code, kind and person). ``by``: the legal officer (None for an
    import). Refuses the lot when any one is refused. Duplicates are found with ``lookup``
    (one made for this call when None; an import passes the one it checked its records with)."""
    _refuse_unless_officer(by)
    moment = aware_utc(now)
    if lookup is None:
        lookup = IdentifierLookup(db, sealer)
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
        duplicate = lookup.matching(person, text)
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
    for row, (entry, text) in zip(rows, checked, strict=True):
        lookup.remember(row, text)
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


def _rows_of(db: Session, person: Person) -> list[ProtectedIdentifier]:
    """Every identifier row of ``person``, current ones first."""
    return list(
        db.scalars(
            select(ProtectedIdentifier)
            .where(ProtectedIdentifier.person_id == person.id)
            .order_by(ProtectedIdentifier.retired_at.is_not(None), ProtectedIdentifier.code)
        )
    )


def identifiers_of(db: Session, sealer: Sealer, person: Person) -> list[Identifier]:
    """Every identifier of ``person``, current ones first, with their values unsealed; raises
    :class:`CannotUnseal` (naming the code) when one does not open. For legal officers only."""
    return [Identifier(row, _unsealed(sealer, row)) for row in _rows_of(db, person)]


def identifiers_listed(db: Session, sealer: Sealer, person: Person) -> list[Identifier]:
    """As :func:`identifiers_of`, for the person page: a row that does not open is listed with
    the value None, so that it can be seen and retired. Still raises :class:`CannotUnseal` when
    the portal's key sealed no row of the register at all: then the key file is wrong (a matter
    for the administrators), not the rows."""
    listed: list[Identifier] = []
    first_error: CannotUnseal | None = None
    for row in _rows_of(db, person):
        try:
            listed.append(Identifier(row, _unsealed(sealer, row)))
        except CannotUnseal as exc:
            first_error = first_error or exc
            listed.append(Identifier(row, None))
    if first_error is not None and not _key_seals_any(db, sealer):
        raise first_error
    return listed


def _key_seals_any(db: Session, sealer: Sealer) -> bool:
    """Whether some row of the register was sealed under ``sealer``'s key (by its key id)."""
    prefix = f"{VERSION}:{sealer.key_id}:"
    found = db.scalar(
        select(ProtectedIdentifier.id)
        .where(ProtectedIdentifier.sealed.startswith(prefix, autoescape=True))
        .limit(1)
    )
    return found is not None


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
    call it where the values are used (package assembly), never to log or show them. Fails
    closed: :class:`UnreadableIdentifiers` names every current identifier that does not open.
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
    return _opened(sealer, rows)


def current_identifiers(db: Session, sealer: Sealer) -> list[tuple[str, str]]:
    """(code, value) of every current identifier in the register (the review page's search
    for names on an item's pages); unsealed like :func:`identifiers_withheld_from`."""
    return _opened(sealer, current_identifier_rows(db))


def current_identifier_rows(db: Session) -> list[ProtectedIdentifier]:
    """Every current (not retired) identifier row, by code — sealed."""
    return list(
        db.scalars(
            select(ProtectedIdentifier)
            .where(ProtectedIdentifier.retired_at.is_(None))
            .order_by(ProtectedIdentifier.code)
        )
    )


def _opened(sealer: Sealer, rows: Iterable[ProtectedIdentifier]) -> list[tuple[str, str]]:
    """(code, value) of each row; fails closed naming every row that does not open."""
    opened: list[tuple[str, str]] = []
    unreadable: list[str] = []
    first_error: CannotUnseal | None = None
    for row in rows:
        try:
            opened.append((row.code, _unsealed(sealer, row)))
        except CannotUnseal as exc:
            first_error = first_error or exc
            unreadable.append(row.code)
    if first_error is not None:
        raise UnreadableIdentifiers(unreadable, first_error)
    return opened
