"""Signing in through real HTTP (Flask test client, both database backends): the two steps,
one answer for every failure, recovery codes, lockout, rehash, session fixation, safe
redirects, CSRF, the per-address rate limit and what the audit log keeps."""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts import recovery
from portal.accounts.login import GENERIC_FAILURE, SPENT_CODE, WRONG_CODE
from portal.accounts.models import LoginSession, User
from portal.accounts.passwords import needs_rehash
from portal.accounts.sessions import token_hash
from portal.accounts.signin_views import is_local_path
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.demo import run_demo
from portal.state import build_state, portal_state
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

FAILURE_STATUS = 401
_TOKEN = re.compile(r'name="csrf_token" value="[^"]+"')
_TYPED_EMAIL = re.compile(r'(name="email" type="email"[^>]*) value="[^"]*"')


def error_message(response: TestResponse) -> str | None:
    found = re.search(r'<p class="signin__error">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(found.group(1)) if found else None


def without_tokens(response: TestResponse) -> str:
    """The page without its CSRF token and without the e-mail the visitor typed (echoed
    back whatever failed)."""
    return _TYPED_EMAIL.sub(r"\1", _TOKEN.sub("", response.get_data(as_text=True)))


def assert_generic_failure(response: TestResponse) -> None:
    assert response.status_code == FAILURE_STATUS
    assert error_message(response) == GENERIC_FAILURE


def user_row(app: Flask, user_id: int) -> User:
    with portal_state(app).sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def audit_events(app: Flask, action: str | None = None) -> list[AuditEvent]:
    with portal_state(app).sessions() as session:
        stmt = select(AuditEvent).order_by(AuditEvent.seq)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        return list(session.scalars(stmt))


def session_token(client: FlaskClient) -> str | None:
    with client.session_transaction() as sess:
        value = sess.get("_user_id")
        return str(value) if value is not None else None


def signed_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


def wrong_code(creds: Credentials) -> str:
    good = {pyotp.TOTP(creds.totp_secret).at(time.time() + 30 * i) for i in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


# --- the happy path --------------------------------------------------------------------------


def test_password_then_totp_signs_in(app: Flask, client: FlaskClient, session: Session) -> None:
    creds = make_user(session, "legal_officer")
    assert client.get("/").headers["Location"].startswith("/login")
    first = post_password(client, creds.email.upper() + " ", creds.password)
    assert first.status_code == 303
    assert first.headers["Location"] == "/login/code"
    assert not signed_in(client), "no session after the password alone"
    page = client.get("/login/code")
    assert page.status_code == 200 and 'autocomplete="one-time-code"' in page.get_data(as_text=True)

    done = post_code(client, fresh_totp_code(app, creds))

    assert done.status_code == 303 and done.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome, Test legal officer" in home.get_data(as_text=True)
    user = user_row(app, creds.user_id)
    assert user.last_login_at is not None and user.failed_logins == 0
    (event,) = audit_events(app, "auth.login")
    assert event.actor == event.target == f"user:{creds.user_id}"
    assert json.loads(event.details)["second_factor"] == "totp"


def test_the_login_page_explains_the_portal(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "evidence of international crimes" in text
    for role in ("Requesters", "Legal officers", "Information providers", "Recipients"):
        assert f"<h3>{role}</h3>" in text
    assert 'autocomplete="current-password"' in text
    assert error_message(page) is None


def test_signed_in_users_skip_the_login_page(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, make_user(session, "admin"))
    response = client.get("/login?next=/account")
    assert response.status_code == 302 and response.headers["Location"] == "/account"


# --- one answer for every failure ------------------------------------------------------------


@pytest.fixture
def victim(session: Session) -> Credentials:
    return make_user(session, "recipient")


def _unknown_email(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    return post_password(client, "nobody.here@unit.example", creds.password)


def _wrong_password(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    return post_password(client, creds.email, creds.password + "!")


def _inactive_user(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    with portal_state(app).sessions() as s:
        s.execute(update(User).where(User.id == creds.user_id).values(is_active=False))
        s.commit()
    return post_password(client, creds.email, creds.password)


def _locked_account(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    with portal_state(app).sessions() as s:
        until = utcnow() + timedelta(minutes=10)
        s.execute(update(User).where(User.id == creds.user_id).values(locked_until=until))
        s.commit()
    return post_password(client, creds.email, creds.password)


def _not_enrolled(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    with portal_state(app).sessions() as s:
        s.execute(
            update(User)
            .where(User.id == creds.user_id)
            .values(totp_secret=None, totp_confirmed_at=None)
        )
        s.commit()
    return post_password(client, creds.email, creds.password)


def _wrong_code(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    assert post_password(client, creds.email, creds.password).status_code == 303
    return post_code(client, wrong_code(creds))


def _replayed_code(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    code = fresh_totp_code(app, creds)
    owner = app.test_client()
    assert post_password(owner, creds.email, creds.password).status_code == 303
    assert post_code(owner, code).status_code == 303
    # e.g. an attacker who knows the password and watched the code being typed
    assert post_password(client, creds.email, creds.password).status_code == 303
    return post_code(client, code)


def _missing_first_step(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    return post_code(client, fresh_totp_code(app, creds))


def _expired_first_step(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    assert post_password(client, creds.email, creds.password).status_code == 303
    with client.session_transaction() as sess:
        sess["pending_login"]["at"] -= 6 * 60  # step 1 happened six minutes ago
        sess.modified = True
    return post_code(client, fresh_totp_code(app, creds))


def _forged_first_step(client: FlaskClient, app: Flask, creds: Credentials) -> TestResponse:
    with client.session_transaction() as sess:
        sess["pending_login"] = {"uid": creds.user_id, "epoch": 0, "at": "soon"}
    return post_code(client, fresh_totp_code(app, creds))


def _account_changed_between_steps(
    client: FlaskClient, app: Flask, creds: Credentials
) -> TestResponse:
    assert post_password(client, creds.email, creds.password).status_code == 303
    with portal_state(app).sessions() as s:  # e.g. an admin reset its 2FA meanwhile
        s.execute(update(User).where(User.id == creds.user_id).values(session_epoch=7))
        s.commit()
    return post_code(client, fresh_totp_code(app, creds))


FAILURES: dict[str, Callable[[FlaskClient, Flask, Credentials], TestResponse]] = {
    "unknown e-mail": _unknown_email,
    "wrong password": _wrong_password,
    "inactive user": _inactive_user,
    "locked account": _locked_account,
    "not enrolled": _not_enrolled,
    "missing first step": _missing_first_step,
    "expired first step": _expired_first_step,
    "forged first step": _forged_first_step,
    "account changed between steps": _account_changed_between_steps,
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_every_failure_gives_the_same_answer(
    case: str, app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    reference = post_password(app.test_client(), "nobody.else@unit.example", "whatever it is")
    assert_generic_failure(reference)

    response = FAILURES[case](client, app, victim)

    assert_generic_failure(response)
    assert without_tokens(response) == without_tokens(reference), "the pages are identical"
    assert not signed_in(client)
    with client.session_transaction() as sess:
        assert "pending_login" not in sess, "a failure always starts over at step 1"


def test_a_locked_account_refuses_even_the_right_password_and_code(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    for _ in range(5):
        assert_generic_failure(post_password(client, victim.email, "not the password at all"))
    assert user_row(app, victim.user_id).locked_until is not None
    assert_generic_failure(post_password(client, victim.email, victim.password))
    (lockout,) = audit_events(app, "auth.lockout")
    assert lockout.target == f"user:{victim.user_id}"


@pytest.mark.parametrize(
    ("case", "message"),
    [("wrong code", WRONG_CODE), ("replayed code", SPENT_CODE)],
)
def test_a_mistyped_code_keeps_the_visitor_on_the_code_step(
    case: str, message: str, app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    """The password is proven: a wrong or spent code says so and asks again on step 2,
    and the right code then signs in without the password again."""
    failing = {"wrong code": _wrong_code, "replayed code": _replayed_code}[case]
    response = failing(client, app, victim)
    assert response.status_code == FAILURE_STATUS
    assert error_message(response) == message
    assert 'name="code"' in response.get_data(as_text=True), "still the code form"
    with client.session_transaction() as sess:
        assert "pending_login" in sess
    assert not signed_in(client)
    if case == "replayed code":  # the spent code's time step must pass first
        with portal_state(app).sessions() as s:
            s.execute(update(User).where(User.id == victim.user_id).values(totp_last_step=0))
            s.commit()
    assert post_code(client, fresh_totp_code(app, victim)).status_code == 303
    assert signed_in(client)


def test_the_code_that_locks_the_account_sends_the_visitor_back_to_step_1(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    for _ in range(4):
        assert_generic_failure(post_password(client, victim.email, "a wrong password"))
    assert post_password(client, victim.email, victim.password).status_code == 303
    assert_generic_failure(post_code(client, wrong_code(victim)))
    assert user_row(app, victim.user_id).locked_until is not None
    assert client.get("/login/code").status_code == 302


def test_a_wrong_password_keeps_the_e_mail_typed(client: FlaskClient, victim: Credentials) -> None:
    response = post_password(client, victim.email, "a wrong password")
    assert_generic_failure(response)
    assert f'value="{victim.email}"' in response.get_data(as_text=True)


def test_unknown_accounts_cost_a_password_verification(
    make_app: Callable[..., Flask], session: Session
) -> None:
    """With the real argon2 cost, an unknown e-mail takes as long as a wrong password."""
    app = make_app(password_hash_profile="standard")  # standard-cost hash, as in production
    creds = make_user(session, "requester", hash_profile="standard")
    client = app.test_client()

    def timed(email: str) -> float:
        token = csrf_token(client.get("/login"))
        start = time.perf_counter()
        response = client.post(
            "/login", data={"csrf_token": token, "email": email, "password": "wrong guess 1"}
        )
        elapsed = time.perf_counter() - start
        assert_generic_failure(response)
        return elapsed

    known = statistics.median(timed(creds.email) for _ in range(3))
    unknown = statistics.median(timed("no.such.person@unit.example") for _ in range(3))
    assert known > 0.05, "a standard-cost verification takes a noticeable time"
    assert 0.4 < unknown / known < 2.5


# --- recovery codes --------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once(app: Flask, session: Session) -> None:
    creds = make_user(session, "provider")
    user = session.get(User, creds.user_id)
    assert user is not None
    codes = recovery.issue_recovery_codes(session, user)
    session.commit()

    first = app.test_client()
    assert post_password(first, creds.email, creds.password).status_code == 303
    assert post_code(first, codes[0].upper()).status_code == 303
    home = first.get("/")
    assert home.status_code == 200
    assert "recovery code" in home.get_data(as_text=True), "the user is told a code was spent"

    second = app.test_client()
    assert post_password(second, creds.email, creds.password).status_code == 303
    assert error_message(post_code(second, codes[0])) == WRONG_CODE
    assert not signed_in(second)

    used = audit_events(app, "auth.recovery_code_used")
    assert len(used) == 1 and used[0].target == f"user:{creds.user_id}"
    logins = audit_events(app, "auth.login")
    assert json.loads(logins[-1].details)["second_factor"] == "recovery_code"
    failed = audit_events(app, "auth.login_failed")
    assert json.loads(failed[-1].details)["reason"] == "wrong_code"


# --- lockout ---------------------------------------------------------------------------------


def test_five_failures_lock_the_account_until_the_lock_expires(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    for attempt in range(5):
        if attempt % 2:  # wrong codes count as much as wrong passwords
            assert post_password(client, victim.email, victim.password).status_code == 303
            assert error_message(post_code(client, wrong_code(victim))) == WRONG_CODE
        else:
            assert_generic_failure(post_password(client, victim.email, "a wrong password"))
    user = user_row(app, victim.user_id)
    assert user.locked_until is not None
    assert timedelta(minutes=14) < user.locked_until - utcnow() <= timedelta(minutes=15)
    assert_generic_failure(post_password(client, victim.email, victim.password))
    assert_generic_failure(post_password(client, victim.email, "another wrong one"))
    assert len(audit_events(app, "auth.lockout")) == 1, "the lockout is audited once"

    # Fifteen minutes later (simulated: the lock's end moved into the past)
    with portal_state(app).sessions() as s:
        ended = utcnow() - timedelta(seconds=1)
        s.execute(update(User).where(User.id == victim.user_id).values(locked_until=ended))
        s.commit()
    login(client, victim)
    assert signed_in(client)
    assert user_row(app, victim.user_id).failed_logins == 0


def test_success_resets_the_failure_count(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    for _ in range(4):
        assert_generic_failure(post_password(client, victim.email, "a wrong password"))
    assert user_row(app, victim.user_id).failed_logins == 4
    login(client, victim)
    assert user_row(app, victim.user_id).failed_logins == 0
    other = app.test_client()
    for _ in range(4):
        assert_generic_failure(post_password(other, victim.email, "a wrong password"))
    assert user_row(app, victim.user_id).locked_until is None


# --- rehash ----------------------------------------------------------------------------------


def test_the_password_is_rehashed_when_the_parameters_change(
    make_app: Callable[..., Flask], session: Session
) -> None:
    creds = make_user(session, "requester", hash_profile="standard")
    original = user_row(make_app(), creds.user_id).password_hash
    assert original is not None and "m=65536,t=3,p=4" in original

    fast = make_app(password_hash_profile="fast")
    login(fast.test_client(), creds)
    rehashed = user_row(fast, creds.user_id).password_hash
    assert rehashed is not None and rehashed != original
    assert not needs_rehash(rehashed, profile="fast")
    assert len(audit_events(fast, "auth.password_rehashed")) == 1

    login(fast.test_client(), creds)
    assert user_row(fast, creds.user_id).password_hash == rehashed, "no change, no rehash"

    standard = make_app(password_hash_profile="standard")
    login(standard.test_client(), creds)
    back = user_row(standard, creds.user_id).password_hash
    assert back is not None and "m=65536,t=3,p=4" in back and back != original
    assert len(audit_events(standard, "auth.password_rehashed")) == 2


def test_a_wrong_password_is_never_rehashed(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    before = user_row(app, victim.user_id).password_hash
    assert_generic_failure(post_password(client, victim.email, "a wrong password"))
    assert user_row(app, victim.user_id).password_hash == before


# --- session fixation ------------------------------------------------------------------------


def test_signing_in_replaces_the_session(app: Flask, client: FlaskClient, session: Session) -> None:
    creds = make_user(session, "requester")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        sess["_user_id"] = "a-token-an-attacker-chose"
    before_csrf = csrf_token(client.get("/login"))

    login(client, creds)

    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert "pending_login" not in sess
        token = sess.get("_user_id")
    assert token is not None and token != "a-token-an-attacker-chose"
    assert csrf_token(client.get("/account")) != before_csrf
    with portal_state(app).sessions() as s:
        row = s.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
        assert row is not None and row.user_id == creds.user_id and row.ended_at is None

    # signing in again from the same browser: another token, and the old session ends
    login(client, creds)
    second = session_token(client)
    assert second is not None and second != token
    with portal_state(app).sessions() as s:
        old = s.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
        assert old is not None and old.end_reason == "replaced"


def test_no_remember_me_cookie(app: Flask, client: FlaskClient, session: Session) -> None:
    response = login(client, make_user(session, "recipient"))
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all(c.startswith("portal_session=") for c in cookies)
    assert client.get_cookie("remember_token") is None


# --- where to go after signing in ------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/account", "/account"),
        ("/admin/users?page=2", "/admin/users?page=2"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example/", "/"),
        ("/%0a/evil", "/%0a/evil"),
        ("", "/"),
    ],
)
def test_next_goes_only_to_local_paths(
    app: Flask, client: FlaskClient, session: Session, target: str, expected: str
) -> None:
    response = login(client, make_user(session, "admin"), next_target=target)
    assert response.headers["Location"] == expected


@pytest.mark.parametrize(
    ("target", "local"),
    [
        ("/", True),
        ("/requests/12?tab=messages#top", True),
        ("//example.org", False),
        ("/\\example.org", False),
        ("/a\\b", False),
        ("\\\\example.org", False),
        ("http://example.org", False),
        ("example.org/path", False),
        ("/\r\n/example.org", False),
        ("/ /example.org", False),
        ("/\x00", False),
        ("/" + "a" * 2001, False),
    ],
)
def test_is_local_path(target: str, local: bool) -> None:
    assert is_local_path(target) is local


def test_the_login_redirect_carries_next(client: FlaskClient) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/account">' in page
    hostile = client.get("/login?next=//evil.example").get_data(as_text=True)
    assert 'name="next"' not in hostile


# --- CSRF ------------------------------------------------------------------------------------


def test_sign_in_forms_without_a_csrf_token_are_refused(
    app: Flask, client: FlaskClient, victim: Credentials
) -> None:
    data = {"email": victim.email, "password": victim.password}
    assert client.post("/login", data=data).status_code == 400
    assert client.post("/login", data={**data, "csrf_token": "forged"}).status_code == 400
    assert post_password(client, victim.email, victim.password).status_code == 303
    code = fresh_totp_code(app, victim)
    assert client.post("/login/code", data={"code": code}).status_code == 400
    assert not signed_in(client)
    assert audit_events(app, "auth.login") == []


# --- per-address rate limit ------------------------------------------------------------------


def _hammer(client: FlaskClient, times: int, address: str = "198.51.100.20") -> list[int]:
    token = csrf_token(client.get("/login"))
    statuses = []
    for _ in range(times):
        response = client.post(
            "/login",
            data={"csrf_token": token, "email": "guess@unit.example", "password": "guess"},
            environ_base={"REMOTE_ADDR": address},
        )
        statuses.append(response.status_code)
    return statuses


def test_too_many_sign_in_attempts_from_one_address_get_429(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(login_rate_limit="10 per minute;100 per hour")
    client = app.test_client()
    assert _hammer(client, 10) == [FAILURE_STATUS] * 10
    blocked = client.post(
        "/login",
        data={"csrf_token": csrf_token(client.get("/login")), "email": "x@y.z", "password": "p"},
        environ_base={"REMOTE_ADDR": "198.51.100.20"},
    )
    assert blocked.status_code == 429
    text = blocked.get_data(as_text=True)
    assert "Too many requests" in text and "Wait a moment" in text
    assert int(blocked.headers["Retry-After"]) > 0
    # the second step shares the budget; other addresses and plain page views do not
    assert post_code_from(client, "198.51.100.20").status_code == 429
    assert client.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.20"}).status_code == 200
    assert _hammer(client, 1, address="198.51.100.21") == [FAILURE_STATUS]


def test_the_default_limit_is_twenty_failures_a_minute(make_app: Callable[..., Flask]) -> None:
    from portal.config import DEFAULT_LOGIN_RATE_LIMIT

    assert DEFAULT_LOGIN_RATE_LIMIT == "20 per minute;200 per hour"
    app = make_app(login_rate_limit=DEFAULT_LOGIN_RATE_LIMIT)
    assert _hammer(app.test_client(), 21) == [FAILURE_STATUS] * 20 + [429]


def test_successful_sign_ins_do_not_spend_the_address_budget(
    make_app: Callable[..., Flask],
) -> None:
    """A whole unit behind one address: only refusals count, so colleagues who sign in
    (and one who mistypes a few codes) never lock the others out."""
    app = make_app(login_rate_limit="3 per minute")
    with portal_state(app).sessions() as session:
        colleagues = [make_user(session, "recipient", email=f"p{i}@unit.example") for i in range(4)]

    def from_the_unit() -> FlaskClient:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "198.51.100.30"
        return client

    for creds in colleagues[1:]:
        client = from_the_unit()
        login(client, creds)
        assert signed_in(client)
    clumsy = from_the_unit()
    first = colleagues[0]
    assert post_password(clumsy, first.email, first.password).status_code == 303
    for _ in range(2):
        assert error_message(post_code(clumsy, wrong_code(first))) == WRONG_CODE
    assert post_code(clumsy, fresh_totp_code(app, first)).status_code == 303
    assert signed_in(clumsy)
    # ...while a stranger at that address guessing passwords is stopped after the third
    stranger = from_the_unit()
    assert [post_password(stranger, "x@y.z", "guess").status_code for _ in range(2)] == [
        FAILURE_STATUS,
        429,
    ]


def post_code_from(client: FlaskClient, address: str) -> TestResponse:
    token = csrf_token(client.get("/login"))
    return client.post(
        "/login/code",
        data={"csrf_token": token, "code": "123456"},
        environ_base={"REMOTE_ADDR": address},
    )


def test_the_rate_limit_is_configurable_and_checked(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(login_rate_limit="3 per hour")
    assert _hammer(app.test_client(), 4) == [FAILURE_STATUS] * 3 + [429]
    from portal.config import ConfigError

    with pytest.raises(ConfigError, match="not a rate limit"):
        make_app(login_rate_limit="lots")


def test_an_unreachable_redis_falls_back_to_limits_in_memory(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """Without Redis the sign-in keeps working (no 500) and stays limited: each process
    counts in its own memory, and says so in the log."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(redis_url=f"redis://127.0.0.1:{port}/0", login_rate_limit="10 per minute")
    caplog.set_level(logging.WARNING)
    assert _hammer(app.test_client(), 11) == [FAILURE_STATUS] * 10 + [429]
    assert "falling back to in-memory storage" in caplog.text
    assert len(audit_events(app, "auth.login_failed")) == 10


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    import redis

    prefix = f"portal-test-{uuid.uuid4().hex}"
    yield prefix
    server = redis.Redis.from_url(redis_url)
    try:
        for key in server.scan_iter(match=f"*{prefix}*"):
            server.delete(key)
    finally:
        server.close()


def test_the_rate_limit_is_shared_through_redis(
    make_app: Callable[..., Flask], redis_url: str, redis_prefix: str
) -> None:
    """Two app instances (two workers) with one Redis share one budget per address."""
    settings = {
        "redis_url": redis_url,
        "extra": {"RATELIMIT_KEY_PREFIX": redis_prefix},
        "login_rate_limit": "10 per minute",
    }
    first = make_app(**settings)
    second = make_app(**settings)
    assert _hammer(first.test_client(), 6) == [FAILURE_STATUS] * 6
    assert _hammer(second.test_client(), 5) == [FAILURE_STATUS] * 4 + [429]
    assert _hammer(first.test_client(), 1) == [429]
    import redis

    server = redis.Redis.from_url(redis_url)
    try:
        assert any(True for _ in server.scan_iter(match=f"*{redis_prefix}*"))
    finally:
        server.close()


# --- the audit log ---------------------------------------------------------------------------


def test_the_audit_log_records_sign_ins_but_never_secrets(app: Flask, session: Session) -> None:
    creds = make_user(session, "requester")
    user = session.get(User, creds.user_id)
    assert user is not None
    codes = recovery.issue_recovery_codes(session, user)
    session.commit()
    typed: list[str] = [creds.password, creds.totp_secret, *codes]
    typed += [c.replace("-", "") for c in codes]

    client = app.test_client()
    wrong_password = "Wr0ng-but-close-" + creds.password[-6:]
    typed.append(wrong_password)
    post_password(client, creds.email, wrong_password)
    post_password(client, "stranger@unit.example", "attacker-password-123")
    typed.append("attacker-password-123")
    assert post_password(client, creds.email, creds.password).status_code == 303
    bad = wrong_code(creds)
    post_code(client, bad)
    code = fresh_totp_code(app, creds)
    assert post_password(client, creds.email, creds.password).status_code == 303
    assert post_code(client, code).status_code == 303
    logout_token = csrf_token(client.get("/account"))
    client.post("/logout", data={"csrf_token": logout_token})
    other = app.test_client()
    assert post_password(other, creds.email, creds.password).status_code == 303
    assert post_code(other, codes[1]).status_code == 303

    events = audit_events(app)
    actions = [e.action for e in events]
    for action in ("auth.login_failed", "auth.login", "auth.logout", "auth.recovery_code_used"):
        assert action in actions
    failures = [json.loads(e.details) for e in events if e.action == "auth.login_failed"]
    assert {f["reason"] for f in failures} == {"wrong_password", "unknown_account", "wrong_code"}
    unknown = [e for e in events if e.action == "auth.login_failed" and e.target == "unknown"]
    assert len(unknown) == 1
    assert "stranger" not in unknown[0].details, "no attacker-supplied e-mail is kept"
    known = [e for e in events if e.action == "auth.login_failed" and e.target != "unknown"]
    assert all(json.loads(e.details)["email"] == creds.email for e in known)

    everything = "\n".join(f"{e.actor} {e.action} {e.target} {e.details}" for e in events)
    for secret in [*typed, bad, code]:
        assert secret not in everything, "a secret reached the audit log"
    assert creds.password.lower() not in everything.lower()


# --- the demo --------------------------------------------------------------------------------


def test_a_demo_user_signs_in_with_the_printed_password_and_totp(
    make_app: Callable[..., Flask], engine: Engine, tmp_path: Path
) -> None:
    app = make_app()
    settings = portal_state(app).settings
    state = build_state(settings, engine=engine)
    result = run_demo(state, logins_file=tmp_path / "demo_logins.json")
    printed = {login.email: login for login in result.logins}
    for email in ("officer.one@mechanism.example", "recipient@nwu.example"):
        demo = printed[email]
        assert demo.password and demo.totp_secret
        with portal_state(app).sessions() as s:
            user_id = s.scalar(select(User.id).where(User.email == email))
        assert user_id is not None
        creds = Credentials(email, demo.password, demo.totp_secret, user_id)
        client = app.test_client()
        login(client, creds)
        home = client.get("/")
        assert home.status_code == 200
        assert demo.display_name in home.get_data(as_text=True)
