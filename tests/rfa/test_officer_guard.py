"""The triage functions share the one officer guard (portal.authz.roles): a deactivated legal
officer is refused by each of them, before anything changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.consent.models import ConsentRequest
from portal.registry.models import Item
from portal.rfa import triage
from portal.rfa.models import Message, Rfa, RfaItem, RfaStatusChange
from portal.rfa.triage import TriageError
from tests.support import factories as make


@dataclass
class Desk:
    rfa: Rfa
    item: Item
    officer: User


@pytest.fixture
def desk(session: Session) -> Desk:
    authority = make.authority(session)
    item = make.item(session, make.provider(session))
    rfa = make.rfa(session, authority, status="in_review", items=[item])
    officer = make.user(session, "legal_officer", is_active=False)
    session.commit()
    return Desk(rfa, item, officer)


ACTIONS: dict[str, Callable[[Session, Desk], object]] = {
    "assign": lambda db, d: triage.assign(db, d.rfa, None, by=d.officer),
    "start_review": lambda db, d: triage.start_review(db, d.rfa, by=d.officer),
    "request_clarification": lambda db, d: triage.request_clarification(
        db, d.rfa, "Which school?", by=d.officer
    ),
    "decide": lambda db, d: triage.decide(db, d.rfa, "declined", "Out of mandate.", by=d.officer),
    "add_candidates": lambda db, d: triage.add_candidates(db, d.rfa, [d.item.id], by=d.officer),
    "remove_candidate": lambda db, d: triage.remove_candidate(db, d.rfa, d.item.id, by=d.officer),
    "ask_for_consent": lambda db, d: triage.ask_for_consent(db, d.rfa, by=d.officer),
}


def _counts(session: Session) -> tuple[int, ...]:
    models = (AuditEvent, RfaStatusChange, RfaItem, Message, ConsentRequest)
    return tuple(session.scalar(select(func.count()).select_from(m)) or 0 for m in models)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_deactivated_legal_officer_is_refused(session: Session, desk: Desk, action: str) -> None:
    before = _counts(session)
    with pytest.raises(TriageError, match="deactivated"):
        ACTIONS[action](session, desk)
    session.rollback()
    assert _counts(session) == before
    assert (desk.rfa.status, desk.rfa.assigned_to_id) == ("in_review", None)


def test_the_same_officer_once_active_may_act(session: Session, desk: Desk) -> None:
    desk.officer.is_active = True
    triage.decide(session, desk.rfa, "declined", "Out of mandate.", by=desk.officer)
    assert desk.rfa.status == "declined"
