"""Error handlers: every HTTP error, CSRF failure and unexpected exception becomes the
response :func:`portal.pages.errors.error_response` makes (HTML page or problem+json).
Unexpected exceptions are logged here with a short reference the user can quote.
"""

from __future__ import annotations

import errno
import logging
import secrets

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.db import transaction
from portal.log_paths import loggable_path
from portal.notifications import service as notifications
from portal.pages.errors import CSRF_MESSAGE, CSRF_TITLE, error_response
from portal.pages.i18n import N_
from portal.state import portal_state

logger = logging.getLogger(__name__)


def _passthrough_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """Headers the status needs (``Allow`` on 405, ``WWW-Authenticate`` on 401, ...)."""
    return [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]


def handle_http_exception(exc: HTTPException) -> Response:
    if exc.response is not None:
        # A view aborted with a ready-made response; it is already what it should be.
        return exc.response  # type: ignore[return-value]
    status = exc.code or 500
    if status >= 500:
        logger.error("HTTP %s on %s %s", status, request.method, loggable_path(request.path))
    return error_response(status, headers=_passthrough_headers(exc))


def handle_csrf_error(exc: CSRFError) -> Response:
    logger.info("CSRF check failed on %s %s", request.method, loggable_path(request.path))
    return error_response(
        400, title=CSRF_TITLE, message=CSRF_MESSAGE, headers=_passthrough_headers(exc)
    )


STORAGE_FULL_TITLE = N_("Storage full")
STORAGE_FULL_MESSAGE = N_(
    "The portal's storage is full; nothing was saved. The administrators have been told. "
    "Please try again later."
)
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def handle_storage_full(exc: OSError) -> Response:
    """A disk (or quota) full while writing: say so (507), and tell the admins once."""
    logger.error(
        "Storage full on %s %s: %s", request.method, loggable_path(request.path), exc.strerror
    )
    try:
        with transaction(portal_state().sessions) as db:
            notifications.storage_full(db)
    except Exception:  # the database may be on the full disk too: the answer still stands
        logger.exception("Could not notify the admins that the storage is full")
    return error_response(507, title=STORAGE_FULL_TITLE, message=STORAGE_FULL_MESSAGE)


QUEUE_DOWN_TITLE = N_("Job queue unavailable")
QUEUE_DOWN_MESSAGE = N_(
    "The job queue is unavailable; nothing was lost. Try again in a few minutes; the "
    "administrators can see it on the readiness check."
)


def queue_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the job queue (Redis, or the queue's SQLite file) cannot be
    reached: the views that queue work catch it themselves; this is the net under them."""
    import sqlite3

    import redis.exceptions

    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def handle_queue_unavailable(exc: Exception) -> Response:
    """The queue is down (503, with Retry-After): nothing was done, nothing was lost."""
    logger.error(
        "Job queue unavailable on %s %s (%s)",
        request.method,
        loggable_path(request.path),
        type(exc).__name__,  # the type only: a connection error's text may carry the URL
    )
    return error_response(
        503, title=QUEUE_DOWN_TITLE, message=QUEUE_DOWN_MESSAGE, headers=[("Retry-After", "60")]
    )


def handle_unexpected(exc: Exception) -> Response:
    """Log the exception (never the request body) and answer with a plain 500."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return handle_storage_full(exc)
    if queue_unavailable(exc):
        return handle_queue_unavailable(exc)
    reference = secrets.token_hex(4).upper()
    logger.exception(
        "Unhandled %s on %s %s (reference %s)",
        type(exc).__name__,
        request.method,
        loggable_path(request.path),
        reference,
        exc_info=exc,
    )
    return error_response(500, reference=reference)


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
