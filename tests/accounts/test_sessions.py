"""Sessions through real HTTP: sign-out and password change end every session of the
user, idle and absolute timeouts, cookie flags, the account page and its recovery codes,
the dashboard and the navigation by role."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts import recovery
from portal.accounts.models import LoginSession, User
from portal.accounts.sessions import token_hash
from portal.audit import AuditEvent
from portal.config import ConfigError, Settings
from portal.db import utcnow
from portal.state import portal_state
from tests.support.auth import (
    Credentials,
    csrf_token,
    fresh_totp_code,
    login,
    make_user,
    post_code,
    post_password,
)

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
        return False
    assert response.status_code == 200
    return True


def token_of(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        token = sess.get("_user_id")
    assert isinstance(token, str)
    return token


def session_row(app: Flask, token: str) -> LoginSession:
    with portal_state(app).sessions() as s:
        row = s.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
        assert row is not None
        s.expunge(row)
        return row


def audit_actions(app: Flask) -> list[tuple[str, str]]:
    with portal_state(app).sessions() as s:
        return [(e.action, e.details) for e in s.scalars(select(AuditEvent).order_by("seq"))]


def post_form(client: FlaskClient, path: str, data: dict[str, str]) -> TestResponse:
    token = csrf_token(client.get("/account"))
    return client.post(path, data={"csrf_token": token, **data})


@pytest.fixture
def two_browsers(app: Flask, session: Session) -> tuple[Credentials, FlaskClient, FlaskClient]:
    creds = make_user(session, "requester")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, creds)
    login(phone, creds)
    assert signed_in(laptop) and signed_in(phone)
    return creds, laptop, phone


# --- sign-out --------------------------------------------------------------------------------


def test_sign_out_ends_every_session_of_the_user(
    app: Flask, two_browsers: tuple[Credentials, FlaskClient, FlaskClient], session: Session
) -> None:
    creds, laptop, phone = two_browsers
    bystander = app.test_client()
    login(bystander, make_user(session, "requester"))
    tokens = token_of(laptop), token_of(phone)

    response = post_form(laptop, "/logout", {})

    assert response.status_code == 303 and response.headers["Location"] == "/login"
    page = laptop.get("/login").get_data(as_text=True)
    assert "You have signed out." in page
    assert not signed_in(laptop)
    assert not signed_in(phone), "the other browser is signed out too"
    assert signed_in(bystander), "other users are not affected"
    for token in tokens:
        row = session_row(app, token)
        assert row.ended_at is not None and row.end_reason == "logout"
    logouts = [json.loads(d) for a, d in audit_actions(app) if a == "auth.logout"]
    assert logouts == [{"sessions_ended": 2}]
    login(phone, creds)
    assert signed_in(phone), "signing in again works"


def test_sign_out_needs_post_and_a_csrf_token(
    two_browsers: tuple[Credentials, FlaskClient, FlaskClient],
) -> None:
    _, laptop, _ = two_browsers
    assert laptop.get("/logout").status_code == 405
    assert laptop.post("/logout").status_code == 400
    assert laptop.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert signed_in(laptop)


def test_sign_out_when_not_signed_in_goes_to_the_login_page(client: FlaskClient) -> None:
    token = csrf_token(client.get("/login"))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- password change -------------------------------------------------------------------------


NEW_PASSWORD = "saffron harbour lantern 42"


def test_changing_the_password_ends_other_sessions_and_keeps_this_one(
    app: Flask, two_browsers: tuple[Credentials, FlaskClient, FlaskClient]
) -> None:
    creds, laptop, phone = two_browsers
    old_token = token_of(laptop)

    response = post_form(
        laptop,
        "/account/password",
        {
            "current_password": creds.password,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )

    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert "Your password was changed" in laptop.get("/account").get_data(as_text=True)
    assert signed_in(laptop), "the browser that changed it is signed in afresh"
    assert token_of(laptop) != old_token
    assert not signed_in(phone)
    assert session_row(app, old_token).end_reason == "password_changed"
    changed = [json.loads(d) for a, d in audit_actions(app) if a == "account.password_changed"]
    assert changed == [{"sessions_ended": 2}]

    stranger = app.test_client()
    assert post_password(stranger, creds.email, creds.password).status_code == 401
    renewed = Credentials(creds.email, NEW_PASSWORD, creds.totp_secret, creds.user_id)
    login(stranger, renewed)
    assert signed_in(stranger)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"current_password": "not it at all"}, "The current password is not correct."),
        ({"confirm_password": NEW_PASSWORD + "x"}, "The two new passwords do not match."),
        ({"new_password": "short", "confirm_password": "short"}, "at least 12 characters"),
        (
            {"new_password": "password1234", "confirm_password": "password1234"},
            "commonly used passwords",
        ),
        ({"new_password": "{current}", "confirm_password": "{current}"}, "must be different"),
    ],
)
def test_a_refused_password_change_changes_nothing(
    app: Flask,
    two_browsers: tuple[Credentials, FlaskClient, FlaskClient],
    fields: dict[str, str],
    message: str,
) -> None:
    creds, laptop, phone = two_browsers
    with portal_state(app).sessions() as s:
        before = s.scalar(select(User.password_hash).where(User.id == creds.user_id))
    data = {
        "current_password": creds.password,
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    }
    data.update({k: v.format(current=creds.password) for k, v in fields.items()})

    response = post_form(laptop, "/account/password", data)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert signed_in(laptop) and signed_in(phone)
    with portal_state(app).sessions() as s:
        assert s.scalar(select(User.password_hash).where(User.id == creds.user_id)) == before


def test_wrong_current_passwords_count_towards_the_lockout(
    app: Flask, two_browsers: tuple[Credentials, FlaskClient, FlaskClient]
) -> None:
    creds, laptop, _ = two_browsers
    for _ in range(5):
        response = post_form(
            laptop,
            "/account/password",
            {
                "current_password": "a guess",
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        )
        assert response.status_code == 400
    refused = post_form(
        laptop,
        "/account/password",
        {
            "current_password": creds.password,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert refused.status_code == 400
    assert "locked" in refused.get_data(as_text=True)
    assert post_password(app.test_client(), creds.email, creds.password).status_code == 401


# --- timeouts --------------------------------------------------------------------------------


def _age_session(app: Flask, token: str, **values: object) -> None:
    with portal_state(app).sessions() as s:
        s.execute(
            update(LoginSession)
            .where(LoginSession.token_hash == token_hash(token))
            .values(**values)
        )
        s.commit()


def test_idle_sessions_end_after_thirty_minutes(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, make_user(session, "provider"))
    token = token_of(client)
    _age_session(app, token, last_seen_at=utcnow() - timedelta(minutes=29))
    assert signed_in(client), "29 minutes idle is fine (and the visit counts as activity)"
    _age_session(app, token, last_seen_at=utcnow() - timedelta(minutes=31))
    assert not signed_in(client)
    assert session_row(app, token).end_reason == "idle_timeout"


def test_sessions_end_twelve_hours_after_sign_in_however_active(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, make_user(session, "recipient"))
    token = token_of(client)
    started = utcnow() - timedelta(hours=12, minutes=1)
    _age_session(app, token, created_at=started, expires_at=started + timedelta(hours=12))
    assert not signed_in(client)
    assert session_row(app, token).end_reason == "absolute_timeout"


def test_deactivation_ends_sessions_at_the_next_request(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    creds = make_user(session, "requester")
    login(client, creds)
    with portal_state(app).sessions() as s:
        s.execute(update(User).where(User.id == creds.user_id).values(is_active=False))
        s.commit()
    assert not signed_in(client)


# --- cookies ---------------------------------------------------------------------------------


def _session_cookie(response: TestResponse) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("portal_session=")]
    assert cookies
    return cookies[-1]


def test_session_cookie_flags_over_https(make_app: Callable[..., Flask], session: Session) -> None:
    app = make_app(https=True)
    client = app.test_client()
    creds = make_user(session, "legal_officer")
    base = "https://localhost"
    referer = {"Referer": f"{base}/login"}
    token = csrf_token(client.get("/login", base_url=base))
    first = client.post(
        "/login",
        data={"csrf_token": token, "email": creds.email, "password": creds.password},
        base_url=base,
        headers=referer,
    )
    assert first.status_code == 303
    assert "; Secure" in _session_cookie(first)
    done = client.post(
        "/login/code",
        data={"csrf_token": token, "code": fresh_totp_code(app, creds)},
        base_url=base,
        headers=referer,
    )
    assert done.status_code == 303
    cookie = _session_cookie(done)
    for flag in ("; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"):
        assert flag in cookie
    assert "Expires=" not in cookie, "a browser-session cookie, gone when the browser closes"
    assert client.get("/", base_url=base).status_code == 200


def test_no_secure_flag_on_plain_http_in_test_mode(client: FlaskClient, session: Session) -> None:
    response = login(client, make_user(session, "admin"))
    cookie = _session_cookie(response)
    assert "; Secure" not in cookie
    assert "; HttpOnly" in cookie and "; SameSite=Strict" in cookie


def test_https_setting_defaults(tmp_path: object) -> None:
    assert Settings.from_env({}).secure_cookies, "production: Secure unless told otherwise"
    assert not Settings.from_env({"PORTAL_DEMO": "1"}).secure_cookies
    assert not Settings.from_env({"PORTAL_TESTING": "1"}).secure_cookies
    assert Settings.from_env({"PORTAL_DEMO": "1", "PORTAL_HTTPS": "yes"}).secure_cookies
    assert not Settings.from_env({"PORTAL_HTTPS": "false"}).secure_cookies
    with pytest.raises(ConfigError, match="PORTAL_HTTPS must be true or false"):
        Settings.from_env({"PORTAL_HTTPS": "maybe"})


def test_password_hash_profile_settings() -> None:
    assert Settings.from_env({}).hash_profile == "standard"
    assert Settings.from_env({"PORTAL_TESTING": "1"}).hash_profile == "fast"
    testing_standard = {"PORTAL_TESTING": "1", "PORTAL_PASSWORD_HASH_PROFILE": "standard"}
    assert Settings.from_env(testing_standard).hash_profile == "standard"
    with pytest.raises(ConfigError, match="for tests only"):
        Settings.from_env({"PORTAL_PASSWORD_HASH_PROFILE": "fast"})
    with pytest.raises(ConfigError, match="must be one of standard, fast"):
        Settings.from_env({"PORTAL_PASSWORD_HASH_PROFILE": "turbo"})


# --- the account page ------------------------------------------------------------------------


def test_the_account_page_shows_who_and_where(
    app: Flask, two_browsers: tuple[Credentials, FlaskClient, FlaskClient], session: Session
) -> None:
    creds, laptop, _ = two_browsers
    user = session.get(User, creds.user_id)
    assert user is not None
    recovery.issue_recovery_codes(session, user)
    session.commit()
    page = laptop.get("/account")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert user.display_name in text and creds.email in text
    assert "<dd>Requester</dd>" in text
    assert "Test authority TST-AUTH (TST-AUTH)" in text
    assert text.count("<td>127.0.0.1</td>") == 2, "both open sessions are listed"
    assert text.count("(this session)") == 1
    assert "<strong>10</strong> unused recovery codes" in text
    assert page.headers["Cache-Control"] == "no-store"


def test_new_recovery_codes_need_a_current_totp_code(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    creds = make_user(session, "provider")
    user = session.get(User, creds.user_id)
    assert user is not None
    old = recovery.issue_recovery_codes(session, user)
    session.commit()
    login(client, creds)

    refused = post_form(client, "/account/recovery-codes", {"code": old[0]})
    assert refused.status_code == 400
    assert "The code is not correct" in refused.get_data(as_text=True)

    response = post_form(client, "/account/recovery-codes", {"code": fresh_totp_code(app, creds)})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    shown = re.findall(r"<code>([a-z0-9-]{19})</code>", response.get_data(as_text=True))
    assert len(shown) == 10 and not set(shown) & set(old)
    actions = [a for a, _ in audit_actions(app)]
    assert "account.recovery_codes_regenerated" in actions

    other = app.test_client()
    assert post_password(other, creds.email, creds.password).status_code == 303
    assert post_code(other, old[1]).status_code == 401, "old codes no longer work"
    assert post_password(other, creds.email, creds.password).status_code == 303
    assert post_code(other, shown[0]).status_code == 303
    assert signed_in(other)


# --- dashboard and navigation ----------------------------------------------------------------


def test_the_home_page_needs_sign_in(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"


def _nav(client: FlaskClient) -> list[str]:
    text = client.get("/account").get_data(as_text=True)
    nav = text.split('<nav class="site-nav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


def test_navigation_and_next_steps_follow_the_role(app: Flask, session: Session) -> None:
    admin, requester = app.test_client(), app.test_client()
    login(admin, make_user(session, "admin"))
    login(requester, make_user(session, "requester"))
    admin_links, requester_links = _nav(admin), _nav(requester)
    assert admin_links[0] == requester_links[0] == "/"
    if "admin.users" in app.view_functions:
        assert "/admin/users" in admin_links
        assert "/admin/users" in admin.get("/").get_data(as_text=True)
    assert not any(link.startswith("/admin") for link in requester_links)
    for link in admin_links + requester_links:
        assert (admin if link in admin_links else requester).get(link).status_code == 200


def test_the_header_has_the_user_and_a_sign_out_form(client: FlaskClient, session: Session) -> None:
    creds = make_user(session, "recipient")
    login(client, creds)
    text = client.get("/").get_data(as_text=True)
    header = text.split("</header>", 1)[0]
    assert 'href="/account"' in header and "(Recipient)" in header
    form = re.search(
        r'<form class="signout-form" method="post" action="/logout">(.*?)</form>', header, re.S
    )
    assert form is not None and 'name="csrf_token"' in form.group(1)
    assert "Sign in" not in header
