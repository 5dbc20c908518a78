"""The job queue failing (issue 19): Redis down when a job is queued answers a clear message
(never a 500) and leaves the package recoverable; a queued job lost from the queue (a Redis
that keeps nothing, a flushed queue) is found by the watcher and queued again, and the
package is still assembled exactly once; a duplicate job never restarts a live run. Each
test runs a Redis of its own on a free port."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from pathlib import Path

import redis
from flask import Flask
from sqlalchemy import func, select, update

from portal.audit import AuditEvent
from portal.authz.permissions import public
from portal.config import Settings
from portal.db import utcnow
from portal.packages.assembly.assemble import assemble_package
from portal.packages.assembly.jobs import make_jobs, start_consumer
from portal.packages.assembly.watch import MAX_ATTEMPTS, requeue_lost
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.rfa.models import Rfa
from portal.state import PortalState, build_state, portal_state
from tests.support.auth import csrf_token, login
from tests.support.own_redis import own_redis
from tests.support.package_world import REDACTABLE, build_world, user

pytest_plugins = ["tests.support.auth"]

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
}


def _text(response: object) -> str:
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _package(state: PortalState, package_id: int | None = None) -> Package:
    with state.sessions() as session:
        stmt = select(Package).order_by(Package.id.desc())
        if package_id is not None:
            stmt = stmt.where(Package.id == package_id)
        found = session.scalars(stmt.limit(1)).first()
        assert found is not None
        return found


def _count(state: PortalState, action: str) -> int:
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def test_redis_down_when_a_package_is_queued_is_said_and_recoverable(
    make_app: Callable[..., Flask],
) -> None:
    with own_redis() as server:
        app = make_app(redis_url=server.url, **SIGNING)
        state = portal_state(app)
        with state.sessions() as session:
            world = build_world(session, state.blobs, state.sealer)
        client = app.test_client()
        login(client, world.officer)
        page = client.get(f"/packages/requests/{world.rfa_code}")
        server.stop()
        made = client.post(
            f"/packages/requests/{world.rfa_code}",
            data={"csrf_token": csrf_token(page), "reviewed": "yes"},
            follow_redirects=True,
        )
        assert made.status_code == 200
        assert "The job queue is unavailable" in _text(made)
        assert "nothing was lost" in _text(made)
        package = _package(state)
        assert package.status == "failed"  # with the reason, so the officer can Retry
        assert package.failure_reason is not None and "Retry" in package.failure_reason
        detail = client.get(f"/packages/{package.code}")
        retried = client.post(
            f"/packages/{package.code}/retry",
            data={"csrf_token": csrf_token(detail)},
            follow_redirects=True,
        )
        assert retried.status_code == 200  # still down: said again, never a 500
        assert "The job queue is unavailable" in _text(retried)
        assert _package(state, package.id).status == "failed"


def test_a_queue_error_nobody_caught_answers_503_not_500(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @public("a test route whose queue is down")
    def queue_down() -> str:
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis://secret@host")

    app.add_url_rule("/test-queue-down", view_func=queue_down)
    client = app.test_client()
    api = client.get("/test-queue-down", headers={"Accept": "application/json"})
    assert api.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert api.get_json()["detail"].startswith("The job queue is unavailable; nothing was lost")
    assert api.headers["Retry-After"] == "60"
    page = client.get("/test-queue-down")
    assert page.status_code == 503 and "nothing was lost" in _text(page)
    assert "secret" not in page.get_data(as_text=True)


def _queued(state: PortalState) -> int:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        rfa = session.get(Rfa, world.rfa_id)
        assert rfa is not None
        package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
        session.commit()
        return package.id


def test_a_job_lost_from_a_flushed_queue_is_queued_again_and_assembled_once(
    settings: Settings, engine: object
) -> None:
    with own_redis() as server:
        state = build_state(
            settings.with_overrides(redis_url=server.url, worker_heartbeat=1, **SIGNING),
            engine=engine,  # type: ignore[arg-type]
        )
        package_id = _queued(state)
        jobs = make_jobs(state.settings, state=state)
        jobs.enqueue_assembly(package_id)
        later = utcnow() + timedelta(seconds=10)  # past the grace
        assert jobs.pending_assemblies() == {package_id}
        assert requeue_lost(state, jobs.pending_assemblies, jobs.enqueue_assembly, now=later) == []
        redis.Redis.from_url(server.url).flushall()  # a restart without persistence
        assert jobs.pending_assemblies() == set()
        code = _package(state, package_id).code
        requeued = requeue_lost(state, jobs.pending_assemblies, jobs.enqueue_assembly, now=later)
        assert requeued == [code]
        assert jobs.pending_assemblies() == {package_id}
        jobs.enqueue_assembly(package_id)  # and a duplicate, as a racing watcher could add
        stop = start_consumer(jobs.huey, workers=2, poll_seconds=0.2)
        try:
            deadline = time.monotonic() + 90
            while _package(state, package_id).status != "assembled":
                assert time.monotonic() < deadline, _package(state, package_id).failure_reason
                time.sleep(0.2)
            while jobs.huey.pending_count():
                time.sleep(0.2)
        finally:
            stop()
        assert _count(state, "package.assembly_started") == 1
        assert _count(state, "package.requeued") == 1


def test_a_job_lost_too_often_fails_the_package_with_the_reason(
    settings: Settings, engine: object
) -> None:
    state = build_state(settings.with_overrides(worker_heartbeat=1), engine=engine)  # type: ignore[arg-type]
    package_id = _queued(state)
    with state.sessions() as session:
        session.execute(
            update(Package).where(Package.id == package_id).values(attempts=MAX_ATTEMPTS - 1)
        )
        session.commit()
    queued: list[int] = []
    later = utcnow() + timedelta(seconds=10)
    assert requeue_lost(state, set, queued.append, now=later) == []
    package = _package(state, package_id)
    assert queued == [] and package.status == "failed"
    assert package.failure_reason is not None and "lost from the queue" in package.failure_reason


def test_a_duplicate_job_never_restarts_a_live_run(settings: Settings, engine: object) -> None:
    state = build_state(settings.with_overrides(**SIGNING), engine=engine)  # type: ignore[arg-type]
    package_id = _queued(state)
    with state.sessions() as session:  # a run of another worker, beating
        session.execute(
            update(Package)
            .where(Package.id == package_id)
            .values(status="assembling", stage="redacting", version=7, updated_at=utcnow())
        )
        session.commit()
    assemble_package(state, package_id)  # the duplicate job
    package = _package(state, package_id)
    assert (package.status, package.stage, package.version) == ("assembling", "redacting", 7)
    assert _count(state, "package.assembly_started") == 0
    with state.sessions() as session:  # its heartbeat stopped: the watcher's grace is over
        session.execute(
            update(Package)
            .where(Package.id == package_id)
            .values(updated_at=utcnow() - timedelta(seconds=10 * state.settings.worker_heartbeat))
        )
        session.commit()
    assemble_package(state, package_id)
    assert _package(state, package_id).status == "assembled"
