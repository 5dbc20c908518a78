"""Web layer: blueprints by audience, the request-scoped session, error pages."""

from __future__ import annotations

from flask import Flask, g
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from portal.state import portal_state


def db() -> Session:
    """The database session of the current request (opened on first use)."""
    if "db_session" not in g:
        g.db_session = portal_state().sessions()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_web(app: Flask) -> None:
    CSRFProtect(app)
    app.teardown_appcontext(_close_session)

    from portal.security.authz import install_guard
    from portal.security.headers import init_headers
    from portal.web import errors, public
    from portal.web.login_manager import init_login, unauthenticated

    init_headers(app)
    init_login(app)
    install_guard(app, unauthenticated)
    app.register_blueprint(public.bp)

    from portal.security.limiter import init_limiter
    from portal.state import portal_state as _state
    from portal.web import account, auth, dashboard

    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(dashboard.bp)

    from portal.web import admin, enrol

    app.register_blueprint(admin.bp)
    app.register_blueprint(enrol.bp)
    from portal.web import eligibility

    app.register_blueprint(eligibility.bp)
    from portal.web import consent

    app.register_blueprint(consent.bp)
    from portal.web import requests

    app.register_blueprint(requests.bp)
    from portal.web import notifications

    app.register_blueprint(notifications.bp)
    from portal.web import triage

    app.register_blueprint(triage.bp)
    from portal.web import reports

    app.register_blueprint(reports.bp)
    from portal.web import recipient

    app.register_blueprint(recipient.bp)
    from portal.web import keys, packages

    app.register_blueprint(keys.bp)
    app.register_blueprint(packages.bp)
    init_limiter(app, _state(app).settings)
    from portal.api import init_api
    from portal.web import api_clients

    app.register_blueprint(api_clients.bp)
    init_api(app)
    errors.register(app)
