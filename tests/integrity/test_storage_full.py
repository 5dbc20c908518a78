"""A full disk met by assembly (issue 19): the package fails with the words the pages use
("the portal's storage is full; nothing was saved"), the admins are told once, and nothing is
left behind — no staging directory, no blob-store temporary, no half-stored package file.

The disks are real: small tmpfs mounts (root, as in CI; skipped where mounting is refused),
one under the staging directory of a real ``portal worker`` (the ciphertext does not fit), one
holding the blob store (the finished package file does not fit)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from portal import audit
from portal.accounts.models import User
from portal.config import Settings
from portal.db import make_engine
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import load_policy
from portal.integrity.full import ASSEMBLY_REASON
from portal.notifications import service as notifications
from portal.packages.assembly.assemble import AssemblyFailed, assemble_package
from portal.packages.assembly.jobs import make_jobs
from portal.packages.models import Package
from portal.rfa.models import Rfa
from portal.state import PortalState, build_state
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make
from tests.support.auth import make_user
from tests.support.cli import Portal
from tests.support.package_world import (
    POLICIES,
    _add_item,
    build_world,
    new_package,
    signing_settings,
    user,
)

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
BIG = 3 << 20  # a cleared video this large goes into the bag as it is: the ciphertext is larger


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real, small filesystem at ``where`` (needs the right to mount: root, as in CI)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + mounted.stderr.decode(errors="replace"))
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def _world_with_a_big_item(state: PortalState) -> tuple[int, int]:
    """The package world plus a large video cleared as-is; (package id, an admin's user id)."""
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        _add_item(
            session, state.blobs, world, "ITM-V0009", "video/mp4", "long.mp4",
            b"\x00\x00\x00\x18ftypmp42" + os.urandom(BIG), [], cleared=True,
        )  # fmt: skip
        officer = user(session, world.officer_id)
        run_check(
            session,
            make.stored(session, Rfa, world.rfa_id),
            load_policy(POLICIES),
            requested_by=officer,
            actor=audit.actor_label(officer),
        )
        admin = make_user(session, "admin")
        session.commit()
    return new_package(state, world), admin.user_id


def _admin_notices(state: PortalState, admin_id: int) -> list[str]:
    with state.sessions() as session:
        return [n.subject for n in notifications.inbox(session, session.get_one(User, admin_id))]


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _package(state: PortalState, package_id: int) -> Package:
    with state.sessions() as session:
        return session.get_one(Package, package_id)


def test_a_real_worker_whose_staging_disk_fills_fails_the_package_and_keeps_nothing(
    portal: Portal, database: DatabaseUnderTest
) -> None:
    env = {
        **portal.env,
        "PORTAL_SIGNING_KEY": str(KEYS / "mechanism-signing.sec.asc"),
        "PORTAL_SIGNING_PASSPHRASE_FILE": str(KEYS / "mechanism-signing.passphrase"),
    }
    assert portal("init").exit_code == 0
    settings = Settings.from_env(env)
    engine = make_engine(database.url)
    try:
        state = build_state(settings, engine=engine)
        package_id, admin_id = _world_with_a_big_item(state)
        blobs_before = set(state.blobs.keys())
        staging = settings.data_dir / "staging"
        with tmpfs(staging, "1m"):
            make_jobs(settings).enqueue_assembly(package_id)
            worker = subprocess.Popen(
                [str(Path(sys.executable).parent / "portal"), "worker", "--workers", "1"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 120
                while _package(state, package_id).status in ("queued", "assembling"):
                    assert time.monotonic() < deadline, "the worker did not finish"
                    time.sleep(0.2)
            finally:
                os.killpg(worker.pid, signal.SIGINT)
                _, log = worker.communicate(timeout=30)
            assert _files(staging) == []  # no partial ciphertext, no rendition
        package = _package(state, package_id)
        assert (package.status, package.failure_reason) == ("failed", ASSEMBLY_REASON)
        assert package.attempts == 1  # failed at once, not retried onto the full disk
        assert set(state.blobs.keys()) == blobs_before
        assert _files(settings.blob_dir / "tmp") == []
        assert _admin_notices(state, admin_id) == [notifications.STORAGE_FULL]
        assert b"Storage full" in log and b"Traceback" not in log
    finally:
        engine.dispose()


def test_a_full_blob_store_keeps_no_half_stored_package_and_tells_the_admins_once(
    settings: Settings, engine: Engine
) -> None:
    state = build_state(signing_settings(settings), engine=engine)
    blobs = settings.blob_dir
    with tmpfs(blobs, "4m"):
        package_id, admin_id = _world_with_a_big_item(state)  # its items fit; its package not
        blobs_before = set(state.blobs.keys())

        for attempt in (1, 2):  # again after the first failure: no second notice piles up
            with pytest.raises(AssemblyFailed) as failed:
                assemble_package(state, package_id)
            assert failed.value.reason == ASSEMBLY_REASON
            package = _package(state, package_id)
            assert (package.status, package.attempts) == ("failed", attempt)
            assert package.file_sha256 is None
            assert set(state.blobs.keys()) == blobs_before  # nothing half-stored, nothing new
            assert _files(blobs / "tmp") == []
            assert _files(settings.data_dir / "staging") == []
            assert _admin_notices(state, admin_id) == [notifications.STORAGE_FULL]
        with state.sessions() as session:
            reasons = session.scalars(
                select(audit.AuditEvent.details).where(audit.AuditEvent.action == "package.failed")
            ).all()
        assert len(reasons) == 2 and all("storage is full" in r for r in reasons)
