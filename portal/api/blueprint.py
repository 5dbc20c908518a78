"""The JSON API v1 blueprint; views of each area add their routes to it."""

from __future__ import annotations

from flask import Blueprint, request

PREFIX = "/api/v1"
#: No API request body is anywhere near this (a request's fields are at most ~300 KB).
MAX_BODY_BYTES = 1024 * 1024

bp = Blueprint("api", __name__, url_prefix=PREFIX)


@bp.before_request
def _limit_body() -> None:
    """A small cap for JSON and form bodies (the app's cap is sized for file uploads);
    werkzeug answers 413 beyond it, whether or not a Content-Length was sent."""
    request.max_content_length = MAX_BODY_BYTES
