"""Runs whose worker died: found by their missing heartbeat, queued again, then failed.

A running assembly records a sign of life every ``PORTAL_WORKER_HEARTBEAT`` seconds (the
package's ``updated_at``: its stages, and a heartbeat thread between them, see
:func:`portal.packages.assembly.assemble.assemble_package`). A package still "assembling"
after :data:`MISSED_BEATS` heartbeats without one lost its worker (killed, out of memory, the
machine gone; Huey does not give a job back when its consumer dies). Every ``portal worker``
watches for them (:func:`start_watching`): such a package is queued again — its version moves
on, so the old run, should it wake up, finds it is no longer its own — until it has been tried
:data:`MAX_ATTEMPTS` times; then it fails with the reason. Several watchers may find the same
package: the update is conditional, so only one requeues it.

A job can also be lost before any worker took it: a Redis that keeps nothing on disk
restarted, or the queue was flushed. A package "queued" for longer than the same grace with
no ``assemble`` job for it in the queue (:func:`requeue_lost`) is queued again, counted as
an attempt, and failed with the reason after :data:`MAX_ATTEMPTS`. Should the job turn out
not to be lost (a worker took it just then), the duplicate finds the run alive and leaves it
alone (``_claim`` in :mod:`portal.packages.assembly.assemble`): one assembly at a time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from portal import audit
from portal.db import aware_utc, transaction
from portal.packages.models import Package
from portal.periodic import repeat
from portal.state import PortalState

logger = logging.getLogger(__name__)

MISSED_BEATS = 3
MAX_ATTEMPTS = 3
GAVE_UP = (
    "The worker assembling this package stopped {attempts} times without finishing (killed, "
    "out of memory, or its machine went down); nothing was released. Retry, and tell the "
    "administrators if it happens again."
)


def requeue_dead(
    state: PortalState, enqueue: Callable[[int], None], *, now: datetime | None = None
) -> list[str]:
    """Queue again (or fail, after :data:`MAX_ATTEMPTS`) every package whose assembly shows
    no sign of life; the codes of those queued again."""
    from portal.integrity.janitor import remove_stages_of  # (the janitor reads MISSED_BEATS)

    moment = aware_utc(now)
    cutoff = moment - timedelta(seconds=MISSED_BEATS * state.settings.worker_heartbeat)
    with state.sessions() as db:
        dead = db.execute(
            select(Package.id, Package.code, Package.version, Package.attempts).where(
                Package.status == "assembling", Package.updated_at < cutoff
            )
        ).all()
    requeued = []
    for package_id, code, version, attempts in dead:
        gave_up = attempts >= MAX_ATTEMPTS
        with transaction(state.sessions) as db:
            audit.lock_chain(db)  # chain, then package row (as everywhere)
            values: dict[str, object] = (
                {"status": "failed", "stage": "failed", "failure_reason": GAVE_UP.format(
                    attempts=attempts)}
                if gave_up
                else {
                    "status": "queued",
                    "stage": f"queued again: its worker stopped (run {attempts} of "
                    f"{MAX_ATTEMPTS})",
                    "progress": 0,
                }
            )  # fmt: skip
            result = db.execute(
                update(Package)
                .where(
                    Package.id == package_id,
                    Package.version == version,
                    Package.status == "assembling",
                    Package.updated_at < cutoff,
                )
                .values(**values, version=version + 1, updated_at=moment)
                .execution_options(synchronize_session=False)
            )
            if not getattr(result, "rowcount", 0):
                continue  # it came back to life, or another watcher took it
            audit.record(
                db,
                audit.SYSTEM_ACTOR,
                "package.failed" if gave_up else "package.requeued",
                f"package:{code}",
                {"reason": "its worker stopped (no heartbeat)", "attempts": attempts},
            )
        logger.warning(
            "Package %s: its worker stopped (run %d of %d); %s",
            code,
            attempts,
            MAX_ATTEMPTS,
            "failed" if gave_up else "queued again",
        )
        remove_stages_of(state, code, version)  # the dead run's partial files
        if not gave_up:
            enqueue(package_id)
            requeued.append(code)
    return requeued


LOST = (
    "The assembly job of this package was lost from the queue {attempts} times (the queue "
    "was emptied, or Redis restarted without keeping it); nothing was released. Retry, and "
    "tell the administrators (Redis should keep the queue on disk: appendonly yes)."
)


def requeue_lost(
    state: PortalState,
    pending: Callable[[], set[int]],
    enqueue: Callable[[int], None],
    *,
    now: datetime | None = None,
) -> list[str]:
    """Queue again (or fail, after :data:`MAX_ATTEMPTS`) every package "queued" for longer
    than the grace whose job is not in the queue (``pending``: the package ids the queue
    holds); the codes of those queued again."""
    moment = aware_utc(now)
    cutoff = moment - timedelta(seconds=MISSED_BEATS * state.settings.worker_heartbeat)
    with state.sessions() as db:
        waiting = db.execute(
            select(Package.id, Package.code, Package.version, Package.attempts).where(
                Package.status == "queued", Package.updated_at < cutoff
            )
        ).all()
    if not waiting:
        return []
    in_queue = pending()
    requeued = []
    for package_id, code, version, attempts in waiting:
        if package_id in in_queue:
            continue
        gave_up = attempts + 1 >= MAX_ATTEMPTS
        with transaction(state.sessions) as db:
            audit.lock_chain(db)  # chain, then package row (as everywhere)
            values: dict[str, object] = (
                {"status": "failed", "stage": "failed",
                 "failure_reason": LOST.format(attempts=attempts + 1)}
                if gave_up
                else {"stage": "queued again: its job was lost from the queue"}
            )  # fmt: skip
            result = db.execute(
                update(Package)
                .where(
                    Package.id == package_id,
                    Package.version == version,
                    Package.status == "queued",
                    Package.updated_at < cutoff,
                )
                .values(**values, attempts=attempts + 1, version=version + 1, updated_at=moment)
                .execution_options(synchronize_session=False)
            )
            if not getattr(result, "rowcount", 0):
                continue  # a worker took it meanwhile, or another watcher did
            audit.record(
                db,
                audit.SYSTEM_ACTOR,
                "package.failed" if gave_up else "package.requeued",
                f"package:{code}",
                {"reason": "its job was lost from the queue", "attempts": attempts + 1},
            )
        logger.warning(
            "Package %s: its job was lost from the queue; %s",
            code,
            "failed" if gave_up else "queued again",
        )
        if not gave_up:
            enqueue(package_id)
            requeued.append(code)
    return requeued


WORKERS_DIR = "workers"  # under the data directory: one file per worker, touched while alive


def mark_alive(data_dir: Path) -> None:
    """Touch this worker's file (``workers/<host>-<pid>``), which the readiness check reads."""
    directory = data_dir / WORKERS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{socket.gethostname()}-{os.getpid()}").touch()


def last_seen(data_dir: Path) -> float | None:
    """When a worker last showed it was alive (Unix time), or None if none ever did."""
    directory = data_dir / WORKERS_DIR
    times = [p.stat().st_mtime for p in directory.iterdir()] if directory.is_dir() else []
    return max(times, default=None)


def start_watching(
    state: Callable[[], PortalState],
    enqueue: Callable[[int], None],
    interval: float,
    pending: Callable[[], set[int]] | None = None,
) -> threading.Event:
    """Every ``interval`` seconds in a daemon thread, from now until the returned event is set:
    show this worker is alive, and look for dead runs (and, given ``pending``, lost jobs)."""

    def watch() -> None:
        current = state()
        mark_alive(current.settings.data_dir)
        requeue_dead(current, enqueue)
        if pending is not None:
            requeue_lost(current, pending, enqueue)

    return repeat(
        watch,
        interval,
        name="portal-assembly-watch",
        logger=logger,
        failure="Could not look for assemblies whose worker stopped",
    )
