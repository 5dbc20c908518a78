"""``/readyz``: check by check, 200 when the portal can work, 503 naming what stops it —
never a 500, whatever is down."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy.orm import Session

from portal.integrity.damage import record_damage
from portal.integrity.scrub import scrub
from portal.packages.assembly.watch import mark_alive
from portal.state import portal_state
from tests.support.own_redis import own_redis

pytest_plugins = ["tests.support.auth"]


def _checks(app: Flask) -> tuple[int, dict[str, dict[str, object]]]:
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert body["status"] == ("ready" if response.status_code == 200 else "not ready")
    return response.status_code, body["checks"]


def test_ready_when_a_worker_was_seen_and_not_before(app: Flask) -> None:
    status, checks = _checks(app)
    assert status == 503
    assert checks["worker"] == {"ok": False, "detail": "no worker has been seen"}
    assert checks["database"]["ok"] and checks["queue"]["ok"] and checks["storage"]["ok"]

    mark_alive(portal_state(app).settings.data_dir)  # what a worker does every heartbeat
    status, checks = _checks(app)
    assert status == 200, checks
    assert checks["worker"]["detail"].startswith("last seen ")
    assert checks["queue"]["detail"] == "0 job(s) waiting"


def test_damage_makes_it_not_ready_until_a_clean_scrub(app: Flask, db: Session) -> None:
    state = portal_state(app)
    mark_alive(state.settings.data_dir)
    record_damage(db, "ab" * 32, ["item ITM-2026-0001"], found_by="download")
    db.commit()
    status, checks = _checks(app)
    assert status == 503 and checks["damaged files"]["ok"] is False
    assert "1 reported" in str(checks["damaged files"]["detail"])

    assert scrub(state).damaged == []  # the file was restored: a clean pass
    status, checks = _checks(app)
    assert status == 200 and checks["damaged files"]["ok"] is True


def test_redis_down_is_named_not_a_500(make_app: Callable[..., Flask]) -> None:
    with own_redis() as redis:
        app = make_app(redis_url=redis.url)
        mark_alive(portal_state(app).settings.data_dir)
        status, checks = _checks(app)
        assert checks["redis"]["ok"] is True
        assert "keeps nothing on disk" in str(checks["redis"]["detail"])  # --save ""
        redis.stop()
        status, checks = _checks(app)
    assert status == 503
    assert checks["redis"] == {"ok": False, "detail": "unavailable"}
    assert checks["queue"] == {"ok": False, "detail": "unavailable"}
