"""SQLite's planner statistics, as ``portal worker`` refreshes them: with them, the staff's
request list is read from the index that holds its order instead of sorting every request;
on PostgreSQL nothing is done (it keeps its own)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from portal import migrate
from portal.accounts.models import User
from portal.db import make_engine, refresh_planner_statistics
from portal.rfa.models import RFA_STATUSES, Rfa
from portal.rfa.officer_list import RequestQuery, listing_statement
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make

REQUESTS = 3000


def _plan(session: Session) -> str:
    officer = User(id=1, role="legal_officer", is_active=True)
    statement = listing_statement(officer, RequestQuery(page=1)).limit(25)
    sql = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    rows = session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_statistics_let_sqlite_read_the_request_list_in_its_order(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/portal.db")
    try:
        migrate.upgrade(engine)
        with Session(engine) as session:
            authority = make.authority(session)
            start = datetime(2026, 1, 1, tzinfo=UTC)
            statuses = itertools.cycle(RFA_STATUSES)
            session.execute(
                insert(Rfa),
                [
                    {
                        "code": f"RFA-2026-{n:05d}",
                        "authority_id": authority.id,
                        "status": next(statuses),
                        "their_reference": f"REF-{n}",
                        "proceedings_type": "investigation",
                        "submitted_at": start,
                        "updated_at": start + timedelta(minutes=n),
                    }
                    for n in range(REQUESTS)
                ],
            )
            session.commit()
            before = _plan(session)
        assert refresh_planner_statistics(engine) is True
        with Session(engine) as session:
            after = _plan(session)
            analysed = session.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'rfa'"))
    finally:
        engine.dispose()
    assert "TEMP B-TREE" in before, before  # no statistics: every request sorted
    assert analysed
    assert "ix_rfa_updated" in after and "TEMP B-TREE" not in after, after


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_postgresql_keeps_its_own_statistics(database: DatabaseUnderTest) -> None:
    engine = make_engine(database.url)
    try:
        migrate.upgrade(engine)
        assert refresh_planner_statistics(engine) is False
    finally:
        engine.dispose()
