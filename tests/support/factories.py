"""Repository rows for tests: one small function a model, no factory library.

Each function adds a valid row with fictional defaults to the session, flushes it (so it has
its id) and returns it; keyword arguments override any column. Import the module under a
short name so the functions do not shadow a test's own variables::

    from tests.support import factories as make

    authority = make.authority(db, "NWU-NL")
    make.assessments(db, authority)
    rfa = make.rfa(db, authority, items=[make.item(db, make.provider(db))])

Codes not given are numbered per database (``ITM-00001``, ``RFA-2026-0002``...): short,
the same in every run of a test, and unique across the sessions a test opens. Rows with
credentials that a browser can sign in with come from :func:`tests.support.auth.make_user`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from portal.accounts import totp_seeds
from portal.accounts.models import User
from portal.canonical import sha256_hex
from portal.consent.models import Consent
from portal.db import Base, utcnow
from portal.eligibility.models import Decision
from portal.registry import models as registry
from portal.registry.mark_terms import seal_term
from portal.rfa.models import Rfa, RfaItem
from portal.sealing import Sealer

Row = TypeVar("Row", bound=Base)

_numbers: dict[str, itertools.count[int]] = {}

# Test mode seals TOTP seeds under one random key per process, which sessions without a sealer
# of their own (the `sessions` fixture's) use too: users made through a bare session then sign
# in through any test app (portal.accounts.totp_seeds.test_sealer).
totp_seeds.test_sealer()


def number(db: Session) -> int:
    """The next number of the database ``db`` works on (every session of a test shares it)."""
    url = str(db.get_bind().engine.url)
    return next(_numbers.setdefault(url, itertools.count(1)))


def stored(db: Session, model: type[Row], ident: object) -> Row:
    """The row of ``model`` whose primary key is ``ident`` (it must exist)."""
    row = db.get(model, ident)
    assert row is not None, f"no {model.__name__} {ident!r}"
    return row


#: Seals what no portal will open (the default for term marks whose term nobody reads).
NO_PORTALS_SEALER = Sealer.random()


def _new(db: Session, model: type[Row], columns: dict[str, Any], overrides: dict[str, Any]) -> Row:
    """Add and flush a ``model`` row of ``columns``, ``overrides`` taking precedence."""
    row = model(**{**columns, **overrides})
    db.add(row)
    db.flush()
    return row


def authority(db: Session, code: str | None = None, **fields: Any) -> registry.Authority:
    code = code or f"AUTH-{number(db)}"
    columns = dict(code=code, name=f"Authority {code}", kind="war_crimes_unit", country="XN")
    return _new(db, registry.Authority, columns, fields)


def assessment(
    db: Session,
    authority: registry.Authority,
    criterion: str = "fair_trial",
    *,
    now: datetime | None = None,
    age_days: int = 40,
    valid_days: int = 300,
    **fields: Any,
) -> registry.Assessment:
    """A satisfied finding made ``age_days`` before ``now`` (default: the clock), valid until
    ``valid_days`` after it (a negative number: expired)."""
    now = now or utcnow()
    columns = {
        "code": f"{authority.code}-{criterion}",
        "authority_id": authority.id,
        "criterion": criterion,
        "finding": "satisfied",
        "basis": "Fictional basis.",
        "assessed_at": now - timedelta(days=age_days),
        "valid_until": now + timedelta(days=valid_days),
        "assessed_by": "Officer Ilse Marwick",
    }
    return _new(db, registry.Assessment, columns, fields)


def assessments(
    db: Session,
    authority: registry.Authority,
    *,
    findings: str | Mapping[str, str] = "satisfied",
    **options: Any,
) -> list[registry.Assessment]:
    """One assessment per criterion; ``findings`` is one finding for all or one per criterion."""
    return [
        assessment(
            db,
            authority,
            criterion,
            finding=findings if isinstance(findings, str) else findings[criterion],
            **options,
        )
        for criterion in registry.ASSESSMENT_CRITERIA
    ]


def provider(db: Session, code: str | None = None, **fields: Any) -> registry.Provider:
    code = code or f"PRV-{number(db)}"
    columns = dict(code=code, name=f"Provider {code}", kind="ngo", public_name=f"NGO {code}")
    return _new(db, registry.Provider, columns, fields)


def item(
    db: Session, provider: registry.Provider, code: str | None = None, **fields: Any
) -> registry.Item:
    """A text witness statement of ``provider`` (its digest is made from its code)."""
    n = number(db)
    code = code or f"ITM-{n:05d}"
    columns = {
        "code": code,
        "provider_id": provider.id,
        "kind": "witness_statement",
        "title": f"Statement {n}",
        "media_type": "text/plain",
        "original_filename": f"s{n}.txt",
        "size_bytes": 10,
        "sha256": sha256_hex(code),
        "sensitivity": "high",
        "tags": [],
    }
    return _new(db, registry.Item, columns, fields)


def person(db: Session, *named_in: registry.Item, **fields: Any) -> registry.Person:
    """A witness at risk, named in the items ``named_in``."""
    n = number(db)
    columns = {"code": f"PER-{n}", "pseudonym": f"Witness {n}", "role": "witness", "at_risk": True}
    row = _new(db, registry.Person, columns, fields)
    for subject in named_in:
        _new(db, registry.ItemPerson, {"item_id": subject.id, "person_id": row.id}, {})
    return row


def redaction_mark(
    db: Session,
    item: registry.Item,
    *,
    person: registry.Person | None = None,
    sealer: Sealer | None = None,
    term: str | None = None,
    **fields: Any,
) -> registry.RedactionMark:
    """A confirmed term mark removing ``term`` ("A name" unless given) wherever the item goes
    (other kinds: pass ``kind`` and their fields; they get no term). The term is sealed like
    the portal seals it, with ``sealer``: pass the portal's own where something will open it
    (package assembly); by default a key no portal has, for tests that never read the term."""
    kind = fields.get("kind", "term")
    code = fields.pop("code", f"M{number(db)}")
    sealed = None
    if kind == "term":
        sealed = seal_term(sealer or NO_PORTALS_SEALER, item.code, code, term or "A name")
    columns = {
        "code": code,
        "item_id": item.id,
        "person_id": person.id if person else None,
        "kind": "term",
        "term_sealed": sealed,
        "reason": "Identifies a witness at risk",
        "applies": "always",
        "review": "confirmed",
    }
    return _new(db, registry.RedactionMark, columns, fields)


def consent(
    db: Session,
    provider: registry.Provider,
    authority: registry.Authority,
    event: str = "grant",
    *,
    item: registry.Item | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> Consent:
    """A ledger event recorded ``at`` (default: now) for ``item``, or standing without one;
    declines and revocations give a reason."""
    n = number(db)
    columns = {
        "code": f"CNS-{n:05d}",
        "provider_id": provider.id,
        "authority_id": authority.id,
        "item_id": item.id if item else None,
        "event": event,
        "reason": None if event == "grant" else f"Reason {n}.",
        "recorded_at": at or utcnow(),
    }
    return _new(db, Consent, columns, fields)


def rfa(
    db: Session,
    authority: registry.Authority,
    code: str | None = None,
    *,
    status: str = "submitted",
    items: Iterable[registry.Item] = (),
    **fields: Any,
) -> Rfa:
    """A request of ``authority`` for an investigation of torture in the second half of 2023,
    submitted now unless it is a draft; ``items`` become its candidates."""
    n = number(db)
    columns = {
        "code": code or f"RFA-2026-{n:04d}",
        "authority_id": authority.id,
        "status": status,
        "their_reference": f"REF-{n}",
        "proceedings_type": "investigation",
        "offences": ["War crime of torture"],
        "period_from": date(2023, 6, 1),
        "period_to": date(2023, 12, 31),
        "submitted_at": None if status == "draft" else utcnow(),
    }
    row = _new(db, Rfa, columns, fields)
    for subject in items:
        candidate(db, row, subject)
    return row


def candidate(db: Session, rfa: Rfa, item: registry.Item, **fields: Any) -> RfaItem:
    """``item`` as a candidate of ``rfa``."""
    return _new(db, RfaItem, {"rfa_id": rfa.id, "item_id": item.id}, fields)


def decision_row(db: Session, rfa: Rfa, at: datetime) -> Decision:
    """A bare decision record of ``rfa`` made ``at`` (no snapshot or results in it), for
    tests of what reads only when requests were decided; :func:`run_check` makes real ones."""
    columns = {
        "id": str(uuid.uuid4()),
        "rfa_id": rfa.id,
        "policy_id": "test",
        "policy_revision": "0" * 64,
        "engine_version": "test",
        "snapshot_json": "{}",
        "snapshot_sha256": "0" * 64,
        "results_json": "{}",
        "outcome": "eligible",
        "created_at": at,
    }
    return _new(db, Decision, columns, {})


def user(
    db: Session,
    role: str = "legal_officer",
    *,
    authority: registry.Authority | None = None,
    provider: registry.Provider | None = None,
    **fields: Any,
) -> User:
    """An active, approved account without credentials, for domain tests (no sign-in)."""
    n = number(db)
    columns = {
        "approved_at": datetime(2026, 1, 1, tzinfo=UTC),  # four-eyes done (accounts.approval)
        "email": f"user{n}@mechanism.example",
        "display_name": f"User {n}",
        "role": role,
        "authority_id": authority.id if authority else None,
        "provider_id": provider.id if provider else None,
        "failed_logins": 0,
        "session_epoch": 0,
        "is_active": True,
    }
    return _new(db, User, columns, fields)
