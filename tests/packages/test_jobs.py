"""The assembly job on a real Huey consumer (threads in this process), on both databases:
SQLite queue storage always, Redis when PORTAL_TEST_REDIS_URL is set. A queued package is
assembled for real (real gpg, real blobs), or fails with a stated reason; running the job
again changes nothing; immediate mode runs the same code in-process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.config import Settings
from portal.packages.assembly.jobs import Jobs, make_jobs, run_assembly, start_consumer
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.rfa.models import Rfa
from portal.sealing import sealer_for
from portal.state import PortalState, build_state
from portal.storage import FileBlobStore
from tests.conftest import DatabaseUnderTest
from tests.support.cli import Portal
from tests.support.package_world import REDACTABLE, World, build_world, user

pytest_plugins = ["tests.support.cli"]  # fixture portal

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
SIGNING = {
    "signing_key_file": KEYS / "mechanism-signing.sec.asc",
    "signing_passphrase_file": KEYS / "mechanism-signing.passphrase",
}
FINAL = ("assembled", "failed", "blocked")


def _state(settings: Settings, engine: object, **overrides: object) -> PortalState:
    return build_state(settings.with_overrides(**overrides), engine=engine)  # type: ignore[arg-type]


def _queued_package(state: PortalState) -> tuple[World, int]:
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        rfa = session.get(Rfa, world.rfa_id)
        assert rfa is not None
        package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
        session.commit()
        return world, package.id


def _wait(state: PortalState, package_id: int, timeout: float = 90) -> Package:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with state.sessions() as session:
            package = session.get(Package, package_id)
            assert package is not None
            if package.status in FINAL:
                return package
        time.sleep(0.2)
    raise AssertionError(f"package {package_id} not finished after {timeout}s")


@pytest.fixture
def consumer_jobs() -> Iterator[list[Jobs]]:
    """The queues of the jobs a test made are emptied afterwards (Redis is shared)."""
    started: list[Jobs] = []
    yield started
    for jobs in started:
        jobs.huey.flush()


def _run_consumer(jobs: Jobs) -> object:
    return start_consumer(jobs.huey, workers=1, poll_seconds=0.2)


def test_a_consumer_thread_assembles_a_queued_package(
    settings: Settings, engine: object, consumer_jobs: list[Jobs]
) -> None:
    state = _state(settings, engine, **SIGNING)
    _world, package_id = _queued_package(state)
    jobs = make_jobs(state.settings, state=state, name=f"test-{uuid.uuid4().hex}")
    consumer_jobs.append(jobs)
    assert (state.settings.instance_dir / "huey.db").exists()
    stop = _run_consumer(jobs)
    try:
        jobs.enqueue_assembly(package_id)
        package = _wait(state, package_id)
    finally:
        stop()  # type: ignore[operator]
    assert package.status == "assembled", package.failure_reason
    assert package.progress == 100
    assert package.file_sha256 and package.signature_sha256
    assert state.blobs.exists(package.file_sha256)
    assert state.blobs.exists(package.signature_sha256)
    version = package.version
    run_assembly(state, package_id)  # again: idempotent, nothing changes
    with state.sessions() as session:
        again = session.get(Package, package_id)
        assert again is not None
        assert (again.status, again.version) == ("assembled", version)


def test_a_package_that_cannot_be_assembled_fails_with_a_reason(
    settings: Settings, engine: object, consumer_jobs: list[Jobs]
) -> None:
    state = _state(settings, engine)  # no signing key configured
    _world, package_id = _queued_package(state)
    jobs = make_jobs(state.settings, state=state, name=f"test-{uuid.uuid4().hex}")
    consumer_jobs.append(jobs)
    stop = _run_consumer(jobs)
    try:
        jobs.enqueue_assembly(package_id)
        package = _wait(state, package_id)
    finally:
        stop()  # type: ignore[operator]
    assert package.status == "failed"
    assert package.failure_reason and "signing key" in package.failure_reason.lower()
    assert package.file_sha256 is None
    assert not list((state.settings.data_dir / "staging").glob("*"))


def test_redis_queue_runs_the_same_job(
    settings: Settings, engine: object, redis_url: str, consumer_jobs: list[Jobs]
) -> None:
    state = _state(settings, engine, redis_url=redis_url, **SIGNING)
    _world, package_id = _queued_package(state)
    jobs = make_jobs(state.settings, state=state, name=f"test-{uuid.uuid4().hex}")
    consumer_jobs.append(jobs)
    assert type(jobs.huey).__name__ == "RedisHuey"
    stop = _run_consumer(jobs)
    try:
        jobs.enqueue_assembly(package_id)
        package = _wait(state, package_id)
    finally:
        stop()  # type: ignore[operator]
    assert package.status == "assembled", package.failure_reason


def test_a_worker_builds_its_own_state_from_the_settings(
    settings: Settings, engine: object
) -> None:
    """No state given (as in `portal worker`): the task builds one from the settings."""
    state = _state(settings, engine)
    _world, package_id = _queued_package(state)
    jobs = make_jobs(state.settings, immediate=True)
    jobs.enqueue_assembly(package_id)  # immediate: runs now, in this thread
    with state.sessions() as session:
        package = session.scalars(select(Package).where(Package.id == package_id)).one()
        assert package.status == "failed"
        assert package.failure_reason and "signing key" in package.failure_reason.lower()


def test_the_cli_assembles_releases_and_reports(
    portal: Portal, database: DatabaseUnderTest, tmp_path: Path
) -> None:
    """`portal package assemble | release | status`: the same domain functions and authz."""
    import json

    from portal.db import make_engine, make_session_factory
    from portal.eligibility.decisions import latest_decision

    portal.env["PORTAL_SIGNING_KEY"] = str(SIGNING["signing_key_file"])
    portal.env["PORTAL_SIGNING_PASSPHRASE_FILE"] = str(SIGNING["signing_passphrase_file"])
    assert portal("init").exit_code == 0
    engine = make_engine(database.url)
    try:
        with make_session_factory(engine)() as session:
            settings = Settings.from_env(portal.env)  # the CLI's: its blobs, its sealing key
            world = build_world(session, FileBlobStore(settings.blob_dir), sealer_for(settings))
            decision = latest_decision(session, world.rfa_id)
            assert decision is not None
            decision_id = decision.id
    finally:
        engine.dispose()
    wrong = portal("package", "assemble", world.rfa_code, "--decision", "nope",
                   "--as", world.officer.email)  # fmt: skip
    assert wrong.exit_code == 1 and "is not the latest decision" in wrong.output
    made = portal("package", "assemble", world.rfa_code, "--decision", decision_id,
                  "--as", world.officer.email)  # fmt: skip
    assert made.exit_code == 0, made.output
    code = made.output.split()[0]
    assert f"{code}: assembled" in made.output
    own = portal("package", "release", code, "--as", world.officer.email)
    assert own.exit_code == 1 and "Four-eyes rule" in own.output
    released = portal("package", "release", code, "--as", world.second.email,
                      "--download-limit", "2")  # fmt: skip
    assert released.exit_code == 0, released.output
    status = json.loads(portal("package", "status", code, "--json").output)
    assert status["status"] == "released" and status["download_limit"] == 2
    assert status["leak_check"]["clean"] is True


def test_portal_worker_runs_queued_jobs_in_its_own_process(
    portal: Portal, database: DatabaseUnderTest, tmp_path: Path
) -> None:
    """`portal worker` builds its own state from the environment and consumes the queue
    (SQLite storage in the instance directory); SIGINT stops it."""
    import os
    import signal
    import subprocess
    import sys

    from portal.db import make_engine, make_session_factory

    assert portal("init").exit_code == 0
    settings = Settings.from_env(portal.env)
    engine = make_engine(database.url)
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            world = build_world(session, FileBlobStore(settings.blob_dir), sealer_for(settings))
            rfa = session.get(Rfa, world.rfa_id)
            assert rfa is not None
            package = create_package(session, rfa, REDACTABLE, by=user(session, world.officer_id))
            session.commit()
            package_id = package.id
        make_jobs(settings).enqueue_assembly(package_id)
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "portal"), "worker", "--workers", "1"],
            env={**os.environ, **portal.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 90
            status = "queued"
            while status in ("queued", "assembling") and time.monotonic() < deadline:
                time.sleep(0.5)
                with sessions() as session:
                    found = session.get(Package, package_id)
                    assert found is not None
                    status, reason = found.status, found.failure_reason
            assert status == "failed"  # no signing key in this environment: a stated reason
            assert reason and "signing key" in reason.lower()
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
        assert worker.returncode is not None
        assert worker.stderr is not None
        log = worker.stderr.read().decode("utf-8", "replace")
        # The operator sees the consumer start and the job run (ids only, no content).
        assert "consumer started" in log and "Executing" in log, log
    finally:
        engine.dispose()
