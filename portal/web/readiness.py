"""``/readyz``: whether this portal can do its work, check by check, for monitors.

``/healthz`` is liveness (the process answers and reaches its database). Readiness adds what
work depends on: Redis when configured (and whether it keeps the queue on disk), the job
queue, free space in the blob store, a worker seen recently, and damaged files reported
lately. Statuses and numbers only: no paths, hosts or names.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, text

from portal.audit import AuditEvent
from portal.integrity.damage import ACTION as DAMAGED
from portal.integrity.scrub import last_clean_scrub
from portal.packages.assembly.jobs import jobs_for, redis_persists
from portal.packages.assembly.watch import MISSED_BEATS, last_seen
from portal.state import PortalState, portal_state

logger = logging.getLogger(__name__)

MIN_FREE_BYTES = 1 << 30  # below this much free space (or 5 %) new evidence cannot be taken in
MIN_FREE_SHARE = 0.05


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness() -> list[Check]:
    """Every check, in a fixed order; none raises."""
    state = portal_state()
    checks = [_database(state)]
    if state.settings.redis_url:
        checks.append(_redis(state.settings.redis_url))
    checks += [_queue(), _storage(state), _worker(state), _damage(state)]
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a check that cannot run says so; the page never fails
        logger.warning("Readiness check %s failed: %s", name, type(exc).__name__)
        return Check(name, False, "unavailable")


def _database(state: PortalState) -> Check:
    def run() -> Check:
        with state.sessions() as db:
            db.execute(text("SELECT 1"))
        return Check("database", True, "reachable")

    return _guarded("database", run)


def _redis(url: str) -> Check:
    def run() -> Check:
        persists = redis_persists(url)
        detail = {
            True: "keeps the queue on disk",
            False: "keeps nothing on disk: queued jobs are lost if it restarts",
            None: "persistence unknown",
        }[persists]
        return Check("redis", True, f"reachable; {detail}")

    return _guarded("redis", run)


def _queue() -> Check:
    def run() -> Check:
        waiting = jobs_for(current_app._get_current_object()).huey.pending_count()  # type: ignore[attr-defined]
        return Check("queue", True, f"{waiting} job(s) waiting")

    return _guarded("queue", run)


def _storage(state: PortalState) -> Check:
    def run() -> Check:
        root = state.settings.blob_dir
        root.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(root)
        share = usage.free / usage.total if usage.total else 0.0
        ok = usage.free >= MIN_FREE_BYTES and share >= MIN_FREE_SHARE
        return Check("storage", ok, f"{share:.0%} free")

    return _guarded("storage", run)


def _worker(state: PortalState) -> Check:
    def run() -> Check:
        seen = last_seen(state.settings.data_dir)
        if seen is None:
            return Check("worker", False, "no worker has been seen")
        ago = max(0, int(time.time() - seen))
        ok = ago <= MISSED_BEATS * state.settings.worker_heartbeat
        return Check("worker", ok, f"last seen {ago} s ago")

    return _guarded("worker", run)


def _damage(state: PortalState) -> Check:
    """Damage reported since the last ``portal scrub`` that found the whole store sound."""

    def run() -> Check:
        with state.sessions() as db:
            since = last_clean_scrub(db)
            count = db.scalar(
                select(func.count()).where(AuditEvent.action == DAMAGED, AuditEvent.seq > since)
            )
        if count:
            return Check(
                "damaged files", False, f"{count} reported; restore them, then run portal scrub"
            )
        return Check("damaged files", True, "none reported since the last clean scrub")

    return _guarded("damaged files", run)
