"""Enrolment over HTTP: invitation link -> password -> authenticator -> recovery codes -> sign in.

A real app on each database backend, driven through the Flask test client: the admin
invites through the form, the invitee follows the link in a browser of their own.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import create_app
from portal.accounts import totp
from portal.accounts.creation import NewUser
from portal.accounts.enrol_views import INVALID_MESSAGE, INVALID_TITLE
from portal.accounts.invitations import INVITATION_LIFETIME, invite
from portal.accounts.login import GENERIC_FAILURE
from portal.accounts.models import Invitation, RecoveryCode, User
from portal.accounts.passwords import verify_password
from portal.accounts.qr import qr_svg
from portal.audit import AuditEvent
from portal.config import Settings
from portal.db import utcnow
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import (
    Credentials,
    csrf_token,
    login,
    make_user,
    post_code,
    post_password,
)

INVITEE = "noor.salem@wcu.example.nl"
GOOD_PASSWORD = "lantern quarry violet 58"
LINK = re.compile(r'id="enrolment-link" type="text" readonly value="([^"]+)"')
SECRET = re.compile(r'<code class="secret-key" id="secret-key">([A-Z2-7 ]+)</code>')
pytest_plugins = ["tests.support.auth"]  # fixtures app, client, db
RECOVERY = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")
QR_TITLE = "QR code to add the Sharing Portal to your authenticator app"


@pytest.fixture
def admin(db: Session) -> Credentials:
    make.authority(db, "WCU-NL", name="War Crimes Unit NL", country="NL")
    db.commit()
    return make_user(db, "admin")


def text(response: TestResponse) -> str:
    return unescape(response.get_data(as_text=True))


def invite_through_form(app: Flask, admin: Credentials, **fields: str) -> str:
    """Sign in as ``admin`` in a browser of its own and invite; returns the link path."""
    browser = app.test_client()
    login(browser, admin)
    form = browser.get("/admin/users/invite")
    assert form.status_code == 200
    data = {
        "csrf_token": csrf_token(form),
        "email": INVITEE,
        "display_name": "Noor Salem",
        "role": "requester",
        "authority": "WCU-NL",
        "provider": "",
        **fields,
    }
    created = browser.post("/admin/users/invite", data=data)
    assert created.status_code == 200, text(created)
    body = text(created)
    assert "shown only once" in body
    found = LINK.search(body)
    assert found is not None
    assert found.group(1).startswith("http://localhost/enrol/")
    # The page after this one never shows the link again.
    assert found.group(1) not in text(browser.get("/admin/users"))
    return found.group(1).removeprefix("http://localhost")


def post_password_step(
    browser: FlaskClient, link: str, password: str, confirm: str | None = None
) -> TestResponse:
    page = browser.get(link)
    return browser.post(
        link,
        data={
            "csrf_token": csrf_token(page),
            "password": password,
            "confirm": password if confirm is None else confirm,
        },
    )


def open_authenticator(browser: FlaskClient, link: str) -> tuple[TestResponse, str]:
    page = browser.get(f"{link}/authenticator")
    assert page.status_code == 200, text(page)
    found = SECRET.search(text(page))
    assert found is not None
    return page, found.group(1).replace(" ", "")


def assert_invalid_link(response: TestResponse) -> None:
    assert response.status_code == 404
    body = text(response)
    assert INVALID_TITLE in body and INVALID_MESSAGE in body


def audit_dump(db: Session) -> str:
    db.expire_all()
    rows = db.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.details)).all()
    return json.dumps([list(row) for row in rows])


def test_full_enrolment_journey(app: Flask, db: Session, admin: Credentials) -> None:
    link = invite_through_form(app, admin)
    token = link.rsplit("/", 1)[1]
    invitee = app.test_client()

    # Step 1: the password. Weak ones are refused with the reason, beside the field.
    page = invitee.get(link)
    assert page.status_code == 200
    body = text(page)
    assert "Choose your password" in body and "Noor Salem" in body
    assert 'autocomplete="new-password"' in body and 'autocomplete="username"' in body
    for weak, reason in [
        ("short pass", "at least 12 characters"),
        ("q1w2e3r4t5y6", "commonly used passwords"),
        (INVITEE, "e-mail address"),
        ("noor.salem", "at least 12"),
    ]:
        refused = post_password_step(invitee, link, weak)
        assert refused.status_code == 400
        body = text(refused)
        assert reason in body
        assert 'role="alert"' in body and 'aria-invalid="true"' in body
        assert weak not in body.replace(INVITEE, "") or weak == INVITEE
    mismatch = post_password_step(invitee, link, GOOD_PASSWORD, GOOD_PASSWORD + "!")
    assert mismatch.status_code == 400 and "not the same" in text(mismatch)
    # Without a password the authenticator step sends the invitee back.
    assert invitee.get(f"{link}/authenticator").headers["Location"].endswith(link)

    chosen = post_password_step(invitee, link, GOOD_PASSWORD)
    assert chosen.status_code == 302
    assert chosen.headers["Location"].endswith(f"{link}/authenticator")
    assert db.scalar(select(User).where(User.email == INVITEE)) is None  # nothing yet

    # Step 2: the QR code (an SVG image, not stored, no style) and the key in text.
    page, secret = open_authenticator(invitee, link)
    body = text(page)
    assert f'src="{link}/qr.svg"' in body
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body
    assert not re.search(r"<script(?![^>]*\ssrc=)", body) and "style=" not in body  # no inline
    qr = invitee.get(f"{link}/qr.svg")
    assert qr.status_code == 200
    assert qr.mimetype == "image/svg+xml"
    assert qr.headers["Cache-Control"] == "no-store"
    svg = qr.get_data(as_text=True)
    assert svg.startswith("<svg") and "style" not in svg.lower() and "<script" not in svg
    assert svg == qr_svg(totp.provisioning_uri(secret, INVITEE), title=QR_TITLE)
    assert "secret=" + secret in totp.provisioning_uri(secret, INVITEE)
    # Reloading keeps the same key (the invitee may have scanned it already).
    assert open_authenticator(invitee, link)[1] == secret

    now = utcnow()
    right = totp.code_at(secret, now)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    refused = invitee.post(
        f"{link}/authenticator", data={"csrf_token": csrf_token(page), "code": wrong}
    )
    assert refused.status_code == 400 and "did not match" in text(refused)
    assert db.scalar(select(User).where(User.email == INVITEE)) is None

    # Step 3: confirmed -> account created, link consumed, recovery codes shown once.
    done = invitee.post(
        f"{link}/authenticator", data={"csrf_token": csrf_token(page), "code": right}
    )
    assert done.status_code == 200, text(done)
    body = text(done)
    codes = RECOVERY.findall(body)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "shown only this once" in body and 'href="/login"' in body
    user = db.scalars(select(User).where(User.email == INVITEE)).one()
    assert user.role == "requester" and user.totp_confirmed_at is not None
    assert db.scalars(select(Invitation.used_at)).one() is not None
    assert len(db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()) == 10

    # Reloading (the browser re-posts) or reopening the link shows nothing again.
    again = invitee.post(
        f"{link}/authenticator", data={"csrf_token": csrf_token(page), "code": right}
    )
    assert_invalid_link(again)
    assert not set(codes) & set(RECOVERY.findall(text(again)))
    assert_invalid_link(invitee.get(link))
    assert_invalid_link(invitee.get(f"{link}/qr.svg"))

    # The new account signs in with its password and authenticator.
    creds = Credentials(INVITEE, GOOD_PASSWORD, secret, user.id)
    fresh = app.test_client()
    assert login(fresh, creds).status_code == 303
    assert fresh.get("/account").status_code == 200

    dump = audit_dump(db)
    assert '"user.invite"' in dump and '"user.enrol"' in dump
    for secret_value in (token, secret, GOOD_PASSWORD, right, *codes, user.password_hash or "?"):
        assert secret_value not in dump


def test_enrolment_can_resume_with_the_same_link(
    app: Flask, db: Session, admin: Credentials
) -> None:
    link = invite_through_form(app, admin)
    first = app.test_client()
    assert post_password_step(first, link, GOOD_PASSWORD).status_code == 302
    _, secret = open_authenticator(first, link)
    # Back in the same browser: straight to the authenticator step, same key.
    resumed = first.get(link)
    assert resumed.status_code == 302 and resumed.headers["Location"].endswith("/authenticator")
    assert open_authenticator(first, link)[1] == secret

    # The choices are kept with the invitation, not in the browser: another browser with the
    # link resumes at the same step with the same key; nothing was consumed.
    second = app.test_client()
    resumed_elsewhere = second.get(link)
    assert resumed_elsewhere.status_code == 302
    assert open_authenticator(second, link)[1] == secret
    # Choosing a password again starts the authenticator step afresh.
    assert repost_password(second, link, "another good passphrase").status_code == 302
    page, other_secret = open_authenticator(second, link)
    assert other_secret != secret
    done = second.post(
        f"{link}/authenticator",
        data={"csrf_token": csrf_token(page), "code": totp.code_at(other_secret, utcnow())},
    )
    assert done.status_code == 200
    # The link is used now, in every browser.
    assert_invalid_link(first.get(f"{link}/authenticator"))


def repost_password(browser: FlaskClient, link: str, password: str) -> TestResponse:
    """Post the password step again (its page now forwards to the authenticator step)."""
    page = browser.get(f"{link}/authenticator")
    data = {"csrf_token": csrf_token(page), "password": password, "confirm": password}
    return browser.post(link, data=data)


def _session_contents(app: Flask, browser: FlaskClient) -> str:
    cookie = browser.get_cookie("portal_session")
    if cookie is None:
        return ""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return json.dumps(serializer.loads(cookie.value))


def test_the_cookie_carries_no_password_hash_or_secret_and_an_old_one_replays_nothing(
    app: Flask, db: Session, admin: Credentials
) -> None:
    link = invite_through_form(app, admin)
    browser = app.test_client()
    first_password = "first lantern choice 11"
    assert post_password_step(browser, link, first_password).status_code == 302
    page, secret = open_authenticator(browser, link)
    contents = _session_contents(app, browser)
    assert "argon2" not in contents and secret not in contents
    old_cookie = browser.get_cookie("portal_session")
    assert old_cookie is not None

    # A new password, then a wrong code.
    assert repost_password(browser, link, GOOD_PASSWORD).status_code == 302
    page, new_secret = open_authenticator(browser, link)
    wrong = str((int(totp.code_at(new_secret, utcnow())) + 1) % 1_000_000).zfill(6)
    failed = browser.post(
        f"{link}/authenticator", data={"csrf_token": csrf_token(page), "code": wrong}
    )
    assert failed.status_code == 400
    stored = db.scalar(select(Invitation).where(Invitation.email == INVITEE))
    assert stored is not None and stored.pending_totp_secret
    assert new_secret not in stored.pending_totp_secret  # sealed at rest
    assert stored.pending_password_hash and stored.pending_password_hash.startswith("$argon2")

    # The old cookie brings back neither the first password nor the first secret.
    browser.set_cookie("portal_session", old_cookie.value)
    page, current = open_authenticator(browser, link)
    assert current == new_secret
    done = browser.post(
        f"{link}/authenticator",
        data={"csrf_token": csrf_token(page), "code": totp.code_at(current, utcnow())},
    )
    assert done.status_code == 200, text(done)
    db.expire_all()
    used = db.scalar(select(Invitation).where(Invitation.email == INVITEE))
    assert used is not None and used.used_at is not None
    assert used.pending_password_hash is None and used.pending_totp_secret is None
    user = db.scalar(select(User).where(User.email == INVITEE))
    assert user is not None
    assert verify_password(user.password_hash or "", GOOD_PASSWORD)
    assert not verify_password(user.password_hash or "", first_password)


def test_expired_used_and_unknown_links_get_one_clear_message(
    app: Flask, db: Session, admin: Credentials
) -> None:
    admin_user = db.get(User, admin.user_id)
    assert admin_user is not None
    long_ago = utcnow() - INVITATION_LIFETIME - timedelta(minutes=1)
    _, expired = invite(
        db,
        NewUser("old@wcu.example.nl", "Old Invite", "admin"),
        invited_by=admin_user,
        now=long_ago,
    )
    db.commit()
    browser = app.test_client()
    for path in (
        f"/enrol/{expired}",
        f"/enrol/{expired}/authenticator",
        f"/enrol/{expired}/qr.svg",
    ):
        assert_invalid_link(browser.get(path))
    token = csrf_token(browser.get("/login"))
    for path in (f"/enrol/{expired}", f"/enrol/{expired}/authenticator"):
        data = {"csrf_token": token, "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD}
        assert_invalid_link(browser.post(path, data=data | {"code": "123456"}))
    assert_invalid_link(browser.get("/enrol/not-a-real-token"))
    assert_invalid_link(browser.get("/enrol/" + "x" * 300))

    # Just inside 48 hours the link still works.
    _, fresh = invite(
        db,
        NewUser("new@wcu.example.nl", "New Invite", "admin"),
        invited_by=admin_user,
        now=utcnow() - INVITATION_LIFETIME + timedelta(minutes=5),
    )
    db.commit()
    assert browser.get(f"/enrol/{fresh}").status_code == 200


def test_enrolment_forms_need_the_csrf_token(app: Flask, admin: Credentials) -> None:
    link = invite_through_form(app, admin)
    browser = app.test_client()
    refused = browser.post(link, data={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD})
    assert refused.status_code == 400
    assert "Form expired" in text(refused)
    assert browser.get(link).status_code == 200  # still unused


def test_duplicate_email_refused_in_the_invite_form(app: Flask, admin: Credentials) -> None:
    invite_through_form(app, admin)
    browser = app.test_client()
    login(browser, admin)
    form = browser.get("/admin/users/invite")
    for email, words in [
        (INVITEE.upper(), "already has an open invitation"),
        (admin.email, "already has an account"),
    ]:
        refused = browser.post(
            "/admin/users/invite",
            data={
                "csrf_token": csrf_token(form),
                "email": email,
                "display_name": "Someone",
                "role": "admin",
                "authority": "",
                "provider": "",
            },
        )
        assert refused.status_code == 400
        body = text(refused)
        assert words in body and 'role="alert"' in body
        assert 'href="#email"' in body  # the summary points at the field


def test_login_before_enrolment_is_complete_fails_generically(
    app: Flask, db: Session, admin: Credentials
) -> None:
    link = invite_through_form(app, admin)
    browser = app.test_client()
    assert post_password_step(browser, link, GOOD_PASSWORD).status_code == 302
    open_authenticator(browser, link)
    attempt = post_password(app.test_client(), INVITEE, GOOD_PASSWORD)
    assert attempt.status_code == 401 and GENERIC_FAILURE in text(attempt)
    assert post_code(app.test_client(), "123456").status_code == 401


def test_enrolment_posts_are_rate_limited_per_address(
    settings: Settings, engine: Engine, db: Session
) -> None:
    """Each password-step POST costs an argon2 hash: a holder of a link cannot make the
    server hash without limit."""
    limited = create_app(settings.with_overrides(login_rate_limit="3 per minute"))
    try:
        with portal_state(limited).sessions() as session:
            admin_user = session.get(User, make_user(session, "admin").user_id)
            assert admin_user is not None
            _, token = invite(
                session,
                NewUser("rate.limited@example.test", "Rate Limited", "admin"),
                invited_by=admin_user,
            )
            session.commit()
        browser = limited.test_client()
        link = f"/enrol/{token}"
        statuses = [post_password_step(browser, link, "short").status_code for _ in range(4)]
        assert statuses == [400, 400, 400, 429]
    finally:
        portal_state(limited).engine.dispose()
