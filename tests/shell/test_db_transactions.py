"""Nested transactions (SAVEPOINTs) roll back with their enclosing transaction, on both backends."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.registry.models import Authority


def _authority(code: str) -> Authority:
    return Authority(code=code, name=f"Authority {code}", kind="court", country="NL")


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return int(db.scalar(select(func.count(Authority.id))) or 0)


def test_work_inside_a_savepoint_is_undone_when_the_outer_transaction_rolls_back(
    sessions: sessionmaker[Session],
) -> None:
    before = _count(sessions)
    with sessions() as db:
        with db.begin_nested():
            db.add(_authority("NESTED"))
        db.rollback()
    assert _count(sessions) == before


def test_a_savepoint_rolled_back_keeps_the_outer_work(sessions: sessionmaker[Session]) -> None:
    before = _count(sessions)
    with sessions() as db:
        db.add(_authority("OUTER"))
        db.flush()
        savepoint = db.begin_nested()
        db.add(_authority("INNER"))
        db.flush()
        savepoint.rollback()
        db.commit()
    with sessions() as db:
        codes = set(db.scalars(select(Authority.code)))
    assert "OUTER" in codes
    assert "INNER" not in codes
    assert _count(sessions) == before + 1


def test_a_committed_savepoint_is_kept_when_the_outer_transaction_commits(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as db:
        with db.begin_nested():
            db.add(_authority("KEPT"))
        db.commit()
    with sessions() as db:
        assert db.scalar(select(Authority.id).where(Authority.code == "KEPT")) is not None


def test_aware_utc_refuses_naive_times_and_defaults_to_now() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    import pytest

    from portal.db import aware_utc, stored_utc

    with pytest.raises(ValueError, match="naive"):
        aware_utc(datetime(2026, 1, 1, 12, 0))
    plus_two = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert aware_utc(plus_two) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert aware_utc(None).tzinfo == UTC
    assert stored_utc(datetime(2026, 1, 1, 12, 0)) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
