"""API errors in one shape: ``application/problem+json`` (RFC 9457).

Generic HTTP errors (404, 405, 413, 429, 500) under ``/api/`` already come out in this
shape from :mod:`portal.web.errors`; views use :func:`problem` for their own refusals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response, jsonify

from portal.pages.errors import PROBLEM_JSON

TYPE_PREFIX = "urn:sharing-portal:problem:"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """A problem response; ``kind`` names the problem type (``about:blank`` without)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in headers:
        response.headers[name] = value
    return response


def invalid(errors: Mapping[str, list[str]], detail: str | None = None) -> Response:
    """422 with the messages per field (the same messages as the pages show)."""
    return problem(
        422,
        "Invalid request",
        detail or "; ".join(m for messages in errors.values() for m in messages),
        kind="validation-failed",
        extra={"errors": {name: list(messages) for name, messages in errors.items()}},
    )


def bad_json() -> Response:
    return problem(
        400,
        "Bad request",
        "Send a JSON object in the body, with Content-Type: application/json.",
        kind="bad-json",
    )


def conflict(detail: str, title: str = "Refused") -> Response:
    """409: the action is not possible in the object's current state; nothing changed."""
    return problem(409, title, detail, kind="refused")
