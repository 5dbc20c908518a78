"""Protected identifiers in a bundle (record type ``protected_identifier``): a person's name,
alias, number... sealed on import with the portal's key and added to the register through
:func:`portal.registry.identifiers.add_identifiers` (coded, audited).

An identifier has no code in the bundle: it is the same record as a stored one when the
person is the same and the value reads the same (case, spaces and invisible characters
ignored). Problems name the person and the line, never the value. A retired identifier
imported again stays retired (counted as unchanged): an import does not undo a legal
officer's decision. Each stored identifier is unsealed once per import, not once per record:
one :class:`~portal.registry.identifiers.IdentifierLookup` per transaction of the session
serves the checks and the additions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from portal.importing.records import Record, Target, row_of
from portal.redaction.renditions import fold
from portal.registry.identifiers import (
    IdentifierLookup,
    IdentifierRefused,
    NewIdentifier,
    add_identifiers,
    checked_value,
)
from portal.registry.models import Person, ProtectedIdentifier
from portal.sealing import Sealer

__all__ = [
    "RECORD_TYPE",
    "at_risk_problem",
    "build_identifiers",
    "check_identifier",
    "existing_identifier",
    "value_key",
]

RECORD_TYPE = "protected_identifier"
_LOOKUP = "portal.importing.identifiers.lookup"  # session.info key


def value_key(value: str) -> str:
    """What makes two values the same identifier of one person (kept in memory only: record
    labels never show it)."""
    return fold(value)


def check_identifier(values: dict[str, Any]) -> list[str]:
    """The value's own rules (kind, length once folded), as problems naming no value."""
    if "kind" not in values or "value" not in values:
        return []
    try:
        checked_value(values["kind"], values["value"], person_code=values.get("person", "?"))
    except IdentifierRefused as exc:
        return [str(exc)]
    return []


def at_risk_problem(person: Target) -> str | None:
    """Only persons at risk have identifiers (the person in the bundle or stored)."""
    if isinstance(person, Record):
        at_risk, code = person.values.get("at_risk"), person.values.get("code")
    else:
        assert isinstance(person, Person)  # noqa: S101 - references to persons resolve to persons
        at_risk, code = person.at_risk, person.code
    if at_risk:
        return None
    return f"{code} is not flagged at risk; only persons at risk have protected identifiers"


def existing_identifier(
    session: Session, sealer: Sealer, record: Record
) -> ProtectedIdentifier | None:
    """The stored identifier this record stands for (retired ones included), or None."""
    person = row_of(_single(record.refs.get("person")))
    if person is None:
        return None
    return _lookup(session, sealer).matching(person, record.values["value"], retired=True)


def build_identifiers(
    session: Session, sealer: Sealer, records: Sequence[Record], *, actor: str, now: datetime
) -> None:
    """Seal and add the new identifiers (their persons are stored by now)."""
    new = [
        NewIdentifier(
            row_of(_single(record.refs["person"])), record.values["kind"], record.values["value"]
        )
        for record in records
    ]
    rows = add_identifiers(
        session, sealer, new, actor=actor, now=now, lookup=_lookup(session, sealer)
    )
    for record, row in zip(records, rows, strict=True):
        record.created = row


def _lookup(session: Session, sealer: Sealer) -> IdentifierLookup:
    """The session's lookup for its current transaction: dropped when that transaction ends
    (commit or rollback), when what it remembers may no longer hold and its values are no
    longer needed."""
    cached = session.info.get(_LOOKUP)
    if isinstance(cached, IdentifierLookup) and cached.sealer is sealer:
        return cached
    if not event.contains(session, "after_transaction_end", _forget_lookup):
        event.listen(session, "after_transaction_end", _forget_lookup)
    lookup = IdentifierLookup(session, sealer)
    session.info[_LOOKUP] = lookup
    return lookup


def _forget_lookup(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction itself ended, not a savepoint in it
        session.info.pop(_LOOKUP, None)


def _single(target: Target | list[Target] | None) -> Target | None:
    if isinstance(target, list):
        raise TypeError("expected a single reference")
    return target
