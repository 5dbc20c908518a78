"""A PostgreSQL connection the server closed while it sat in the pool is replaced before a
request uses it: connections idle longer than ``IDLE_PING_SECONDS`` are pinged at checkout
(portal.db); one back in use within that window is not (a round trip saved on every page),
and a failure there invalidates the pool so the next checkout connects afresh."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from portal import db as portal_db
from portal.db import make_engine
from tests.conftest import _postgres_base_url


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = make_engine(_postgres_base_url())
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        admin.dispose()


@pytest.fixture
def engine() -> Engine:
    eng = make_engine(_postgres_base_url(), pool_size=1, max_overflow=0)
    yield eng  # type: ignore[misc]
    eng.dispose()


def test_an_idle_connection_the_server_closed_is_replaced_unseen(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    _terminate(first)
    monkeypatch.setattr(portal_db, "IDLE_PING_SECONDS", 0.0)  # as if it sat idle a while
    second = _backend_pid(engine)  # no error: the ping found it dead, the pool reconnected
    assert second != first
    assert _backend_pid(engine) == second  # and the new one is kept


def test_one_reused_at_once_fails_once_and_the_next_checkout_reconnects(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portal_db, "IDLE_PING_SECONDS", 3600.0)
    first = _backend_pid(engine)
    _terminate(first)
    with pytest.raises(OperationalError):  # not pinged: reused within the window
        _backend_pid(engine)
    assert _backend_pid(engine) != first
