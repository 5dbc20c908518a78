"""The request status machine: allowed moves happen, are timelined and audited; illegal ones
change nothing and say what is allowed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.registry.models import Authority
from portal.rfa.models import RFA_STATUSES, Rfa, RfaStatusChange
from portal.rfa.status import (
    TRANSITIONS,
    IllegalTransition,
    check_transition,
    next_states,
    transition,
)
from tests.support import factories as make

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def people(session: Session) -> dict[str, User]:
    authority = make.authority(session, "AUTH-A")
    return {
        role: make.user(
            session, role, authority=authority if role in ("requester", "recipient") else None
        )
        for role in ("requester", "legal_officer", "recipient")
    }


@pytest.fixture
def rfa(session: Session, people: dict[str, User]) -> Rfa:
    authority = make.stored(session, Authority, people["requester"].authority_id)
    return make.rfa(session, authority, "RFA-2026-0001", status="draft", their_reference="X/1")


def test_every_state_in_the_machine_is_a_model_state() -> None:
    states = {s for pair in TRANSITIONS for s in pair}
    assert states == set(RFA_STATUSES)


def test_the_whole_path(session: Session, rfa: Rfa, people: dict[str, User]) -> None:
    path = [
        ("submitted", "requester"),
        ("in_review", "legal_officer"),
        ("clarification_requested", "legal_officer"),
        ("in_review", "requester"),
        ("approved", "legal_officer"),
        ("transmitted", "legal_officer"),
        ("acknowledged", "recipient"),
        ("closed", "legal_officer"),
    ]
    for to_status, role in path:
        transition(session, rfa, to_status, by=people[role], now=NOW)
    assert rfa.status == "closed"
    assert rfa.submitted_at == NOW
    steps = session.scalars(select(RfaStatusChange.to_status).order_by(RfaStatusChange.id)).all()
    assert steps == [to for to, _ in path]
    assert session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "rfa.transition")
    ) == len(path)


@pytest.mark.parametrize(
    ("start", "to_status", "role", "message"),
    [
        ("draft", "approved", "legal_officer", "cannot become approved"),
        ("closed", "in_review", "legal_officer", "this is a final state"),
        ("withdrawn", "submitted", "requester", "this is a final state"),
        ("submitted", "in_review", "requester", "is for legal officer, not requester"),
        ("in_review", "approved", "requester", "is for legal officer"),
        ("approved", "withdrawn", "requester", "cannot become withdrawn"),
        ("transmitted", "acknowledged", "legal_officer", "recipient or system"),
    ],
)
def test_illegal_moves_change_nothing(
    session: Session,
    rfa: Rfa,
    people: dict[str, User],
    start: str,
    to_status: str,
    role: str,
    message: str,
) -> None:
    rfa.status = start
    rfa.submitted_at = NOW
    session.flush()
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(IllegalTransition, match=message):
        transition(session, rfa, to_status, by=people[role])
    assert rfa.status == start
    assert session.scalar(select(func.count()).select_from(RfaStatusChange)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_system_moves_and_next_states(session: Session, rfa: Rfa) -> None:
    assert next_states("draft", "requester") == ["submitted"]
    assert next_states("in_review", "legal_officer") == [
        "clarification_requested",
        "approved",
        "partially_approved",
        "declined",
    ]
    assert next_states("closed", "legal_officer") == []
    rfa.status = "approved"
    rfa.submitted_at = NOW
    transition(session, rfa, "transmitted", by=None)
    assert rfa.status == "transmitted"
    check_transition("transmitted", "acknowledged", "system")
