"""SQLite's planner statistics, as ``portal worker`` refreshes them: with them, the staff's
request list is read from the index that holds its order instead of sorting every request;
on PostgreSQL nothing is done (it keeps its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal import migrate
from portal.accounts.models import User
from portal.db import make_engine, refresh_planner_statistics
from portal.rfa.models import RFA_STATUSES
from portal.rfa.officer_list import RequestQuery, listing_statement
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make

#: Enough that a sampled ANALYZE (PRAGMA analysis_limit = 1000) would count ~1,000 requests a
#: status instead of ~9,000, and the planner would go back to sorting them all.
REQUESTS = 100_000


def _plan(session: Session) -> str:
    officer = User(id=1, role="legal_officer", is_active=True)
    statement = listing_statement(officer, RequestQuery(page=1)).limit(25)
    dialect = session.get_bind().dialect
    sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    rows = session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_statistics_let_sqlite_read_the_request_list_in_its_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            authority_id = make.authority(session).id
            session.commit()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [
            (
                f"RFA-2026-{n:06d}",
                authority_id,
                RFA_STATUSES[n % len(RFA_STATUSES)],
                f"REF-{n}",
                (start + timedelta(minutes=n)).isoformat(),
            )
            for n in range(REQUESTS)
        ]
        with engine.begin() as connection:  # plain rows: 100,000 ORM objects would be slow
            connection.exec_driver_sql(
                "INSERT INTO rfa (code, authority_id, status, their_reference, proceedings_type,"
                " offences, urgency, urgency_justification, legal_basis, persons_concerned,"
                " summary_of_facts, assistance_sought, places, confidentiality, version,"
                " submitted_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'investigation',"
                " '[]', 'normal', '', '', '', '', '', '', '', 1, ?, '2026-01-01', ?)",
                [(*row, row[-1]) for row in rows],
            )
        assert refresh_planner_statistics(engine) is True
        with Session(engine) as session:
            plan = _plan(session)
            stat = session.scalar(
                text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_rfa_status_deadline'")
            )
    finally:
        engine.dispose()
    assert stat is not None
    total, per_status = (int(n) for n in stat.split()[:2])
    assert total == REQUESTS
    assert per_status == -(-REQUESTS // len(RFA_STATUSES))  # counted, not sampled
    assert "ix_rfa_updated" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_postgresql_keeps_its_own_statistics(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        assert refresh_planner_statistics(engine) is False
    finally:
        engine.dispose()
