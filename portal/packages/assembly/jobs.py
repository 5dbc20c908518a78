"""The package assembly job, and the page images of the redaction viewer, on Huey.

:func:`make_jobs` builds a Huey instance for a deployment and registers the ``assemble`` and
``render_pages`` tasks on it: ``SqliteHuey`` (a WAL database file in the instance directory)
by default, ``RedisHuey`` when ``PORTAL_REDIS_URL`` is set, or Huey's in-process ``immediate``
mode for tests of views (the real task runs, synchronously, inside the request). Nothing is
built at import time and there is no module-level instance: the web app holds its
:class:`Jobs` in ``app.extensions`` (:func:`jobs_for`), ``portal worker`` builds its own.

The assembly task reads the package id, gets the portal state (the app's own in the consumer thread
of ``portal run``; in a worker process, built once from the settings on first use) and calls
:func:`portal.packages.assembly.assemble.assemble_package`, which is idempotent: it does nothing to
an assembled or released package and starts a failed or stuck one again from scratch. Unexpected
errors are retried (``RETRIES`` times, ``RETRY_DELAY`` seconds apart); when the last attempt
fails too, the package is marked failed with a reason instead of staying "assembling".

``render_pages`` renders pages of one item for the redaction viewer into the page cache
(:class:`portal.redaction.page_images.PageImages`), skipping those already there. A page that
cannot be shown is logged (item code, page, reason) and not retried; anything unexpected is
retried once.

``make_preview`` makes the preview of one item of a request before assembly (the redacted
rendition as assembly would bag it, its page images and its leak check:
:func:`portal.packages.previews.make_preview`), reusing a finished one that nothing has
changed since. What goes wrong is recorded in the preview's status, so it is not retried.

``render_package_pages`` renders pages of an assembled package's kept renditions for its
releasing officer (:mod:`portal.packages.release_previews`), like ``render_pages``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from portal.config import Settings
from portal.db import transaction

if TYPE_CHECKING:
    from flask import Flask

    from portal.state import PortalState

__all__ = [
    "EXTENSION",
    "QUEUE_FILE",
    "RETRIES",
    "RETRY_DELAY",
    "Jobs",
    "jobs_for",
    "make_jobs",
    "run_assembly",
    "run_page_rendering",
    "run_preview",
    "start_consumer",
]

logger = logging.getLogger(__name__)

QUEUE_FILE = "huey.db"
RETRIES = 2
RETRY_DELAY = 30  # seconds
PAGE_RETRIES = 1  # render_pages: an unexpected error is retried once
PAGE_RETRY_DELAY = 10  # seconds
EXTENSION = "portal.jobs"
#: app.config key: run jobs in-process, synchronously (tests of views).
IMMEDIATE_CONFIG = "PORTAL_JOBS_IMMEDIATE"
_GAVE_UP = (
    "Assembly stopped after {attempts} attempts because of an unexpected error ({error}); "
    "nothing was released. Retry, and tell the administrators if it fails again."
)


@dataclass(frozen=True)
class Jobs:
    """A Huey instance and the tasks registered on it."""

    huey: Huey
    assemble: Any  # huey.api.TaskWrapper: calling it enqueues (or, immediate, runs) the task
    render_pages: Any  # the same, for render_pages(item_id, pages)
    render_package_pages: Any  # render_package_pages(package_code, item_code, pages)
    make_preview: Any  # the same, for make_preview(rfa_id, item_id)
    find_hits: Any  # the same, for find_hits(item_id)
    issue_notices: Any  # issue_recall_notices(): sign every recall notice not yet signed
    issue_statements: Any  # issue_release_statements(): sign released packages' statements

    def enqueue_assembly(self, package_id: int) -> None:
        """Queue the assembly of a package (in immediate mode: run it now)."""
        self.assemble(package_id)

    def pending_assemblies(self) -> set[int]:
        """The package ids of the ``assemble`` jobs waiting in the queue (or for a retry)."""
        tasks = [*self.huey.pending(), *self.huey.scheduled()]
        return {int(task.args[0]) for task in tasks if task.name == "assemble" and task.args}


class _StateProvider:
    """The state a task runs with: a given one, or one built from ``settings`` on first use
    (worker processes), once per Huey instance even with several worker threads."""

    def __init__(self, settings: Settings, state: PortalState | None) -> None:
        self._settings = settings
        self._state = state
        self._lock = threading.Lock()

    def __call__(self) -> PortalState:
        with self._lock:
            if self._state is None:
                from portal.state import build_state

                self._state = build_state(self._settings)
            return self._state


def _queue(settings: Settings, immediate: bool, name: str) -> Huey:
    if immediate:
        return MemoryHuey(name, immediate=True)
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        name,
        filename=str(settings.instance_dir / QUEUE_FILE),
        journal_mode="wal",
        timeout=15,
    )


def make_jobs(
    settings: Settings,
    *,
    state: PortalState | None = None,
    immediate: bool = False,
    name: str | None = None,
) -> Jobs:
    """A Huey instance for ``settings`` with the portal's tasks registered on it.

    ``state``: the state tasks run with (default: built from ``settings`` when the first task
    runs). ``immediate``: run tasks in-process as they are enqueued. ``name``: the queue's
    name (default ``settings.queue_name``; portals sharing one Redis need different names).
    """
    huey = _queue(settings, immediate, name or settings.queue_name)
    provider = _StateProvider(settings, state)

    def assemble(package_id: int, task: Any = None) -> None:
        """Assemble one package (idempotent)."""
        remaining = getattr(task, "retries", 0) or 0
        run_assembly(provider(), package_id, last_attempt=remaining <= 0)

    wrapper = huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, context=True, name="assemble")(
        assemble
    )

    def render_pages(item_id: int, pages: list[int]) -> None:
        """Render pages of one item for the redaction viewer (cached ones are skipped)."""
        run_page_rendering(provider(), item_id, pages)

    pages_wrapper = huey.task(
        retries=PAGE_RETRIES, retry_delay=PAGE_RETRY_DELAY, name="render_pages"
    )(render_pages)

    def make_preview(rfa_id: int, item_id: int) -> None:
        """Make the preview of one item of a request (a finished one is reused)."""
        run_preview(provider(), rfa_id, item_id)

    preview_wrapper = huey.task(name="make_preview")(make_preview)

    def render_package_pages(package_code: str, item_code: str, pages: list[int]) -> None:
        """Render pages of an assembled package's rendition for its releasing officer."""
        from portal.packages.release_previews import render_pages

        render_pages(provider(), package_code, item_code, pages)

    package_pages_wrapper = huey.task(
        retries=PAGE_RETRIES, retry_delay=PAGE_RETRY_DELAY, name="render_package_pages"
    )(render_package_pages)

    def find_hits(item_id: int) -> None:
        """Search an item for its term marks and the register (text and pixels)."""
        from portal.redaction.found_names import search_item

        search_item(provider(), item_id)

    hits_wrapper = huey.task(name="find_hits")(find_hits)

    def issue_recall_notices() -> None:
        """Sign and store every recall notice not issued yet (the web process never signs)."""
        from portal.packages.recalls import issue_pending_notices

        issue_pending_notices(provider())

    notices_wrapper = huey.task(name="issue_recall_notices")(issue_recall_notices)

    def issue_release_statements() -> None:
        """Sign every missing release statement (the web process never signs)."""
        from portal.packages.release_statement import issue_pending_statements

        issue_pending_statements(provider())

    statements_wrapper = huey.task(name="issue_release_statements")(issue_release_statements)
    return Jobs(
        huey=huey,
        assemble=wrapper,
        render_pages=pages_wrapper,
        render_package_pages=package_pages_wrapper,
        make_preview=preview_wrapper,
        find_hits=hits_wrapper,
        issue_notices=notices_wrapper,
        issue_statements=statements_wrapper,
    )


