"""Every route answers only the methods it declares; HEAD is GET without a body and changes
nothing; the sign-in rate limit and CSRF cannot be walked around with another method.

The walks go over ``app.url_map`` so a route added later is covered without editing here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from portal.audit import AuditEvent
from portal.models import Base
from portal.state import portal_state
from tests.authz import test_access_matrix as matrix
from tests.authz.test_access_matrix import WHO, World
from tests.support.auth import Credentials, csrf_token, fresh_totp_code, make_user

pytest_plugins = ["tests.support.auth"]
world = matrix.world  # the access matrix's users and objects, one of each

#: Methods a client may send; every one a route does not declare must answer 405.
PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO")
#: Fields of every form in the portal a HEAD might smuggle in.
FORM = {"email": "x@example.test", "password": "p", "code": "123456", "confirm": "yes"}


def _rules(app: Flask) -> list[Rule]:
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def _url(app: Flask, rule: Rule, values: dict[str, Any]) -> str:
    with app.test_request_context():
        return url_for(rule.endpoint, **{k: values.get(k, 1) for k in rule.arguments})


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
    }


def test_every_route_answers_405_to_methods_it_does_not_declare(app: Flask) -> None:
    client = app.test_client()
    by_path: dict[str, set[str]] = {}  # one path may have a GET view and a POST view
    for rule in _rules(app):
        by_path.setdefault(rule.rule, set()).update(rule.methods or set())
    failures = []
    for rule in _rules(app):
        declared = by_path[rule.rule]
        assert "OPTIONS" not in declared, f"{rule.endpoint}: automatic OPTIONS"
        url = _url(app, rule, {})
        for method in PROBED:
            if method in declared:
                continue
            status = client.open(url, method=method).status_code
            if status != 405:
                failures.append(f"{method} {rule.rule}: {status}")
    assert failures == [], "\n".join(failures)


def test_head_is_get_without_a_body_and_changes_nothing(app: Flask, world: World) -> None:
    """For every GET route and every visitor: HEAD (carrying form fields, as if to reach a
    POST branch) answers what GET answers, sends no body and writes no row anywhere."""
    with portal_state(app).sessions() as session:
        before = _row_counts(session)
    for rule in _rules(app):
        if "GET" not in (rule.methods or set()):
            continue
        url = _url(app, rule, world.url_values)
        for who in WHO:
            response = world.clients[who].open(url, method="HEAD", data=FORM)
            assert response.get_data() == b"", f"HEAD {rule.rule} as {who} sent a body"
            assert response.status_code != 500, f"HEAD {rule.rule} as {who}"
    with portal_state(app).sessions() as session:
        assert _row_counts(session) == before, "a HEAD wrote to the database"
    for rule in _rules(app):
        if "GET" not in (rule.methods or set()):
            continue
        url = _url(app, rule, world.url_values)
        for who in ("anonymous", "admin", "legal_officer", "requester", "recipient"):
            head = world.clients[who].head(url).status_code
            got = world.clients[who].get(url).status_code
            assert head == got, f"HEAD {rule.rule} as {who}: {head}, GET: {got}"


def _audit_count(app: Flask) -> int:
    with portal_state(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_head_neither_signs_in_nor_escapes_the_rate_limit(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(login_rate_limit="2 per minute")
    with portal_state(app).sessions() as session:
        creds: Credentials = make_user(session, "requester")
    client = app.test_client()
    token = csrf_token(client.get("/login"))
    wrong = {"csrf_token": token, "email": creds.email, "password": "wrong"}
    assert [client.post("/login", data=wrong).status_code for _ in range(3)][-1] == 429
    audited = _audit_count(app)
    right = {"email": creds.email, "password": creds.password}  # and no CSRF token
    for method in ("HEAD", "PUT", "PATCH", "DELETE", "FOO"):
        response = client.open("/login", method=method, data=right)
        assert response.status_code in (200, 405), method
        assert "Location" not in response.headers, method
    code = {"code": fresh_totp_code(app, creds)}
    assert client.open("/login/code", method="HEAD", data=code).status_code == 302
    assert _audit_count(app) == audited, "a HEAD or other method ran the sign-in"
    assert client.get("/").headers["Location"].split("?")[0].endswith("/login")


def test_a_full_sign_in_through_head_does_not_happen(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    with portal_state(app).sessions() as session:
        creds = make_user(session, "admin")
    client = app.test_client()
    first = client.open(
        "/login", method="HEAD", data={"email": creds.email, "password": creds.password}
    )
    assert first.status_code == 200  # the sign-in form's headers, nothing checked
    second = client.open("/login/code", method="HEAD", data={"code": fresh_totp_code(app, creds)})
    assert second.status_code == 302 and second.headers["Location"].endswith("/login")
    assert client.get("/").status_code == 302


def test_every_unsafe_method_needs_the_csrf_token(app: Flask, world: World) -> None:
    """A signed-in browser's POST without the token is refused on every page route (the
    JSON API takes bearer tokens, not cookies, and is exempt)."""
    client = world.clients["admin"]
    failures = []
    for rule in _rules(app):
        if rule.endpoint.startswith("api."):
            continue
        for method in sorted((rule.methods or set()) - {"GET", "HEAD"}):
            response = client.open(_url(app, rule, world.url_values), method=method, data=FORM)
            if response.status_code != 400 or "Form expired" not in response.get_data(as_text=True):
                failures.append(f"{method} {rule.rule}: {response.status_code}")
    assert failures == [], "\n".join(failures)
