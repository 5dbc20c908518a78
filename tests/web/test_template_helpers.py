"""The template helpers registered once for the whole app (portal.pages.templating) and the two
sets of role names over HTTP: the user-administration pages say "Provider", every other page
(the account link, the dashboard) says "Information provider"."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

from flask import Flask
from sqlalchemy.orm import Session

from portal.notifications.models import Notification
from tests.support import factories as make
from tests.support.auth import Credentials, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures app, client, db


MOMENT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _page(app: Flask, creds: Credentials, path: str) -> str:
    browser = app.test_client()
    login(browser, creds)
    response = browser.get(path)
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def test_admin_pages_name_roles_shortly_and_the_rest_in_full(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    provider = make_user(db, "provider")

    users = _page(app, admin, "/admin/users?role=provider")
    assert '<option value="provider" selected>Provider</option>' in users
    assert "<td>Provider</td>" in users  # the provider's row
    assert "Information provider" not in users
    assert "(Administrator)" in users  # the account link, from the app-wide helpers
    detail = _page(app, admin, f"/admin/users/{provider.user_id}")
    assert "<dt>Role</dt><dd>Provider</dd>" in detail

    dashboard = _page(app, provider, "/")
    assert "(Information provider)" in dashboard  # the account link


def test_app_wide_helpers_reach_pages_of_every_blueprint(app: Flask, db: Session) -> None:
    """``when`` and the assessment labels come from the one app-wide registration: on a page of
    a blueprint with no template helpers of its own (notifications) and on one with labels of
    its own (eligibility)."""
    officer = make_user(db, "legal_officer")
    make.assessments(db, make.authority(db, "NWU-NL"), findings="not_satisfied")
    db.add(Notification(user_id=officer.user_id, subject="A test notice", created_at=MOMENT))
    db.commit()

    notifications = _page(app, officer, "/inbox")
    assert '<time datetime="2026-03-02T12:00:00+00:00">2026-03-02 12:00 UTC</time>' in notifications
    assessments = _page(app, officer, "/eligibility/assessments")
    assert '<th scope="row">No death penalty</th>' in assessments
    assert "<td>Not satisfied</td>" in assessments
    assert "(Legal officer)" in assessments
