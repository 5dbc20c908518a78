"""Protected identifiers for tests: fictional names, and the register rows added through
:func:`portal.registry.identifiers.add_identifiers` (sealed, coded and audited as in use)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.audit import CLI_ACTOR
from portal.registry.identifiers import NewIdentifier, add_identifiers
from portal.registry.models import Person, ProtectedIdentifier
from portal.sealing import Sealer

#: Fictional names of persons at risk, in several scripts.
LATIN_NAME = "Orlanda Vesk Marrow"
ARABIC_NAME = "سلمى الورداني"
BURMESE_NAME = "ဒေါ်နန်းသီရိ"
PHONE = "+679 555 0199"


def register(
    session: Session, sealer: Sealer, person: Person, value: str, kind: str = "name"
) -> ProtectedIdentifier:
    """Add ``value`` to the register for ``person`` (flushed, not committed)."""
    [row] = add_identifiers(session, sealer, [NewIdentifier(person, kind, value)], actor=CLI_ACTOR)
    return row


def stored_text(session: Session) -> str:
    """Every value of the register's table as stored, as one string (to search for leaks)."""
    rows = session.execute(text("SELECT * FROM protected_identifier")).all()
    return " ".join(str(value) for row in rows for value in row)
