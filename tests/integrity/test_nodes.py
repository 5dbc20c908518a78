"""Two worker nodes (issue 23): two real ``portal worker`` processes, each with an instance
directory of its own holding copies of the shared keys (tests/support/nodes.py), on one
PostgreSQL schema, one Redis and one data directory, drain four queued packages. Each package
is assembled exactly once, by one of them, both take some, and each worker's log names the
packages it ran. PostgreSQL and Redis only: on SQLite the queue is a file in one instance
directory. (Duplicate jobs for one package are tests/integrity/test_queue_faults.py's.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEvent
from portal.config import Settings
from portal.packages.assembly.jobs import make_jobs
from portal.packages.lifecycle import create_package
from portal.packages.models import Package
from portal.rfa.models import Rfa
from portal.state import PortalState, build_state
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make
from tests.support.nodes import claims, make_nodes, package_requests, portal_init, workers
from tests.support.own_redis import own_redis
from tests.support.package_world import REDACTABLE, user

PACKAGES = 4


def test_two_worker_nodes_assemble_every_queued_package_exactly_once(
    tmp_path: Path, database: DatabaseUnderTest
) -> None:
    if database.backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL and Redis")
    with own_redis() as redis:
        shared = {
            "PORTAL_DATABASE_URL": database.url,
            "PORTAL_REDIS_URL": redis.url,
            "PORTAL_DATA_DIR": str(tmp_path / "shared-data"),
            "PORTAL_DEMO": "1",  # the example keys
        }
        portal_init(shared, tmp_path / "first")
        nodes = make_nodes(tmp_path, 2, shared, keys_from=tmp_path / "first")
        settings = Settings.from_env({**nodes[0].env, **nodes[0].signing})
        state = build_state(settings)
        try:
            world, codes = package_requests(state, PACKAGES, video_bytes=64 << 10)
            with state.sessions() as db:
                officer = user(db, world.officer_id)
                ids = []
                for code in codes:
                    rfa = db.scalars(select(Rfa).where(Rfa.code == code)).one()
                    ids.append(create_package(db, rfa, REDACTABLE, by=officer).id)
                db.commit()
            with workers(nodes):
                jobs = make_jobs(settings, state=state)
                for package_id in ids:
                    jobs.enqueue_assembly(package_id)
                deadline = time.monotonic() + 180
                while _statuses(state, ids) - {"assembled", "failed", "blocked"}:
                    assert time.monotonic() < deadline, _statuses(state, ids)
                    time.sleep(0.2)
            assert _statuses(state, ids) == {"assembled"}
            with state.sessions() as db:
                for package_id in ids:
                    package = make.stored(db, Package, package_id)
                    assert package.attempts == 1
                    for action in ("package.assembly_started", "package.assembled"):
                        count = db.scalar(
                            select(func.count()).where(
                                AuditEvent.action == action,
                                AuditEvent.target == f"package:{package.code}",
                            )
                        )
                        assert count == 1, (package.code, action, count)
            ran = [claims(node) for node in nodes]
            assert sorted(ran[0] + ran[1]) == sorted(ids)  # each once, by one node
            assert ran[0] and ran[1], ran  # and both nodes took some
        finally:
            state.engine.dispose()


def _statuses(state: PortalState, ids: list[int]) -> set[str]:
    with state.sessions() as db:
        return set(db.scalars(select(Package.status).where(Package.id.in_(ids))))
