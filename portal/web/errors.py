"""Error handlers: every HTTP error, CSRF failure and unexpected exception becomes the
response :func:`portal.pages.errors.error_response` makes (HTML page or problem+json).
Unexpected exceptions are logged here with a short reference the user can quote.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.pages.errors import CSRF_MESSAGE, CSRF_TITLE, error_response

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
        logger.error("HTTP %s on %s %s", status, request.method, request.path)
    return error_response(status, headers=_passthrough_headers(exc))


def handle_csrf_error(exc: CSRFError) -> Response:
    logger.info("CSRF check failed on %s %s", request.method, request.path)
    return error_response(
        400, title=CSRF_TITLE, message=CSRF_MESSAGE, headers=_passthrough_headers(exc)
    )


def handle_unexpected(exc: Exception) -> Response:
    """Log the exception (never the request body) and answer with a plain 500."""
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    reference = secrets.token_hex(4).upper()
    logger.exception(
        "Unhandled %s on %s %s (reference %s)",
        type(exc).__name__,
        request.method,
        request.path,
        reference,
        exc_info=exc,
    )
    return error_response(500, reference=reference)


def register(app: Flask) -> None:
    """Install the error handlers on ``app``."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
