"""HTTP responses for page images (review, previews): the PNG, privately cached, or a grey
placeholder page that says why there is no image yet. The endpoints that send them are listed
in :data:`portal.authz.headers.PRIVATELY_CACHED`: every other response is ``no-store``."""

from __future__ import annotations

from html import escape
from pathlib import Path

from flask import current_app, send_file
from werkzeug.wrappers import Response as BaseResponse

__all__ = ["PREPARING", "page_png", "placeholder"]

PREPARING = "Preparing this page…"
PRIVATE_SECONDS = 3600


def page_png(path: Path) -> BaseResponse:
    """A rendered page, cached by the signed-in user's browser only."""
    response = send_file(path, mimetype="image/png", max_age=PRIVATE_SECONDS, conditional=True)
    response.headers["Cache-Control"] = f"private, max-age={PRIVATE_SECONDS}"
    return response


def placeholder(text: str, *, retry_after: int | None = None) -> BaseResponse:
    """A page-sized grey SVG saying ``text``; ``retry_after`` seconds when the image is being
    made (the review script asks again)."""
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="850" height="1100" '
        'viewBox="0 0 850 1100"><rect width="850" height="1100" fill="#f3f3f3"/>'
        '<text x="425" y="550" font-family="sans-serif" font-size="28" text-anchor="middle" '
        f'fill="#555">{escape(text)}</text></svg>'
    )
    response = current_app.response_class(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
