"""`portal rfa decide` through the real command line: the triage page's decision, with its
rules and its authorization; every refusal prints why, exits non-zero and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select, update

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import make_engine
from portal.rfa.models import Rfa, RfaStatusChange
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

OFFICER = "officer.one@mechanism.example"
IN_REVIEW = "RFA-2025-0044"  # demo requests (portal.demo.dataset)
CHECKED_LATER = "RFA-2025-0041"
DRAFT = "RFA-2026-0003"
DECLINED = "RFA-2025-0031"


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)
    yield eng
    eng.dispose()


@pytest.fixture
def demo(portal: Portal) -> Portal:
    assert portal("init").exit_code == 0
    assert portal("demo").exit_code == 0
    return portal


def _state(engine: Engine) -> tuple[dict[str, str], int, int]:
    """Every request's status, the audit events and the timeline steps."""
    with engine.connect() as conn:
        statuses = {code: status for code, status in conn.execute(select(Rfa.code, Rfa.status))}
        events = conn.scalar(select(func.count()).select_from(AuditEvent)) or 0
        steps = conn.scalar(select(func.count()).select_from(RfaStatusChange)) or 0
    return statuses, events, steps


def _status(engine: Engine, code: str) -> str:
    return _state(engine)[0][code]


def test_decide_moves_the_status_and_is_audited_like_the_page(demo: Portal, engine: Engine) -> None:
    result = demo(
        "rfa", "decide", IN_REVIEW, "declined", "--note", "Out of mandate.", "--as", OFFICER
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{IN_REVIEW} is declined."
    assert _status(engine, IN_REVIEW) == "declined"
    with engine.connect() as conn:
        officer_id = conn.scalar(select(User.id).where(User.email == OFFICER))
        event = conn.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.target == f"rfa:{IN_REVIEW}")
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).one()
        step = conn.execute(
            select(RfaStatusChange.to_status, RfaStatusChange.note, RfaStatusChange.changed_by_id)
            .order_by(RfaStatusChange.id.desc())
            .limit(1)
        ).one()
    actor, action, details = event
    assert (actor, action) == (f"user:{officer_id}", "rfa.transition")
    assert json.loads(details) == {"from": "in_review", "to": "declined"}
    assert tuple(step) == ("declined", "Out of mandate.", officer_id)
    assert demo("audit", "verify").exit_code == 0


def test_approval_needs_a_check_on_file_as_on_the_page(demo: Portal, engine: Engine) -> None:
    before = _state(engine)
    early = demo("rfa", "decide", CHECKED_LATER, "approved", "--note", "Fine.", "--as", OFFICER)
    assert early.exit_code == 1
    assert "Run an eligibility check before approving" in early.output
    assert _state(engine) == before

    assert demo("rfa", "check", CHECKED_LATER, "--as", OFFICER).exit_code == 0
    done = demo("rfa", "decide", CHECKED_LATER, "approved", "--note", "Fine.", "--as", OFFICER)
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"{CHECKED_LATER} is approved."
    assert _status(engine, CHECKED_LATER) == "approved"


#: Each refused decision and what the command says; all run on one demo database (seeding
#: it takes seconds, and a refusal must leave it as it was, which each step checks).
REFUSALS = {
    "unknown": (("RFA-1999-0001", "declined", "--as", OFFICER), "no request RFA-1999-0001"),
    "draft": ((DRAFT, "declined", "--as", OFFICER), f"no request {DRAFT}"),
    "wrong-status": ((DECLINED, "declined", "--as", OFFICER), "cannot become declined"),
    "bad-outcome": (
        (IN_REVIEW, "maybe", "--as", OFFICER),
        "Choose approved, partially approved or declined",
    ),
    "requester": (
        (IN_REVIEW, "declined", "--as", "requester@nwu.example"),
        "not an active user allowed",
    ),
    "admin": (
        (IN_REVIEW, "declined", "--as", "admin@mechanism.example"),
        "not an active user allowed",
    ),
    "no-account": (
        (IN_REVIEW, "declined", "--as", "nobody@example.test"),
        "not an active user allowed",
    ),
}


def test_refusals_change_nothing(demo: Portal, engine: Engine) -> None:
    before = _state(engine)
    wrong = []
    for name, (args, says) in REFUSALS.items():
        code, outcome, *who = args
        result = demo("rfa", "decide", code, outcome, "--note", "A note.", *who)
        if result.exit_code != 1 or says not in result.output:
            wrong.append(f"{name}: exit {result.exit_code}, {result.output.strip()!r}")
        if _state(engine) != before:
            wrong.append(f"{name}: the database changed")
            before = _state(engine)
    assert not wrong, wrong


def test_a_deactivated_officer_and_an_empty_note_are_refused(demo: Portal, engine: Engine) -> None:
    before = _state(engine)
    empty = demo("rfa", "decide", IN_REVIEW, "declined", "--note", "  ", "--as", OFFICER)
    assert empty.exit_code == 1 and "Write a note explaining the decision" in empty.output
    with engine.begin() as conn:
        conn.execute(update(User).where(User.email == OFFICER).values(is_active=False))
    retired = demo("rfa", "decide", IN_REVIEW, "declined", "--note", "A note.", "--as", OFFICER)
    assert retired.exit_code == 1 and "not an active user allowed" in retired.output
    assert _state(engine) == before


def test_an_officer_awaiting_approval_is_refused(demo: Portal, engine: Engine) -> None:
    """Four-eyes on accounts (issue 18): an account a second admin has not approved acts
    nowhere, the command line included."""
    before = _state(engine)
    with engine.begin() as conn:
        conn.execute(update(User).where(User.email == OFFICER).values(approved_at=None))
    waiting = demo("rfa", "decide", IN_REVIEW, "declined", "--note", "A note.", "--as", OFFICER)
    assert waiting.exit_code == 1 and "not an active user allowed" in waiting.output
    assert _state(engine) == before