def run_assembly(state: PortalState, package_id: int, *, last_attempt: bool = True) -> None:
    """Run the assembler for one package. A failure the assembler reports (it has already
    marked the package failed or blocked) ends the job; anything else is re-raised for Huey to
    retry, after marking the package failed when this was the last attempt."""
    from portal.packages.assembly.assemble import AssemblyFailed, assemble_package

    try:
        assemble_package(state, package_id)
    except AssemblyFailed as exc:
        logger.info("package %s: assembly failed: %s", package_id, exc.reason)
    except Exception as exc:
        logger.exception("package %s: assembly raised", package_id)
        if last_attempt:
            _give_up(state, package_id, type(exc).__name__)
        raise


def run_page_rendering(state: PortalState, item_id: int, pages: list[int]) -> None:
    """Render ``pages`` (1-based) of item ``item_id`` into the page cache, skipping cached
    ones. A page that cannot be shown is logged and skipped; a missing item or blob is logged
    and ends the job (nothing a retry would change)."""
    from portal.redaction.page_images import PageImageFailed, PageImages
    from portal.registry.models import Item

    with state.sessions() as session:
        item = session.get(Item, item_id)
        if item is None:
            logger.warning("item %s: no such item; no page images rendered", item_id)
            return
        code, key, media_type = item.code, item.blob_key, item.media_type
    source = state.blobs.path(key)
    if not source.is_file():
        logger.error("item %s: its blob %s is missing; no page images rendered", code, key[:12])
        return
    images = PageImages(state.settings.page_cache_dir)
    for page in dict.fromkeys(pages):  # each page once, in the order asked
        if images.cached(key, page) is not None:
            continue
        try:
            images.render(source, media_type, key, page)
        except PageImageFailed as failed:
            logger.warning("item %s page %s: no page image: %s", code, page, failed.reason)


