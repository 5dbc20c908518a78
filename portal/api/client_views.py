"""Admin pages for the JSON API's OAuth clients: the list, registering a client for an
authority with scopes (its secret is shown once, on the answer to the form, and never
stored), and revoking one (its tokens stop working at once).

Thin views over :mod:`portal.api.clients`; a :class:`~portal.api.clients.ClientRefused`
becomes a message on the page with what was typed kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.api.clients import API_SCOPES, ClientRefused, clients, register_client, revoke_client
from portal.api.models import OAuthClient
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db
from portal.pages.forms import TokenForm
from portal.registry.models import Authority

bp = Blueprint("api_clients", __name__, url_prefix="/admin/api-clients")


def _render_index(
    *, error: str | None = None, typed: dict[str, Any] | None = None, status: int = 200
) -> tuple[str, int]:
    authorities = list(db().scalars(scoped(Authority, signed_in_user()).order_by(Authority.name)))
    page = render_template(
        "api/clients/index.html",
        rows=clients(db()),
        authorities=authorities,
        scopes=API_SCOPES,
        error=error,
        typed=typed or {"scopes": []},
    )
    return page, status


@bp.get("")
@requires("admin.api_clients.view")
def index() -> tuple[str, int]:
    return _render_index()


@bp.post("")
@requires("admin.api_clients.manage")
def register() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    typed = {
        "authority": request.form.get("authority", ""),
        "name": request.form.get("name", ""),
        "scopes": request.form.getlist("scopes"),
    }
    if not TokenForm().validate_on_submit():
        return _render_index(error="The form has expired; nothing was registered.", status=400)
    code = str(typed["authority"]).strip()
    authority = (
        db().scalar(scoped(Authority, signed_in_user()).where(Authority.code == code))
        if code
        else None
    )
    if authority is None:
        return _render_index(
            error="Choose the authority the client acts for.", typed=typed, status=400
        )
    try:
        created = register_client(
            db(), authority, str(typed["name"]), list(typed["scopes"]), by=signed_in_user()
        )
    except ClientRefused as exc:
        db().rollback()
        return _render_index(error=str(exc), typed=typed, status=400)
    db().commit()
    # The secret is on this answer only: not flashed (the session would carry it), not stored.
    page = render_template(
        "api/clients/created.html", client=created.client, secret=created.secret,
        authority=authority, scopes=API_SCOPES,
    )  # fmt: skip
    return page, 201, {"Cache-Control": "no-store"}


@bp.post("/<int:client_pk>/revoke")
@requires("admin.api_clients.manage")
def revoke(client_pk: int) -> BaseResponse | tuple[str, int]:
    client = get_scoped_or_404(db(), OAuthClient, signed_in_user(), id=client_pk)
    if not TokenForm().validate_on_submit():
        return _render_index(error="The form has expired; nothing was changed.", status=400)
    try:
        revoked = revoke_client(db(), client, by=signed_in_user())
    except ClientRefused as exc:
        db().rollback()
        return _render_index(error=str(exc), status=400)
    db().commit()
    flash(
        f"Client {client.client_id} is revoked; {revoked} live access token(s) stopped working.",
        "success",
    )
    return redirect(url_for("api_clients.index"), 303)
