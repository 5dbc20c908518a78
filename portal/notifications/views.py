"""The notification inbox of every signed-in user, and the unread badge in the header.

Registering the blueprint also hooks the mailer (portal.notifications.mailer) onto the app's session
factory, so queued notification e-mail goes out after each commit.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import CurrentUser, signed_in_user
from portal.authz.permissions import requires
from portal.db import db
from portal.notifications import mailer
from portal.notifications.service import (
    NotificationNotFound,
    changed_here,
    inbox,
    mark_all_read,
    mark_read,
    unread_count,
)
from portal.state import portal_state

bp = Blueprint("notifications", __name__, url_prefix="/inbox")


@bp.record_once
def _install_mailer(state: BlueprintSetupState) -> None:
    portal = portal_state(cast(Flask, state.app))
    mailer.install(portal.sessions, portal.settings)


@bp.app_context_processor
def _badge() -> dict[str, Any]:
    def unread_notifications() -> int:
        """Counted with the sign-in session (one query fewer a page), again when this
        request changed notifications."""
        if not current_user.is_authenticated:
            return 0
        session = db()
        if changed_here(session):
            return unread_count(session, signed_in_user())
        return cast(CurrentUser, current_user).unread

    return {"unread_notifications": unread_notifications}


@bp.get("")
@requires("notifications.view")
def index() -> str:
    return render_template("notifications/index.html", notifications=inbox(db(), signed_in_user()))


@bp.post("/<int:notification_id>/read")
@requires("notifications.read")
def read(notification_id: int) -> BaseResponse:
    session = db()
    try:
        found = mark_read(session, signed_in_user(), notification_id)
    except NotificationNotFound:
        abort(404)
    session.commit()
    if found.link and found.link.startswith("/") and not found.link.startswith("//"):
        return redirect(found.link, code=303)
    return redirect(url_for("notifications.index"), code=303)


@bp.post("/read-all")
@requires("notifications.read")
def read_all() -> BaseResponse:
    session = db()
    count = mark_all_read(session, signed_in_user())
    session.commit()
    flash(
        ngettext("%(num)s notification marked read.", "%(num)s notifications marked read.", count),
        "success",
    )
    return redirect(url_for("notifications.index"), code=303)
