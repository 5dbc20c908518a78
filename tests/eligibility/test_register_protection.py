"""The witness-protection rule and the register of protected identifiers, on the database: a
person at risk with a current registered identifier is protected in a text item shared with an
authority without protection capacity, even without a redaction mark; retired identifiers,
identifiers added after the check and items whose content is not searched protect no one. The
snapshot records counts only: no identifier value reaches a decision."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.eligibility.decisions import load_result, load_snapshot, replay, run_check
from portal.eligibility.models import Decision
from portal.eligibility.policy import Policy, build_snapshot, load_policy
from portal.eligibility.policy.rules import REGISTER_MEDIA_TYPES
from portal.packages.assembly.assemble import _TEXT_MEDIA_TYPES
from portal.registry.identifiers import retire_identifier
from portal.registry.models import Authority, Item, Person, ProtectedIdentifier
from portal.sealing import Sealer
from tests.eligibility.test_decisions import POLICIES, _statements
from tests.support import factories as make
from tests.support.identifiers import ARABIC_NAME, LATIN_NAME, PHONE, register
from tests.support.ledger_world import EARLY, NOW, rfa_in_review

#: The phrase the decision uses for a person the register protects (see rules.witness_protection).
BY_REGISTER = "Protected by the register of protected identifiers, not by a mark:"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICIES)


@pytest.fixture
def sealer() -> Sealer:
    return Sealer.random()


def _authority(session: Session, *, capacity: bool = False) -> Authority:
    """An authority assessed at NOW: a fair trial, no death penalty, and witness-protection
    capacity only when ``capacity``."""
    authority = make.authority(session, "NWU-NL")
    protection = "satisfied" if capacity else "not_satisfied"
    findings = {"fair_trial": "satisfied", "death_penalty": "satisfied"}
    make.assessments(
        session, authority, findings={**findings, "witness_protection": protection}, now=NOW
    )
    return authority


def _witness_item(
    session: Session, authority: Authority, media_type: str = "text/plain"
) -> tuple[Item, Person]:
    """An item of a consenting provider naming a person at risk, with no redaction mark."""
    provider = make.provider(session)
    make.consent(session, provider, authority, at=EARLY)
    subject = make.item(session, provider, media_type=media_type)
    return subject, make.person(session, subject, pseudonym="Witness V-05")


def _registered(
    session: Session, sealer: Sealer, person: Person, value: str = LATIN_NAME
) -> ProtectedIdentifier:
    """``value`` registered for ``person`` before NOW (the check's moment)."""
    row = register(session, sealer, person, value)
    row.created_at = EARLY
    session.flush()
    return row


def _decide(session: Session, policy: Policy, authority: Authority, subject: Item) -> Decision:
    rfa = rfa_in_review(session, authority, [subject])
    return run_check(session, rfa, policy, requested_by=None, actor="system", now=NOW)


def _protection_text(decision: Decision) -> str:
    [item] = load_result(decision).items
    return next(r.explanation for r in item.results if r.rule == "witness-protection")


def test_a_current_identifier_protects_an_unmarked_person_at_risk(
    session: Session, policy: Policy, sealer: Sealer
) -> None:
    authority = _authority(session)
    subject, person = _witness_item(session, authority)
    _registered(session, sealer, person)
    _registered(session, sealer, person, PHONE)

    decision = _decide(session, policy, authority, subject)

    [item] = load_result(decision).items
    assert (item.outcome, item.marks) == ("share_redacted", ())
    assert f"{BY_REGISTER} Witness V-05 (2 current identifiers)." in _protection_text(decision)
    assert load_snapshot(decision).persons[person.id].identifiers == 2
    # Counts only: no value is in the record, and the record replays.
    for value in (LATIN_NAME, PHONE, "0199"):
        assert value not in decision.snapshot_json and value not in decision.results_json
    assert replay(decision).ok


def test_retired_identifiers_protect_no_one(
    session: Session, policy: Policy, sealer: Sealer
) -> None:
    authority = _authority(session)
    subject, person = _witness_item(session, authority)
    officer = make.user(session)
    for value in (LATIN_NAME, ARABIC_NAME):
        retire_identifier(
            session, _registered(session, sealer, person, value), by=officer, now=EARLY
        )

    decision = _decide(session, policy, authority, subject)

    [item] = load_result(decision).items
    assert item.outcome == "withhold"
    assert "(no redaction mark protects Witness V-05), so it is withheld." in item.explanation
    assert BY_REGISTER not in item.explanation


def test_the_register_is_read_as_it_stood_at_the_check(
    session: Session, policy: Policy, sealer: Sealer
) -> None:
    authority = _authority(session)
    subject, person = _witness_item(session, authority)
    later = register(session, sealer, person, LATIN_NAME)  # added after NOW
    later.created_at = NOW + timedelta(seconds=1)
    rfa = rfa_in_review(session, authority, [subject])
    assert build_snapshot(session, rfa.id, now=NOW).persons[person.id].identifiers == 0

    kept = _registered(session, sealer, person, ARABIC_NAME)  # current at NOW, retired later
    retire_identifier(session, kept, by=make.user(session), now=NOW + timedelta(days=1))
    assert build_snapshot(session, rfa.id, now=NOW).persons[person.id].identifiers == 1


def test_with_capacity_the_item_is_shared_as_before(
    session: Session, policy: Policy, sealer: Sealer
) -> None:
    authority = _authority(session, capacity=True)
    subject, person = _witness_item(session, authority)
    _registered(session, sealer, person)

    decision = _decide(session, policy, authority, subject)

    [item] = load_result(decision).items
    assert (item.outcome, item.marks) == ("share", ())
    assert BY_REGISTER not in item.explanation


def test_an_item_that_cannot_be_redacted_is_still_withheld(
    session: Session, policy: Policy, sealer: Sealer
) -> None:
    authority = _authority(session)
    subject, person = _witness_item(session, authority, media_type="audio/wav")
    _registered(session, sealer, person)

    decision = _decide(session, policy, authority, subject)

    [item] = load_result(decision).items
    assert item.outcome == "withhold"
    assert "(audio/wav cannot be redacted), so it is withheld." in item.explanation


def test_counting_identifiers_takes_one_query_whatever_the_number_of_persons(
    engine: Engine, session: Session, sealer: Sealer
) -> None:
    authority = _authority(session)
    provider = make.provider(session)
    requests = []
    for size in (1, 8):
        items = [make.item(session, provider) for _ in range(size)]
        for subject in items:
            _registered(session, sealer, make.person(session, subject))
        requests.append(rfa_in_review(session, authority, items))
    session.commit()

    counts = []
    for rfa in requests:
        session.expire_all()
        with _statements(engine) as statements:
            built = build_snapshot(session, rfa.id, now=NOW)
        assert [p.identifiers for p in built.persons.values()] == [1] * len(built.items)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_the_register_protects_in_the_media_types_assembly_redacts_identifiers_from() -> None:
    """The rule may count on the register only where package assembly redacts identifiers."""
    assert frozenset(_TEXT_MEDIA_TYPES) == REGISTER_MEDIA_TYPES
