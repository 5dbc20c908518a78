"""The register of protected identifiers (portal.registry.identifiers), on both databases:
values sealed at rest, refusals that never show the value, retiring instead of deleting, and
which identifiers are withheld from which authority."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.registry.identifiers import (
    IdentifierRefused,
    add_identifier,
    has_protection_capacity,
    identifiers_of,
    identifiers_withheld_from,
    retire_identifier,
)
from portal.registry.models import Authority, Person
from portal.sealing import CannotUnseal, Sealer
from tests.support import factories as make
from tests.support.identifiers import (
    ARABIC_NAME,
    BURMESE_NAME,
    LATIN_NAME,
    PHONE,
    register,
    stored_text,
)


@pytest.fixture
def sealer() -> Sealer:
    return Sealer.random()


def _events(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action.like("identifier.%"))))


def test_an_identifier_is_sealed_coded_and_audited(session: Session, sealer: Sealer) -> None:
    officer = make.user(session)
    person = make.person(session)
    row = add_identifier(session, sealer, person, "name", f"  {LATIN_NAME} ", by=officer)
    session.commit()
    assert row.code == f"PID-{utcnow().year}-00001"
    assert (row.kind, row.created_by, row.created_by_id) == (
        "name",
        officer.display_name,
        officer.id,
    )
    stored = stored_text(session)
    for fragment in (LATIN_NAME, "Orlanda", "Marrow"):
        assert fragment not in stored and fragment.lower() not in stored.lower()
    [listed] = identifiers_of(session, sealer, person)
    assert (listed.code, listed.value, listed.retired) == (row.code, LATIN_NAME, False)
    [event] = _events(session)
    assert (event.action, event.target) == ("identifier.add", f"person:{person.code}")
    assert event.actor == f"user:{officer.id}"
    assert row.code in event.details and LATIN_NAME not in event.details


def test_every_script_round_trips(session: Session, sealer: Sealer) -> None:
    officer, person = make.user(session), make.person(session)
    for kind, value in (("name", ARABIC_NAME), ("transliteration", BURMESE_NAME), ("phone", PHONE)):
        add_identifier(session, sealer, person, kind, value, by=officer)
    session.commit()
    values = {entry.value for entry in identifiers_of(session, sealer, person)}
    assert values == {ARABIC_NAME, BURMESE_NAME, PHONE}
    assert not any(value in stored_text(session) for value in values)


def _refused(
    session: Session,
    sealer: Sealer,
    person: Person,
    value: str,
    *,
    kind: str = "name",
    by: User | None = None,
) -> str:
    officer = by or make.user(session)
    with pytest.raises(IdentifierRefused) as caught:
        add_identifier(session, sealer, person, kind, value, by=officer)
    message = str(caught.value)
    if value.strip():
        assert value.strip() not in message
    return message


@pytest.mark.parametrize("value", ["Al", " a  b ", "\u200bX\u200bY\u200b", "", "  "])
def test_values_shorter_than_three_characters_are_refused(
    session: Session, sealer: Sealer, value: str
) -> None:
    person = make.person(session)
    message = _refused(session, sealer, person, value)
    assert person.code in message and "name" in message and "at least 3" in message
    assert identifiers_of(session, sealer, person) == []


def test_a_duplicate_for_the_same_person_is_refused(session: Session, sealer: Sealer) -> None:
    officer, person, other = make.user(session), make.person(session), make.person(session)
    first = add_identifier(session, sealer, person, "name", LATIN_NAME, by=officer)
    message = _refused(session, sealer, person, "  orlanda   VESK marrow", kind="alias")
    assert first.code in message and person.code in message
    add_identifier(session, sealer, other, "name", LATIN_NAME, by=officer)  # another person: fine
    retire_identifier(session, first, by=officer)
    again = add_identifier(session, sealer, person, "name", LATIN_NAME, by=officer)
    assert again.code != first.code


def test_only_persons_at_risk_and_legal_officers(session: Session, sealer: Sealer) -> None:
    safe = make.person(session, at_risk=False)
    assert "not flagged at risk" in _refused(session, sealer, safe, LATIN_NAME)
    admin = make.user(session, "admin")
    message = _refused(session, sealer, make.person(session), LATIN_NAME, by=admin)
    assert "Only legal officers" in message
    inactive = make.user(session, is_active=False)
    assert "Only legal officers" in _refused(
        session, sealer, make.person(session), LATIN_NAME, by=inactive
    )
    nickname = _refused(session, sealer, make.person(session), LATIN_NAME, kind="nickname")
    assert "Choose what kind" in nickname


def test_retiring_keeps_the_row_and_is_audited(session: Session, sealer: Sealer) -> None:
    officer, person = make.user(session), make.person(session)
    row = add_identifier(session, sealer, person, "phone", PHONE, by=officer)
    retire_identifier(session, row, by=officer)
    session.commit()
    assert row.retired_at is not None and row.retired_by_id == officer.id
    [listed] = identifiers_of(session, sealer, person)
    assert listed.retired and listed.value == PHONE
    with pytest.raises(IdentifierRefused, match="already retired"):
        retire_identifier(session, row, by=officer)
    retired = _events(session)[-1]
    assert (retired.action, retired.target) == ("identifier.retire", f"person:{person.code}")
    assert row.code in retired.details and PHONE not in retired.details


def test_a_wrong_key_or_a_moved_value_is_a_typed_error(session: Session, sealer: Sealer) -> None:
    person = make.person(session)
    first = register(session, sealer, person, LATIN_NAME)
    second = register(session, sealer, person, ARABIC_NAME)
    with pytest.raises(CannotUnseal) as caught:
        identifiers_of(session, Sealer.random(), person)
    assert first.code in str(caught.value) and LATIN_NAME not in str(caught.value)
    first.sealed, second.sealed = second.sealed, first.sealed  # swapped between rows
    session.flush()
    with pytest.raises(CannotUnseal, match=first.code):
        identifiers_of(session, sealer, person)


# --------------------------------------------------------------------------- withheld


def _authority(session: Session, finding: str | None, **options: object) -> Authority:
    authority = make.authority(session)
    if finding is not None:
        make.assessment(
            session,
            authority,
            "witness_protection",
            finding=finding,
            **options,  # type: ignore[arg-type]
        )
    return authority


def test_without_capacity_every_at_risk_persons_identifiers_are_withheld(
    session: Session, sealer: Sealer
) -> None:
    first, second = make.person(session), make.person(session)
    not_at_risk = make.person(session)
    register(session, sealer, not_at_risk, "Kestrel Anvar Dune")
    a = register(session, sealer, first, LATIN_NAME)
    b = register(session, sealer, second, ARABIC_NAME)
    c = register(session, sealer, second, BURMESE_NAME, "transliteration")
    retired = register(session, sealer, first, PHONE, "phone")
    retire_identifier(session, retired, by=make.user(session))
    not_at_risk.at_risk = False
    session.flush()
    for authority in (
        _authority(session, "not_satisfied"),
        _authority(session, None),
        _authority(session, "satisfied", valid_days=-1),  # expired
    ):
        assert not has_protection_capacity(session, authority, now=utcnow())
        withheld = identifiers_withheld_from(session, sealer, authority)
        assert withheld == [(a.code, LATIN_NAME), (b.code, ARABIC_NAME), (c.code, BURMESE_NAME)]


def test_with_capacity_only_persons_protected_always_are_withheld(
    session: Session, sealer: Sealer
) -> None:
    able = _authority(session, "satisfied")
    assert has_protection_capacity(session, able, now=utcnow())
    always, pending, elsewhere = make.person(session), make.person(session), make.person(session)
    kept = register(session, sealer, always, LATIN_NAME)
    register(session, sealer, pending, ARABIC_NAME)
    register(session, sealer, elsewhere, BURMESE_NAME)
    item = make.item(session, make.provider(session))
    make.redaction_mark(session, item, person=always, applies="always")
    make.redaction_mark(session, item, person=pending, applies="always", review="pending")
    make.redaction_mark(session, item, person=elsewhere, applies="without_protection")
    session.flush()
    assert identifiers_withheld_from(session, sealer, able) == [(kept.code, LATIN_NAME)]
    always.at_risk = False  # the mark still says "always"
    session.flush()
    assert identifiers_withheld_from(session, sealer, able) == [(kept.code, LATIN_NAME)]


def test_capacity_reads_the_latest_assessment_like_the_rule(session: Session) -> None:
    now = utcnow()
    authority = _authority(session, "satisfied", age_days=400, now=now)
    assert has_protection_capacity(session, authority, now=now)
    assert not has_protection_capacity(
        session, authority, now=now, max_age=timedelta(days=365)
    )  # stale under the policy's max_age
    assert not has_protection_capacity(session, authority, now=now - timedelta(days=401))
    make.assessment(
        session, authority, "witness_protection", code="later", finding="not_satisfied",
        age_days=10, now=now,
    )  # fmt: skip
    assert not has_protection_capacity(session, authority, now=now)
