"""Flask-Login bound to server-side sessions (portal.accounts.sessions)."""

from __future__ import annotations

from typing import cast

from flask import Flask, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.wrappers import Response

from portal.accounts.models import User
from portal.accounts.sessions import ActiveSession, load_session
from portal.db import db


class CurrentUser(UserMixin):  # type: ignore[misc]
    """The signed-in user of this request. ``get_id`` is the session token, not the user
    id, so ending the session server-side signs the browser out."""

    def __init__(self, active: ActiveSession) -> None:
        self.user: User = active.user
        self.token = active.token
        self.session_id = active.session.id
        self.unread = active.unread

    def get_id(self) -> str:
        return self.token

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def authority_id(self) -> int | None:
        return self.user.authority_id

    @property
    def provider_id(self) -> int | None:
        return self.user.provider_id

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def display_name(self) -> str:
        return self.user.display_name


def _load(token: str) -> CurrentUser | None:
    active = load_session(db(), token)
    return CurrentUser(active) if active is not None else None


def _unauthorized() -> Response:
    from portal.pages.errors import error_response, wants_json

    if wants_json():
        return error_response(401)
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def init_login(app: Flask) -> LoginManager:
    manager = LoginManager()
    manager.init_app(app)
    manager.session_protection = None  # the server-side session does this job
    manager.user_loader(_load)
    manager.unauthorized_handler(_unauthorized)
    return manager


def unauthenticated() -> Response:
    """The response for a visitor who must sign in first (used by the authz guard)."""
    return _unauthorized()


def signed_in_user() -> User:
    """The user of this request's session; for views behind ``@requires`` (signed in)."""
    return cast(CurrentUser, current_user).user
