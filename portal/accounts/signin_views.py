"""Sign in (password, then TOTP or recovery code) and sign out.

The checks live in portal.accounts.login; these views carry the step-1 marker between
the two forms in the signed Flask session, turn every failure into one generic message
with one status code, and replace the whole Flask session at sign-in (no fixation).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from portal import audit
from portal.accounts import login as signin
from portal.accounts.login_manager import CurrentUser
from portal.accounts.seed_errors import handle_seed_errors
from portal.accounts.sessions import end_all_sessions, end_session, load_session
from portal.authz.permissions import public, requires
from portal.db import db, utcnow
from portal.state import portal_state

bp = Blueprint("auth", __name__)
handle_seed_errors(bp)  # a TOTP seed that does not open: 503, not 500

PENDING_KEY = "pending_login"
NEXT_KEY = "login_next"
#: The status of every failed sign-in step, whatever failed.
FAILURE_STATUS = 401
MAX_FIELD_LENGTH = 4096
MAX_NEXT_LENGTH = 2000


def is_local_path(target: str) -> bool:
    """True for a path on this site (``/requests?x=1``); false for anything a browser
    could take to another site: ``//host``, ``/\\host``, schemes, control characters
    or whitespace (browsers drop tabs and newlines, so ``/\t/host`` is ``//host``)."""
    if not target.startswith("/") or len(target) > MAX_NEXT_LENGTH:
        return False
    if target.startswith(("//", "/\\")) or "\\" in target:
        return False
    return not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: ``target`` when it is a local path, else home."""
    if target and is_local_path(target):
        return target
    return url_for("dashboard.index")


def _field(name: str) -> str:
    return request.form.get(name, "")[:MAX_FIELD_LENGTH]


def _login_page(
    *, next_target: str = "", error: str | None = None, email: str = "", status: int = 200
) -> Any:
    return (
        render_template(
            "accounts/signin/login.html", next_target=next_target, error=error, email=email
        ),
        status,
    )


def _failure(*, email: str = "", next_target: str = "") -> Any:
    """The answer to a failed step that cannot be retried: back to the first form with
    the generic message, the e-mail kept (the visitor typed it; it reveals nothing)."""
    session.pop(PENDING_KEY, None)
    session.pop(NEXT_KEY, None)
    return _login_page(
        error=gettext(signin.GENERIC_FAILURE),
        email=email,
        next_target=next_target,
        status=FAILURE_STATUS,
    )


@bp.route("/login", methods=["GET", "POST"])
@public("the sign-in form must be reachable before signing in")
def login() -> Any:
    if request.method == "GET":
        target = request.args.get("next", "")
        if current_user.is_authenticated:
            return redirect(safe_next(target))
        return _login_page(next_target=target if is_local_path(target) else "")
    session.pop(PENDING_KEY, None)
    try:
        pending = signin.check_password(
            db(),
            _field("email"),
            _field("password"),
            profile=portal_state().settings.hash_profile,
            remote_addr=request.remote_addr,
        )
    except signin.LoginFailed:
        db().commit()
        target = _field("next")
        return _failure(
            email=_field("email")[: signin.MAX_EMAIL_LENGTH],
            next_target=target if is_local_path(target) else "",
        )
    db().commit()
    session[PENDING_KEY] = pending.to_session()
    target = _field("next")
    session[NEXT_KEY] = target if is_local_path(target) else ""
    return redirect(url_for("auth.login_totp"), 303)


@bp.route("/login/code", methods=["GET", "POST"])
@public("second sign-in step; it checks the marker left by the first")
def login_totp() -> Any:
    pending = signin.PendingLogin.from_session(session.get(PENDING_KEY))
    if request.method == "GET":
        if pending is None or not pending.is_current(utcnow()):
            return redirect(url_for("auth.login"))
        return render_template("accounts/signin/code.html")
    try:
        verified = signin.check_second_factor(
            db(), pending, _field("code"), remote_addr=request.remote_addr
        )
    except signin.LoginFailed as failed:
        db().commit()
        if failed.retry:  # a mistyped code: stay on this step, the marker stays valid
            page = render_template("accounts/signin/code.html", error=gettext(failed.message))
            return page, FAILURE_STATUS
        return _failure()
    target = safe_next(session.get(NEXT_KEY))
    previous = current_user.token if current_user.is_authenticated else None
    session.clear()  # a new session identity: nothing from before sign-in survives
    token = signin.complete_login(
        db(),
        verified,
        remote_addr=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    if previous is not None:
        end_session(db(), previous, "replaced")
    db().commit()
    active = load_session(db(), token)
    if active is None:  # pragma: no cover - the session was opened a moment ago
        return _failure()
    login_user(CurrentUser(active), remember=False)
    if verified.method == "recovery_code":
        flash(
            gettext(
                "You signed in with a recovery code; it cannot be used again. "
                "Check how many you have left on your account page."
            ),
            "warning",
        )
    return redirect(target, 303)


@bp.post("/logout")
@requires("account.logout")
def logout() -> Response:
    """Sign out everywhere: every session of the user ends, not just this browser's."""
    user = current_user.user
    ended = end_all_sessions(db(), user, "logout")
    audit.record(
        db(), audit.actor_label(user), "auth.logout", f"user:{user.id}", {"sessions_ended": ended}
    )
    db().commit()
    logout_user()
    session.clear()
    flash(gettext("You have signed out."), "success")
    return redirect(url_for("auth.login"), 303)
