"""The Sharing Portal: a Flask application built by ``create_app``.

Importing the package imports nothing else: Flask, SQLAlchemy and the app's modules are
imported inside ``create_app``, so that ``portal.verify`` (the recipient's offline verifier)
runs without them.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from portal.config import Settings

__all__ = ["create_app", "create_web_app"]


def create_web_app() -> Flask:
    """The app that serves requests (``wsgi.py``, ``portal run``): settings from ``PORTAL_*``
    variables without the signing key and its passphrase. Signatures are made by the worker
    process (``portal worker``, or the child ``portal run`` starts), never by the web process.
    At most ``PORTAL_COMPUTE_SLOTS`` of its requests run at once
    (:mod:`portal.web.compute_slots`)."""
    from portal.config import Settings
    from portal.web.compute_slots import ComputeSlots

    settings = Settings.from_env().with_overrides(
        signing_key_file=None, signing_passphrase_file=None
    )
    app = create_app(settings)
    if settings.compute_slots:
        app.wsgi_app = ComputeSlots(app.wsgi_app, settings.compute_slots)  # type: ignore[method-assign]
    return app


def create_app(config: Settings | None = None) -> Flask:
    """Build the application from ``config`` (or from ``PORTAL_*`` environment variables).

    Refuses to start without a secret key unless running in test mode.
    """
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from portal.config import REPO_ROOT, Settings, read_secret_key, refuse_shared_instance
    from portal.state import PortalState, build_state

    settings = config if config is not None else Settings.from_env()
    if not settings.testing:
        refuse_shared_instance(settings)
    app = Flask(
        __name__,
        template_folder=str(settings.templates_dir),
        static_folder=str(REPO_ROOT / "portal" / "static"),
        instance_path=str(settings.instance_dir),
    )
    app.config.update(
        SECRET_KEY=secrets.token_hex(32) if settings.testing else read_secret_key(settings),
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="portal_session",
        WTF_CSRF_TIME_LIMIT=None,
        PORTAL_SETTINGS=settings,
        API_RATE_LIMIT=settings.api_rate_limit,
        API_TOKEN_RATE_LIMIT=settings.api_token_rate_limit,
    )
    app.config.update(settings.extra)
    state: PortalState = build_state(settings)
    app.extensions["portal"] = state
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from portal.web import init_web

    init_web(app)
    return app
