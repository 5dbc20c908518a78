"""Requests for assistance over the API: submit, list, read, and the clarification thread.

The same domain functions as the requester's pages (:mod:`portal.rfa.drafting`), with
the client acting as a requester of its authority; another authority's request is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from portal.api import shapes
from portal.api.blueprint import bp
from portal.api.principal import acting_user
from portal.api.problem import bad_json, conflict, invalid
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db
from portal.pages.numerals import whole_number
from portal.paging import PAGE_SIZE, paginate
from portal.rfa.drafting import (
    RequestError,
    ValidationFailed,
    create_draft,
    post_message,
    submit,
    thread,
    validate,
)
from portal.rfa.models import Rfa
from portal.state import portal_state

MAX_PAGE = 100_000


def _json_object() -> dict[str, Any] | None:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def _rfa(code: str) -> Rfa:
    return get_scoped_or_404(db(), Rfa, acting_user(), code=code[:32])


def _page() -> int | None:
    number = whole_number(request.args.get("page", "1"), maximum=MAX_PAGE)
    return number if number else None


@bp.post("/requests")
@requires("api.rfa.write")
def create() -> Response:
    """Submit a request: a draft made and submitted at once, or nothing at all."""
    data = _json_object()
    if data is None:
        return bad_json()
    me = acting_user()
    mandate = portal_state().policy.mandate
    try:
        entries = shapes.rfa_fields(data)
        # Checked before anything is written: on SQLite a draft made inside a SAVEPOINT
        # outlives a later rollback, so a refused submission must not get that far.
        errors = validate(entries.cleaned(), mandate, for_submission=True)
        if errors:
            raise ValidationFailed(errors)
        rfa = create_draft(db(), me, entries, mandate)
        db().flush()
        submit(db(), rfa, me, entries, mandate, expected_version=rfa.version)
    except RequestError as exc:
        return _refused(exc)
    db().commit()
    response = jsonify(shapes.rfa_detail(rfa))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_request", code=rfa.code)
    return response


def _refused(exc: RequestError) -> Response:
    """A refused change, rolled back: 422 with the fields' errors, or 409 with the reason."""
    db().rollback()
    if isinstance(exc, ValidationFailed):
        return invalid(exc.errors)
    return conflict(str(exc))


@bp.get("/requests")
@requires("api.rfa.read")
def list_requests() -> Response:
    """The authority's requests, most recently changed first, 50 a page."""
    page = _page()
    if page is None:
        return invalid({"page": [f"The page must be a whole number from 1 to {MAX_PAGE}."]})
    found = paginate(
        db(),
        scoped(Rfa, acting_user()).order_by(Rfa.updated_at.desc(), Rfa.id.desc()),
        page,
        PAGE_SIZE,
    )
    return jsonify(
        {
            "items": [shapes.rfa_summary(rfa) for rfa in found.items],
            "page": found.page,
            "pages": found.pages,
            "total": found.total,
            "size": found.size,
        }
    )


@bp.get("/requests/<code>")
@requires("api.rfa.read")
def get_request(code: str) -> Response:
    return jsonify(shapes.rfa_detail(_rfa(code)))


@bp.get("/requests/<code>/messages")
@requires("api.rfa.read")
def list_messages(code: str) -> Response:
    rfa = _rfa(code)
    return jsonify({"items": [shapes.message(m, u) for m, u in thread(db(), rfa)]})


@bp.post("/requests/<code>/messages")
@requires("api.rfa.write")
def post_request_message(code: str) -> Response:
    """Write in the clarification thread; ``return_to_review`` answers a clarification
    request and sends the request back to review."""
    rfa = _rfa(code)
    data = _json_object()
    if data is None:
        return bad_json()
    body = data.get("body")
    answer = data.get("return_to_review", False)
    errors: dict[str, list[str]] = {}
    if not isinstance(body, str):
        errors["body"] = ["Write a message (a string)."]
    if not isinstance(answer, bool):
        errors["return_to_review"] = ["This must be true or false."]
    for name in sorted(set(data) - {"body", "return_to_review"}):
        errors[name[:100]] = ["This field is not part of a message."]
    if errors:
        return invalid(errors)
    try:
        posted = post_message(db(), rfa, acting_user(), str(body), return_to_review=bool(answer))
    except RequestError as exc:
        return _refused(exc)
    db().commit()
    response = jsonify(shapes.message(posted, None))
    response.status_code = 201
    return response
