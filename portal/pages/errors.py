"""Error responses: the right status, a plain message, nothing internal.

Browsers get an HTML page; JSON clients (``Accept`` preferring JSON, or any path
under ``/api/``) get ``application/problem+json`` (RFC 9457). Unexpected
exceptions are logged here with a short reference the user can quote; the
response never carries exception text, stack traces or version details.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus

from flask import Response, current_app, jsonify, render_template, request
from markupsafe import escape

from portal.pages.i18n import N_, translate
from portal.storage import human_size

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: status -> (title, message) shown to the user.
MESSAGES: dict[int, tuple[str, str]] = {
    400: (
        N_("Bad request"),
        N_(
            "The portal could not understand this request. Go back, check what you entered "
            "and try again."
        ),
    ),
    401: (N_("Sign-in required"), N_("You need to sign in to see this page.")),
    403: (
        N_("Access denied"),
        N_(
            "You do not have permission to see this page. If you think you should, "
            "contact the portal administrators."
        ),
    ),
    404: (
        N_("Page not found"),
        N_(
            "The page you asked for could not be found. Check the address, or go back to "
            "the start page."
        ),
    ),
    405: (
        N_("Not allowed"),
        N_("This page cannot be used in that way. Go back and use the page's own links and forms."),
    ),
    413: (N_("Upload too large"), N_("The upload is too large.")),
    429: (
        N_("Too many requests"),
        N_("You have made too many requests in a short time. Wait a moment and try again."),
    ),
    500: (
        N_("Something went wrong"),
        N_(
            "The portal could not complete your request. The problem has been recorded. "
            "Please try again later; if it keeps happening, contact the portal "
            "administrators."
        ),
    ),
    503: (
        N_("Service unavailable"),
        N_("The portal is temporarily unavailable. Please try again in a few minutes."),
    ),
}

CSRF_TITLE = N_("Form expired")
CSRF_MESSAGE = N_(
    "This form has expired or could not be verified, so nothing was saved. "
    "Please reload the page and try again."
)

FALLBACK_PAGE = (
    '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
    "<title>{title} \N{EN DASH} Sharing Portal</title></head>\n"
    "<body><main><h1>{title}</h1><p>{message}</p>{reference}"
    '<p><a href="/">Go to the start page</a></p></main></body>\n</html>\n'
)


def upload_limit_message() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if not limit:
        return MESSAGES[413][1]
    return N_(
        "The upload is too large. The portal accepts at most %(limit)s per request. "
        "Nothing was saved.",
        limit=human_size(int(limit)),
    )


def wants_json() -> bool:
    """True for API paths and for clients that prefer JSON to HTML."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", PROBLEM_JSON])
    return best in {"application/json", PROBLEM_JSON}


def _title_and_message(status: int) -> tuple[str, str]:
    if status == 413:
        return MESSAGES[413][0], upload_limit_message()
    if status in MESSAGES:
        return MESSAGES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    generic = MESSAGES[500][1] if status >= 500 else MESSAGES[400][1]
    return phrase, generic


def _render_page(status: int, title: str, message: str, reference: str | None) -> str:
    try:
        return render_template(
            "web/error.html", status=status, title=title, message=message, reference=reference
        )
    except Exception:
        # The error page must never fail: fall back to plain HTML.
        logger.exception("Could not render the error page for status %s", status)
        ref = f"<p>Reference: {escape(reference)}</p>" if reference else ""
        return FALLBACK_PAGE.format(title=escape(title), message=escape(message), reference=ref)


def error_response(
    status: int,
    *,
    title: str | None = None,
    message: str | None = None,
    reference: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """An error response for ``status`` in the format the client wants."""
    default_title, default_message = _title_and_message(status)
    title = title or default_title
    message = message or default_message
    if wants_json():
        problem: dict[str, object] = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": message,
        }
        if reference:
            problem["reference"] = reference
        response = jsonify(problem)
        response.mimetype = PROBLEM_JSON
    else:  # pages in the reader's language (problem+json stays English for API clients)
        page = _render_page(status, translate(title), translate(message), reference)
        response = Response(page, mimetype="text/html")
    response.status_code = status
    for name, value in headers:
        response.headers[name] = value
    response.vary.add("Accept")
    return response
