"""A worker that dies mid-assembly: its run is found by the missing heartbeat and queued again
(then failed after MAX_ATTEMPTS); a worker starting up removes what the dead one left. The
last test kills a real `portal worker` with SIGKILL while it assembles."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from portal.audit import AuditEvent
from portal.config import Settings
from portal.db import make_engine, make_session_factory, utcnow
from portal.packages.assembly.assemble import assemble_package, stage_name
from portal.packages.assembly.jobs import make_jobs
from portal.packages.assembly.watch import (
    GAVE_UP,
    MAX_ATTEMPTS,
    MISSED_BEATS,
    last_seen,
    requeue_dead,
)
from portal.packages.models import Package
from portal.state import PortalState, build_state
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal
from tests.support.package_world import make_world, new_package, signing_settings

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

KEYS = Path(__file__).resolve().parents[2] / "keys_example"


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def _dead_run(state: PortalState, attempts: int) -> tuple[int, str, int]:
    """A package "assembling" whose worker stopped beating a while ago: (id, code, version)."""
    package_id = new_package(state, make_world(state))
    silent_for = timedelta(seconds=(MISSED_BEATS + 1) * state.settings.worker_heartbeat)
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        package.status, package.stage, package.attempts = "assembling", "rendering", attempts
        session.flush()
        package.updated_at = utcnow() - silent_for
        session.commit()
        return package.id, package.code, package.version


def _actions(state: PortalState, code: str) -> list[str]:
    with state.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"package:{code}")
                .order_by(AuditEvent.seq)
            )
        )


def test_a_run_without_heartbeat_is_queued_again_and_then_assembles(state: PortalState) -> None:
    package_id, code, version = _dead_run(state, attempts=1)
    leftover = state.settings.data_dir / "staging" / stage_name(code, version, "0123456789ab")
    leftover.mkdir(parents=True)
    (leftover / f"{code}.tar.gpg").write_bytes(b"partial ciphertext of the dead run")
    queued: list[int] = []

    assert requeue_dead(state, queued.append) == [code]
    assert requeue_dead(state, queued.append) == []  # once only
    assert queued == [package_id]
    assert not leftover.exists()
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        assert (package.status, package.version) == ("queued", version + 1)
        assert "its worker stopped" in package.stage
    assert _actions(state, code)[-1] == "package.requeued"

    assemble_package(state, package_id)  # what the queued job does
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        assert (package.status, package.attempts) == ("assembled", 2)


def test_a_live_run_is_left_alone(state: PortalState) -> None:
    package_id = new_package(state, make_world(state))
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        package.status = "assembling"
        session.commit()
    assert requeue_dead(state, lambda _: None) == []
    with state.sessions() as session:
        assert session.get_one(Package, package_id).status == "assembling"


def test_after_the_last_attempt_the_package_fails_with_the_reason(state: PortalState) -> None:
    package_id, code, _ = _dead_run(state, attempts=MAX_ATTEMPTS)
    queued: list[int] = []
    assert requeue_dead(state, queued.append) == []
    assert queued == []
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        assert package.status == "failed"
        assert package.failure_reason == GAVE_UP.format(attempts=MAX_ATTEMPTS)
    assert _actions(state, code)[-1] == "package.failed"


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "portal"), "worker", "--workers", "1"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGKILL reaches its children too
    )


def _stop(worker: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, sig)
    worker.wait(30)


def test_a_worker_killed_mid_assembly_is_replaced_by_the_next(
    portal: Portal, database: DatabaseUnderTest
) -> None:
    """SIGKILL a real `portal worker` while it assembles; a second worker (heartbeat 1 s)
    removes the dead run's files, queues the package again and assembles it."""
    env = {
        **portal.env,
        "PORTAL_SIGNING_KEY": str(KEYS / "mechanism-signing.sec.asc"),
        "PORTAL_SIGNING_PASSPHRASE_FILE": str(KEYS / "mechanism-signing.passphrase"),
        "PORTAL_WORKER_HEARTBEAT": "1",
    }
    assert portal("init").exit_code == 0
    settings = Settings.from_env(env)
    engine = make_engine(database.url)
    try:
        state = build_state(settings, engine=engine)
        package_id = new_package(state, make_world(state))
        make_jobs(settings).enqueue_assembly(package_id)
        sessions = make_session_factory(engine)

        def status() -> tuple[str, str, int]:
            with sessions() as session:
                package = session.get_one(Package, package_id)
                return package.status, package.stage, package.attempts

        first = _worker(env)
        try:
            deadline = time.monotonic() + 120
            while status()[0] == "queued" and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            _stop(first, signal.SIGKILL)
        was, stage, _ = status()
        if was != "assembling":
            pytest.skip(f"the first worker finished before it could be killed ({was})")
        time.sleep(1)
        assert status()[0] == "assembling"  # nobody else knows it died

        second = _worker(env)
        try:
            deadline = time.monotonic() + 180
            while status()[0] in ("queued", "assembling") and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            _stop(second, signal.SIGINT)
        final, _, attempts = status()
        assert (final, attempts) == ("assembled", 2), stage
        with sessions() as session:
            code = session.get_one(Package, package_id).code
            requeued = session.scalars(
                select(AuditEvent.details).where(
                    AuditEvent.target == f"package:{code}", AuditEvent.action == "package.requeued"
                )
            ).all()
        assert [json.loads(d)["attempts"] for d in requeued] == [1]
        assert last_seen(settings.data_dir) is not None  # the readiness check sees workers
        staging = settings.data_dir / "staging"
        assert not staging.exists() or list(staging.iterdir()) == []
    finally:
        engine.dispose()
