"""OAuth 2.0 for the JSON API over real HTTP (Flask test client), on both databases: the
client-credentials grant (HTTP Basic and form), refusals (wrong secret, unknown or revoked
client, unknown or ungranted scope), tokens stored hashed, expiry, revocation (RFC 7009
and revoking the client), scopes enforced by the authz guard, rate limits, and the one
error shape (application/problem+json, never HTML)."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.api.blueprint import MAX_BODY_BYTES
from portal.api.clients import revoke_client
from portal.api.models import OAuthClient, OAuthToken
from portal.audit import AuditEvent
from portal.db import utcnow
from tests.support.api import TOKEN_URL, ApiClient, api_client, bearer, token_for
from tests.support.auth import make_user

pytest_plugins = ["tests.support.auth"]

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def is_problem(response: TestResponse, status: int) -> dict[str, object]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert isinstance(body, dict)
    assert set(body) >= PROBLEM_KEYS and body["status"] == status
    assert "<html" not in response.get_data(as_text=True).lower()
    return body


def ask(
    client: FlaskClient, api: ApiClient, secret: str | None = None, **form: str
) -> TestResponse:
    data = {"grant_type": "client_credentials", **form}
    return client.post(TOKEN_URL, data=data, auth=(api.client_id, secret or api.secret))


def test_token_by_basic_and_by_form_is_short_lived_and_stored_hashed(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app, scopes=["rfa:read", "packages:read"])
    response = ask(client, api)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    issued = response.get_json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 900
    assert issued["scope"] == "rfa:read packages:read"
    by_form = client.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": api.client_id,
            "client_secret": api.secret,
            "scope": "rfa:read",
        },
    )
    assert by_form.status_code == 200 and by_form.get_json()["scope"] == "rfa:read"
    rows = db.scalars(select(OAuthToken).order_by(OAuthToken.id)).all()
    assert [r.token_sha256 for r in rows] == [
        hashlib.sha256(t.encode()).hexdigest()
        for t in (issued["access_token"], by_form.get_json()["access_token"])
    ]
    for row in rows:
        assert (row.expires_at - row.issued_at) == timedelta(minutes=15)
    secret_row = db.scalar(select(OAuthClient.secret_sha256).where(OAuthClient.id == api.pk))
    assert secret_row == hashlib.sha256(api.secret.encode()).hexdigest()
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_client.token_issued"))
    rendered = " ".join(f"{e.actor} {e.details}" for e in events)
    assert f"api:{api.client_id}" in rendered
    assert issued["access_token"] not in rendered and api.secret not in rendered


def test_wrong_secret_unknown_client_and_revoked_client_are_refused_alike(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app)
    wrong = is_problem(ask(client, api, secret="not-the-secret"), 401)
    assert wrong["error"] == "invalid_client"
    unknown = client.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("spc_nobody", api.secret)
    )
    assert is_problem(unknown, 401)["detail"] == wrong["detail"]
    admin = db.scalar(select(User).where(User.role == "admin"))
    row = db.get(OAuthClient, api.pk)
    assert admin is not None and row is not None
    revoke_client(db, row, by=admin)
    db.commit()
    assert is_problem(ask(client, api), 401)["detail"] == wrong["detail"]
    assert db.scalar(select(OAuthToken.id)) is None


def test_unknown_scope_ungranted_scope_and_other_grants_are_refused(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app, scopes=["rfa:read"])
    assert is_problem(ask(client, api, scope="admin"), 400)["error"] == "invalid_scope"
    ungranted = is_problem(ask(client, api, scope="rfa:read packages:read"), 400)
    assert ungranted["error"] == "invalid_scope" and "packages:read" in str(ungranted["detail"])
    password = client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "x", "password": "y"},
        auth=(api.client_id, api.secret),
    )
    assert is_problem(password, 400)["error"] == "unsupported_grant_type"
    assert db.scalar(select(OAuthToken.id)) is None


def test_expired_token_is_401(app: Flask, client: FlaskClient, db: Session) -> None:
    api = api_client(app)
    token = token_for(client, api)
    assert client.get("/api/v1/requests", headers=bearer(token)).status_code == 200
    db.execute(update(OAuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    refused = client.get("/api/v1/requests", headers=bearer(token))
    assert is_problem(refused, 401)["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_missing_and_made_up_tokens_are_401(app: Flask, client: FlaskClient) -> None:
    assert is_problem(client.get("/api/v1/packages"), 401)["error"] == "missing_authorization"
    made_up = client.get("/api/v1/packages", headers=bearer("x" * 43))
    assert is_problem(made_up, 401)["error"] == "invalid_token"
    basic = client.get(
        "/api/v1/packages", headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
    )
    is_problem(basic, 401)


def test_revocation_endpoint_revokes_only_the_clients_own_token(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app)
    other = api_client(app, authority_code="AUTH-B")
    token = token_for(client, api)
    # Another client cannot revoke it (RFC 7009: the token was not issued to it).
    foreign = client.post(
        "/api/v1/oauth/revoke", data={"token": token}, auth=(other.client_id, other.secret)
    )
    is_problem(foreign, 400)
    assert client.get("/api/v1/requests", headers=bearer(token)).status_code == 200
    done = client.post(
        "/api/v1/oauth/revoke", data={"token": token}, auth=(api.client_id, api.secret)
    )
    assert done.status_code == 200
    assert is_problem(client.get("/api/v1/requests", headers=bearer(token)), 401)
    # Unknown tokens: nothing to do, still 200 (RFC 7009 section 2.2).
    again = client.post(
        "/api/v1/oauth/revoke", data={"token": "nope"}, auth=(api.client_id, api.secret)
    )
    assert again.status_code == 200
    unauthenticated = client.post("/api/v1/oauth/revoke", data={"token": token})
    assert is_problem(unauthenticated, 401)["error"] == "invalid_client"


def test_revoking_the_client_on_the_admin_side_kills_its_tokens(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app)
    token = token_for(client, api)
    admin = db.scalar(select(User).where(User.role == "admin"))
    row = db.get(OAuthClient, api.pk)
    assert admin is not None and row is not None
    assert revoke_client(db, row, by=admin) == 1
    db.commit()
    assert is_problem(client.get("/api/v1/requests", headers=bearer(token)), 401)


def test_missing_scope_is_403_and_names_the_scope(app: Flask, client: FlaskClient) -> None:
    api = api_client(app, scopes=["rfa:read"])
    token = token_for(client, api)
    assert client.get("/api/v1/requests", headers=bearer(token)).status_code == 200
    refused = client.get("/api/v1/packages", headers=bearer(token))
    body = is_problem(refused, 403)
    assert body["scope"] == "packages:read"
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    write = client.post("/api/v1/requests", json={}, headers=bearer(token))
    assert is_problem(write, 403)["scope"] == "rfa:write"


def test_a_signed_in_browser_is_not_an_api_client(app: Flask, db: Session) -> None:
    from tests.support.auth import login

    creds = make_user(db, "requester", authority_code="AUTH-A")
    browser = app.test_client()
    login(browser, creds)
    assert browser.get("/requests").status_code == 200
    is_problem(browser.get("/api/v1/requests"), 401)


def test_errors_are_problem_json_never_html(app: Flask, client: FlaskClient) -> None:
    api = api_client(app)
    token = token_for(client, api)
    is_problem(client.get("/api/v1/no-such-thing", headers=bearer(token)), 404)
    is_problem(client.get("/api/v1/requests/RFA-2099-9999", headers=bearer(token)), 404)
    not_allowed = client.delete("/api/v1/requests", headers=bearer(token))
    is_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]
    is_problem(client.get("/api/v1/oauth/token"), 405)
    too_big = client.post(
        "/api/v1/requests",
        data=b"{" + b" " * MAX_BODY_BYTES + b"}",
        content_type="application/json",
        headers=bearer(token),
    )
    is_problem(too_big, 413)
    is_problem(
        client.post("/api/v1/requests", data="[1", content_type="application/json",
                    headers=bearer(token)),
        400,
    )  # fmt: skip


def test_api_needs_no_csrf_token_but_pages_still_do(app: Flask, client: FlaskClient) -> None:
    api = api_client(app)
    token = token_for(client, api)
    response = client.post("/api/v1/requests", json={"their_reference": "X"}, headers=bearer(token))
    assert is_problem(response, 422)["type"] != "about:blank"  # reached the view
    assert client.post("/login", data={"email": "a", "password": "b"}).status_code == 400


def test_token_endpoint_is_rate_limited_per_address(make_app: object) -> None:
    from collections.abc import Callable

    build: Callable[..., Flask] = make_app  # type: ignore[assignment]
    app = build(api_token_rate_limit="3 per minute")  # as PORTAL_API_TOKEN_RATE_LIMIT sets it
    client = app.test_client()
    api = api_client(app)
    statuses = [ask(client, api, secret="wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    limited = ask(client, api)  # even with the right secret
    body = is_problem(limited, 429)
    assert body["title"] == "Too many requests"


def test_api_is_rate_limited_per_client(make_app: object) -> None:
    from collections.abc import Callable

    build: Callable[..., Flask] = make_app  # type: ignore[assignment]
    app = build(api_rate_limit="4 per minute")  # as PORTAL_API_RATE_LIMIT sets it
    client = app.test_client()
    first, second = api_client(app), api_client(app, authority_code="AUTH-B")
    token, other = token_for(client, first), token_for(client, second)
    for _ in range(4):
        assert client.get("/api/v1/packages", headers=bearer(token)).status_code == 200
    is_problem(client.get("/api/v1/requests", headers=bearer(token)), 429)
    assert client.get("/api/v1/packages", headers=bearer(other)).status_code == 200


def test_plain_http_beyond_localhost_is_refused_not_a_server_error(
    app: Flask, client: FlaskClient
) -> None:
    api = api_client(app)
    response = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        auth=(api.client_id, api.secret),
        base_url="http://portal.example.org",
    )
    assert is_problem(response, 400)["error"] == "insecure_transport"
    secure = client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        auth=(api.client_id, api.secret),
        base_url="https://portal.example.org",
    )
    assert secure.status_code == 200


def test_sign_in_and_the_api_keep_working_when_redis_stops(
    make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis (our own, on a free port) stops while the portal runs: sign-in and the JSON API
    answer as before, limited in memory, never a 500."""
    from collections.abc import Callable

    from tests.accounts.test_login import FAILURE_STATUS, _hammer
    from tests.support.own_redis import own_redis

    build: Callable[..., Flask] = make_app  # type: ignore[assignment]
    with own_redis() as redis:
        app = build(redis_url=redis.url, login_rate_limit="5 per minute")
        client = app.test_client()
        token = token_for(client, api_client(app))
        assert client.get("/api/v1/packages", headers=bearer(token)).status_code == 200
        assert _hammer(client, 2) == [FAILURE_STATUS] * 2  # counted in Redis
        redis.stop()

        caplog.set_level(logging.WARNING)
        assert client.get("/api/v1/packages", headers=bearer(token)).status_code == 200
        assert _hammer(client, 6, address="198.51.100.21") == [FAILURE_STATUS] * 5 + [429]
        assert "falling back to in-memory storage" in caplog.text
