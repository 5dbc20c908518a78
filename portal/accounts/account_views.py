"""The signed-in user's own account: who they are, their sessions, password and
recovery codes. The checks live in portal.accounts.credentials."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user
from sqlalchemy import select

from portal.accounts import credentials, recovery
from portal.accounts.login_manager import CurrentUser
from portal.accounts.models import ROLE_LABELS, LoginSession, User
from portal.accounts.seed_errors import handle_seed_errors
from portal.accounts.sessions import IDLE_TIMEOUT, load_session, start_session
from portal.authz.permissions import requires
from portal.db import db, utcnow
from portal.pages.i18n import LOCALES, Translated, refresh_language, translate
from portal.state import portal_state

bp = Blueprint("account", __name__, url_prefix="/account")
handle_seed_errors(bp)  # a TOTP seed that does not open: 503, not 500

MAX_FIELD_LENGTH = 4096


def _field(name: str) -> str:
    return request.form.get(name, "")[:MAX_FIELD_LENGTH]


def _organisation(user: User) -> str:
    if user.authority is not None:
        return f"{user.authority.name} ({user.authority.code})"
    if user.provider is not None:
        return f"{user.provider.name} ({user.provider.code})"
    return "The Mechanism"


def _open_sessions(user: User) -> list[LoginSession]:
    now = utcnow()
    rows = db().scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user.id,
            LoginSession.ended_at.is_(None),
            LoginSession.epoch == user.session_epoch,
            LoginSession.expires_at > now,
            LoginSession.last_seen_at > now - IDLE_TIMEOUT,
        )
        .order_by(LoginSession.created_at.desc())
    )
    return list(rows)


def _account_page(
    *,
    password_error: str | None = None,
    codes_error: str | None = None,
    language_error: str | None = None,
    status: int = 200,
) -> Any:
    user: User = current_user.user
    return (
        render_template(
            "accounts/account/index.html",
            user=user,
            role_label=Translated(ROLE_LABELS).get(user.role, user.role),
            organisation=_organisation(user),
            sessions=_open_sessions(user),
            current_session_id=current_user.session_id,
            codes_remaining=recovery.remaining_codes(db(), user),
            password_error=password_error,
            codes_error=codes_error,
            language_error=language_error,
            locales=LOCALES,
        ),
        status,
    )


@bp.get("")
@requires("account.view")
def view() -> Any:
    return _account_page()


@bp.post("/password")
@requires("account.change_password")
def change_password() -> Any:
    """Change the password; every session ends and this browser gets a fresh one."""
    user: User = current_user.user
    try:
        credentials.change_password(
            db(),
            user,
            current=_field("current_password"),
            new=_field("new_password"),
            confirm=_field("confirm_password"),
            profile=portal_state().settings.hash_profile,
            remote_addr=request.remote_addr,
        )
    except credentials.CredentialChangeRefused as refused:
        db().commit()  # a wrong current password is recorded towards the lockout
        return _account_page(password_error=translate(refused.message), status=400)
    db().commit()
    session.clear()
    token = start_session(
        db(), user, remote_addr=request.remote_addr, user_agent=request.headers.get("User-Agent")
    )
    db().commit()
    active = load_session(db(), token)
    if active is None:  # pragma: no cover - the session was opened a moment ago
        return redirect(url_for("auth.login"))
    login_user(CurrentUser(active), remember=False)
    flash(
        gettext("Your password was changed. Every other session of your account has ended."),
        "success",
    )
    return redirect(url_for("account.view"), 303)


@bp.post("/language")
@requires("account.language")
def change_language() -> Any:
    """The language of the user's pages: one of the portal's locales, or the browser's."""
    choice = _field("locale")
    if choice and choice not in LOCALES:
        return _account_page(
            language_error=gettext("Choose one of the languages listed."), status=400
        )
    user: User = current_user.user
    user.locale = choice or None
    db().commit()
    refresh_language()  # this request's messages in the new language
    flash(gettext("Your language setting was saved."), "success")
    return redirect(url_for("account.view"), 303)


@bp.post("/recovery-codes")
@requires("account.recovery_codes")
def regenerate_recovery_codes() -> Any:
    """New recovery codes (the old unused ones stop working), shown on this page only."""
    user: User = current_user.user
    try:
        codes = credentials.regenerate_recovery_codes(
            db(), user, code=_field("code"), remote_addr=request.remote_addr
        )
    except credentials.CredentialChangeRefused as refused:
        db().commit()
        return _account_page(codes_error=translate(refused.message), status=400)
    db().commit()
    return render_template("accounts/account/recovery_codes.html", codes=codes)
