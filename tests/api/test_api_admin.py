"""The admin's API client pages over real HTTP, on both databases: register a client for an
authority with scopes (the secret is shown once and works; only its hash is stored), refusals
that register nothing, the list, revocation (its tokens stop working), audit, CSRF."""

from __future__ import annotations

import hashlib
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.api.models import OAuthClient
from portal.audit import AuditEvent
from tests.support.api import TOKEN_URL, bearer
from tests.support.auth import csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]

_SECRET = re.compile(r'<code class="secret">([^<]+)</code>')
_CLIENT_ID = re.compile(r"<dt>Client id</dt><dd><code>([^<]+)</code>")


def admin_browser(app: Flask, db: Session) -> FlaskClient:
    make_user(db, "requester", authority_code="AUTH-A")  # the authority exists
    browser = app.test_client()
    login(browser, make_user(db, "admin"))
    return browser


def register(browser: FlaskClient, **form: object) -> tuple[int, str]:
    token = csrf_token(browser.get("/admin/api-clients"))
    response = browser.post("/admin/api-clients", data={"csrf_token": token, **form})
    return response.status_code, response.get_data(as_text=True)


def test_register_shows_the_secret_once_and_it_works(
    app: Flask, db: Session, client: FlaskClient
) -> None:
    browser = admin_browser(app, db)
    status, page = register(
        browser, authority="AUTH-A", name="Case system", scopes=["rfa:read", "packages:read"]
    )
    assert status == 201
    secret_found, id_found = _SECRET.search(page), _CLIENT_ID.search(page)
    assert secret_found is not None and id_found is not None
    secret, client_id = secret_found.group(1), id_found.group(1)
    row = db.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    assert row is not None and row.scopes == ["rfa:read", "packages:read"]
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    listing = browser.get("/admin/api-clients").get_data(as_text=True)
    assert client_id in listing and secret not in listing
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "api_client.register"))
    assert event is not None and secret not in event.details
    issued = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert issued.status_code == 200
    token = issued.get_json()["access_token"]
    assert client.get("/api/v1/requests", headers=bearer(token)).status_code == 200

    revoke_page = browser.get("/admin/api-clients")
    done = browser.post(
        f"/admin/api-clients/{row.id}/revoke", data={"csrf_token": csrf_token(revoke_page)}
    )
    assert done.status_code == 303
    assert "1 live access token(s) stopped working" in browser.get("/admin/api-clients").get_data(
        as_text=True
    )
    assert client.get("/api/v1/requests", headers=bearer(token)).status_code == 401
    again = browser.post(
        f"/admin/api-clients/{row.id}/revoke",
        data={"csrf_token": csrf_token(browser.get("/admin/api-clients"))},
    )
    assert again.status_code == 400 and "already revoked" in again.get_data(as_text=True)


def test_refusals_register_nothing(app: Flask, db: Session) -> None:
    browser = admin_browser(app, db)
    cases = [
        ({"authority": "", "name": "X", "scopes": ["rfa:read"]}, "Choose the authority"),
        ({"authority": "AUTH-A", "name": " ", "scopes": ["rfa:read"]}, "Name the client"),
        ({"authority": "AUTH-A", "name": "X", "scopes": []}, "Choose at least one scope"),
        ({"authority": "AUTH-A", "name": "X", "scopes": ["admin"]}, "Unknown scope: admin"),
    ]
    for form, message in cases:
        status, page = register(browser, **form)
        assert status == 400 and message in page, form
    no_csrf = browser.post(
        "/admin/api-clients", data={"authority": "AUTH-A", "name": "X", "scopes": ["rfa:read"]}
    )
    assert no_csrf.status_code == 400
    assert db.scalar(select(func.count()).select_from(OAuthClient)) == 0


def test_only_admins_manage_clients(app: Flask, db: Session) -> None:
    officer = app.test_client()
    login(officer, make_user(db, "legal_officer"))
    assert officer.get("/admin/api-clients").status_code == 403
    token = csrf_token(officer.get("/"))
    refused = officer.post(
        "/admin/api-clients",
        data={"csrf_token": token, "authority": "AUTH-A", "name": "X", "scopes": ["rfa:read"]},
    )
    assert refused.status_code == 403
    assert db.scalar(select(func.count()).select_from(OAuthClient)) == 0
