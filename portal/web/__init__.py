"""The page shell: wires every domain's blueprints into the app, with CSRF protection,
security headers, sign-in, the permission guard, rate limits and error pages.

Domains never import this package; it imports them.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from portal.db import close_request_session
from portal.pages.http_methods import drop_automatic_options, init_methods
from portal.pages.i18n import init_i18n
from portal.web.burmese_input import init_burmese_input


def init_web(app: Flask) -> None:
    from portal.accounts import account_views, admin_views, audit_views, enrol_views, signin_views
    from portal.accounts.login_manager import init_login, unauthenticated
    from portal.api import client_views, init_api
    from portal.authz.headers import init_headers
    from portal.authz.limiter import init_limiter
    from portal.authz.permissions import install_guard
    from portal.consent import views as consent_views
    from portal.eligibility import views as eligibility_views
    from portal.notifications import views as notification_views
    from portal.packages import officer_views, preview_views, recipient_views
    from portal.pages.templating import template_helpers
    from portal.redaction import review_views
    from portal.registry import key_views, register_views, signing_key_views
    from portal.reports import views as report_views
    from portal.rfa import officer_views as triage_views
    from portal.rfa import requester_views
    from portal.state import portal_state
    from portal.transparency import views as transparency_views
    from portal.web import dashboard, errors, public

    init_methods(app)  # first: every later hook sees a HEAD as the GET it is
    CSRFProtect(app)
    init_i18n(app)
    init_burmese_input(app)  # after CSRFProtect's check, before any view reads the form
    app.teardown_appcontext(close_request_session)
    init_headers(app)
    init_login(app)
    install_guard(app, unauthenticated)
    app.context_processor(template_helpers)
    for blueprint in (
        public.bp,
        signin_views.bp,
        account_views.bp,
        dashboard.bp,
        admin_views.bp,
        audit_views.bp,
        enrol_views.bp,
        eligibility_views.bp,
        consent_views.bp,
        requester_views.bp,
        notification_views.bp,
        triage_views.bp,
        report_views.bp,
        recipient_views.bp,
        key_views.bp,
        register_views.bp,
        signing_key_views.bp,
        officer_views.bp,
        review_views.bp,
        preview_views.bp,
    ):
        app.register_blueprint(blueprint)
    init_limiter(app, portal_state(app).settings)
    transparency_views.register(app)  # public, rate-limited per address
    app.register_blueprint(client_views.bp)
    init_api(app)
    errors.register(app)
    drop_automatic_options(app)
