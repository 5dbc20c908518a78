"""A draft is its authority's requesters' alone (the authz scope): `portal rfa check` loads the
request through the officer's scope, so it refuses a draft as the pages do (a 404 there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from portal.audit import AuditEvent
from portal.db import make_engine
from portal.eligibility.decisions import AUDIT_ACTION
from portal.eligibility.models import Decision
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

OFFICER = "officer.one@mechanism.example"
DRAFT = "RFA-2026-0003"  # the demo's draft (portal.demo.dataset)


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)
    yield eng
    eng.dispose()


def _checks(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        decisions = conn.scalar(select(func.count()).select_from(Decision)) or 0
        events = conn.scalar(select(func.count()).where(AuditEvent.action == AUDIT_ACTION)) or 0
    return decisions, events


def test_rfa_check_on_a_draft_is_refused_and_records_nothing(
    portal: Portal, engine: Engine
) -> None:
    assert portal("init").exit_code == 0
    assert portal("demo").exit_code == 0
    before = _checks(engine)

    refused = portal("rfa", "check", DRAFT, "--as", OFFICER)
    assert refused.exit_code == 1
    assert f"no request {DRAFT} that {OFFICER} may see" in refused.output
    assert _checks(engine) == before