def run_preview(state: PortalState, rfa_id: int, item_id: int) -> None:
    """Make the preview of item ``item_id`` of request ``rfa_id`` (its status file says how
    it went; a refusal is shown by the page, which checks again)."""
    from portal.packages.previews import make_preview

    preview = make_preview(state, rfa_id, item_id)
    logger.info("preview of item %s for request %s: %s", item_id, rfa_id, preview.state)


def _give_up(state: PortalState, package_id: int, error: str) -> None:
    from portal.packages.lifecycle import fail_package

    try:
        with transaction(state.sessions) as session:
            fail_package(session, package_id, _GAVE_UP.format(attempts=RETRIES + 1, error=error))
    except Exception:  # the database itself may be what failed
        logger.exception("package %s: could not record the failure", package_id)


def redis_persists(url: str) -> bool | None:
    """Whether the Redis at ``url`` keeps its data on disk (AOF or snapshots); None when it
    will not say (CONFIG disabled). Raises redis' errors when it cannot be reached."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        try:
            aof = client.config_get("appendonly").get("appendonly") == "yes"
            rdb = bool(client.config_get("save").get("save"))
        except redis.exceptions.ResponseError:
            return None
    finally:
        client.close()
    return aof or rdb


def warn_unless_redis_persists(url: str) -> None:
    """At a worker's start: a warning in the log when Redis keeps nothing on disk (a restart
    would lose queued jobs). The worker still starts: some deployments accept that."""
    try:
        persists = redis_persists(url)
    except Exception as exc:  # the consumer reports an unreachable Redis itself
        # the type only: a connection error's text may carry the URL
        logger.warning(
            "Could not ask Redis whether it keeps the queue on disk (%s)", type(exc).__name__
        )
        return
    if persists is False:
        logger.warning(
            "Redis keeps nothing on disk: queued jobs are lost if it restarts "
            "(set appendonly yes; see the README)"
        )


def jobs_for(app: Flask) -> Jobs:
    """The app's jobs, made on first use (in immediate mode when ``PORTAL_JOBS_IMMEDIATE``)."""
    from portal.state import portal_state

    jobs: Jobs | None = app.extensions.get(EXTENSION)
    if jobs is None:
        state = portal_state(app)
        jobs = make_jobs(
            state.settings, state=state, immediate=bool(app.config.get(IMMEDIATE_CONFIG))
        )
        app.extensions[EXTENSION] = jobs
    return jobs


def queue_recall_notices(app: Flask) -> None:
    """Ask the worker to sign the recall notices not issued yet. Never raises: a queue that
    is down is logged, and the recipient's recall page asks again."""
    try:
        jobs_for(app).issue_notices()
    except Exception as exc:  # Redis down, a locked queue file: the recall page asks again
        logger.warning("recall notices not queued yet: %s", type(exc).__name__)


def queue_release_statements(app: Flask) -> None:
    """Ask the worker to sign the release statements not issued yet. Never raises: the
    recipient's package page asks again."""
    try:
        jobs_for(app).issue_statements()
    except Exception as exc:  # Redis down, a locked queue file: the package page asks again
        logger.warning("release statements not queued yet: %s", type(exc).__name__)


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A consumer that runs beside a web server: the host process owns the signals."""

    def _set_signal_handlers(self) -> None:
        return None


def start_consumer(
    huey: Huey, workers: int = 1, *, poll_seconds: float = 2.0
) -> Callable[[], None]:
    """Start a consumer in threads of this process (``portal run``, tests); returns a function
    that stops it (waiting for a running task to finish)."""
    consumer = _EmbeddedConsumer(
        huey,
        workers=workers,
        worker_type="thread",
        periodic=False,
        check_worker_health=False,
        max_delay=poll_seconds,
    )
    consumer.start()

    def stop() -> None:
        consumer.stop(graceful=True)

    return stop
