"""Account administration: the domain rules (portal.accounts.user_admin) and the admin pages over
HTTP."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts import totp
from portal.accounts.invitations import complete_enrolment, find_invitation, open_enrolment
from portal.accounts.login import GENERIC_FAILURE
from portal.accounts.models import Invitation, RecoveryCode, User
from portal.accounts.recovery import issue_recovery_codes
from portal.accounts.sessions import load_session, start_session
from portal.accounts.totp_seeds import open_seed
from portal.accounts.user_admin import (
    UserAdminError,
    change_role,
    deactivate,
    reactivate,
    reset_2fa,
    user_status,
)
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.registry.models import Provider, RecipientKey
from portal.state import portal_state
from tests.notifications.test_notifications import Sink, smtp_sink  # noqa: F401 - a fixture
from tests.support import factories as make
from tests.support.auth import (
    Credentials,
    csrf_token,
    login,
    make_user,
    post_password,
)

LINK = re.compile(r'id="enrolment-link" type="text" readonly value="http://localhost([^"]+)"')
SECRET = re.compile(r'<code class="secret-key" id="secret-key">([A-Z2-7 ]+)</code>')
pytest_plugins = ["tests.support.auth"]  # fixtures app, client, db
RECOVERY = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")
FINGERPRINT = "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"


def text(response: TestResponse) -> str:
    return unescape(response.get_data(as_text=True))


def user(db: Session, who: Credentials | User) -> User:
    """The user as now stored (``who`` re-read from the database)."""
    db.expire_all()
    found = db.get(User, who.user_id if isinstance(who, Credentials) else who.id)
    assert found is not None
    return found


def actions(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    browser = app.test_client()
    login(browser, creds)
    assert browser.get("/account").status_code == 200
    return browser


def post_action(browser: FlaskClient, page: str, action: str, **data: str) -> TestResponse:
    form = browser.get(page)
    assert form.status_code == 200, text(form)
    return browser.post(action, data={"csrf_token": csrf_token(form), **data})


def assert_bounced(browser: FlaskClient) -> None:
    response = browser.get("/account")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def assert_login_fails(app: Flask, creds: Credentials) -> None:
    """The first step (or, when that passes, the second) fails with the generic message."""
    browser = app.test_client()
    first = post_password(browser, creds.email, creds.password)
    if first.status_code == 303:
        page = browser.get("/login/code")
        code = totp.code_at(creds.totp_secret, utcnow())
        first = browser.post("/login/code", data={"csrf_token": csrf_token(page), "code": code})
    assert first.status_code == 401
    assert GENERIC_FAILURE in text(first)


# --- domain rules ---------------------------------------------------------------------------


def test_deactivate_ends_sessions_revokes_links_and_is_audited(db: Session) -> None:
    admin = user(db, make_user(db, "admin"))
    target = user(db, make_user(db, "recipient"))
    link = reset_2fa(db, target, by=admin)  # an open re-enrolment link
    token = start_session(db, target)
    db.commit()
    assert open_enrolment(db, link) is not None

    deactivate(db, target, by=admin)
    db.commit()
    assert not target.is_active and user_status(target) == "deactivated"
    assert load_session(db, token) is None
    assert find_invitation(db, link) is None and open_enrolment(db, link) is None
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.deactivate")).one()
    assert event.actor == f"user:{admin.id}" and event.target == f"user:{target.id}"
    assert json.loads(event.details) == {"sessions_ended": 1, "links_revoked": 1}

    with pytest.raises(UserAdminError, match="already deactivated"):
        deactivate(db, target, by=admin)
    reactivate(db, target, by=admin)
    db.commit()
    assert target.is_active
    with pytest.raises(UserAdminError, match="already active"):
        reactivate(db, target, by=admin)
    assert actions(db)[-1] == "user.reactivate"
    assert open_enrolment(db, link) is None  # revoked links stay revoked


def test_admins_cannot_deactivate_or_demote_themselves(db: Session) -> None:
    admin = user(db, make_user(db, "admin"))
    make_user(db, "admin")  # not the last one: the self rule alone refuses
    events = len(actions(db))
    with pytest.raises(UserAdminError, match="your own account"):
        deactivate(db, admin, by=admin)
    with pytest.raises(UserAdminError, match="your own account"):
        change_role(db, admin, "legal_officer", by=admin)
    with pytest.raises(UserAdminError, match="your own account"):
        reset_2fa(db, admin, by=admin)
    db.rollback()
    assert user(db, admin).role == "admin"
    assert len(actions(db)) == events


def test_last_active_admin_can_be_neither_deactivated_nor_demoted(db: Session) -> None:
    only = user(db, make_user(db, "admin"))
    former = user(db, make_user(db, "admin"))
    former.is_active = False
    db.commit()
    # Even when someone else acts (a deactivated admin's stale request, a script).
    with pytest.raises(UserAdminError, match="last active administrator"):
        deactivate(db, only, by=former)
    with pytest.raises(UserAdminError, match="last active administrator"):
        change_role(db, only, "legal_officer", by=former)
    db.rollback()
    assert user(db, only).is_active

    # With a second active admin, either may be removed.
    reactivate(db, former, by=only)
    change_role(db, former, "legal_officer", by=only)
    db.commit()
    assert former.role == "legal_officer"


def test_change_role_validates_ends_sessions_and_audits(db: Session) -> None:
    admin = user(db, make_user(db, "admin"))
    target = user(db, make_user(db, "requester", authority_code="WCU-A"))
    make.provider(db, "NGO-B", name="Provider B", public_name="B")
    db.commit()
    token = start_session(db, target)
    db.commit()
    for role, authority, provider, field in [
        ("provider", None, None, "provider"),
        ("provider", "WCU-A", "NGO-B", "authority"),
        ("recipient", "NOPE", None, "authority"),
        ("legal_officer", "WCU-A", None, "authority"),
        ("overlord", None, None, "role"),
    ]:
        with pytest.raises(UserAdminError) as caught:
            change_role(db, target, role, authority, provider, by=admin)
        assert caught.value.field == field
        db.rollback()
    with pytest.raises(UserAdminError, match="Nothing to change"):
        change_role(db, target, "requester", "WCU-A", by=admin)
    db.rollback()
    assert load_session(db, token) is not None

    change_role(db, target, "provider", None, "NGO-B", by=admin)
    db.commit()
    assert (target.role, target.authority_id) == ("provider", None)
    assert target.provider_id == db.scalar(select(Provider.id).where(Provider.code == "NGO-B"))
    assert load_session(db, token) is None
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.role_change")).one()
    assert json.loads(event.details) == {
        "from": {"role": "requester", "authority": "WCU-A", "provider": None},
        "to": {"role": "provider", "authority": None, "provider": "NGO-B"},
        "sessions_ended": 1,
        "awaiting_approval": False,
    }


def test_reset_2fa_clears_the_authenticator_and_issues_a_reenrolment_link(db: Session) -> None:
    admin = user(db, make_user(db, "admin"))
    creds = make_user(db, "legal_officer")
    target = user(db, creds)
    old_codes = issue_recovery_codes(db, target)
    token = start_session(db, target)
    db.commit()
    now = utcnow()

    first = reset_2fa(db, target, by=admin, now=now)
    link = reset_2fa(db, target, by=admin, now=now)  # a second reset
    db.commit()
    assert target.totp_secret is None and target.totp_confirmed_at is None
    assert target.totp_last_step is None and user_status(target) == "enrolling"
    assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert load_session(db, token) is None
    assert find_invitation(db, first, now) is None  # replaced by the newer link
    invitation = find_invitation(db, link, now)
    assert invitation is not None and invitation.email == target.email
    assert invitation.expires_at == now + timedelta(hours=48)
    assert not totp.accept_code(target, totp.code_at(creds.totp_secret, now), now=now)

    enrolment = open_enrolment(db, link, now)
    assert enrolment is not None and enrolment.is_reenrolment and enrolment.user is target
    secret = totp.new_secret()
    _, codes = complete_enrolment(
        db,
        enrolment,
        password_hash=None,
        totp_secret=secret,
        code=totp.code_at(secret, now),
        now=now,
    )
    db.commit()
    assert open_seed(target) == secret and target.totp_confirmed_at == now
    assert secret not in (target.totp_secret or "")  # stored sealed
    assert target.role == "legal_officer" and user_status(target, now) == "active"
    assert open_enrolment(db, link, now) is None

    dump = json.dumps(list(db.execute(select(AuditEvent.details)).scalars()))
    assert '"user.2fa_reset"' not in dump  # details only; the action is a column
    for secret_value in (link, first, secret, creds.totp_secret, *codes, *old_codes):
        assert secret_value not in dump
    assert hashlib.sha256(link.encode()).hexdigest() not in dump
    assert actions(db).count("user.2fa_reset") == 2


def test_reset_2fa_refused_for_a_deactivated_account(db: Session) -> None:
    admin = user(db, make_user(db, "admin"))
    target = user(db, make_user(db, "provider"))
    deactivate(db, target, by=admin)
    with pytest.raises(UserAdminError, match="Reactivate it first"):
        reset_2fa(db, target, by=admin)


# --- pages: who may see what ----------------------------------------------------------------


@pytest.fixture
def registry(db: Session) -> dict[str, int]:
    """One authority with a current and an expired assessment and a verified key, and a
    provider with two items."""
    now = utcnow()
    authority = make.authority(db, "WCU-DE", name="War Crimes Unit DE", country="DE")
    provider = make.provider(db, "NGO-X", name="Rights Archive", public_name="Archive X")
    make.assessment(
        db, authority, "fair_trial", now=now, age_days=10, valid_days=355, code="A-1",
        basis="Independent review of the judiciary, 2025.", assessed_by="Legal Officer One",
    )  # fmt: skip
    make.assessment(
        db, authority, "witness_protection", now=now, age_days=800, valid_days=-435, code="A-2",
        finding="not_satisfied", basis="No protection programme in the old report.",
        assessed_by="Legal Officer Two",
    )  # fmt: skip
    db.add(
        RecipientKey(
            authority_id=authority.id,
            fingerprint=FINGERPRINT,
            armored="-----BEGIN PGP PUBLIC KEY BLOCK-----\n...",
            algorithm="rsa4096",
            uid="WCU DE <keys@wcu-de.example>",
            verified_by="Admin One",
            verified_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
            verification_method="fingerprint read aloud by phone",
        )
    )
    for number in (1, 2):
        make.item(
            db, provider, f"ITM-{number}", kind="document", title=f"Document {number}",
            media_type="application/pdf", original_filename=f"doc{number}.pdf",
            sensitivity="low",
        )  # fmt: skip
    db.commit()
    return {"authority": authority.id, "provider": provider.id}


ADMIN_ONLY_GETS = ["/admin/users", "/admin/users/invite", "/admin/users/{user}"]
ADMIN_ONLY_POSTS = [
    "/admin/users/invite",
    "/admin/users/{user}/deactivate",
    "/admin/users/{user}/reactivate",
    "/admin/users/{user}/unlock",
    "/admin/users/{user}/role",
    "/admin/users/{user}/reset-2fa",
    "/admin/invitations/1/cancel",
]
STAFF_GETS = [
    "/admin/authorities",
    "/admin/authorities/{authority}",
    "/admin/providers",
    "/admin/providers/{provider}",
]


@pytest.mark.parametrize("role", ["legal_officer", "requester", "recipient", "provider"])
def test_non_admins_are_refused_the_user_pages(
    app: Flask, db: Session, registry: dict[str, int], role: str
) -> None:
    victim = make_user(db, "requester", email="victim@example.test")
    browser = signed_in(app, make_user(db, role))
    token = csrf_token(browser.get("/account"))
    ids = {"user": victim.user_id, **registry}
    for path in ADMIN_ONLY_GETS:
        assert browser.get(path.format(**ids)).status_code == 403, path
    for path in ADMIN_ONLY_POSTS:
        response = browser.post(path.format(**ids), data={"csrf_token": token, "role": "admin"})
        assert response.status_code == 403, path
    for path in STAFF_GETS:
        expected = 200 if role == "legal_officer" else 403
        assert browser.get(path.format(**ids)).status_code == expected, path
    assert user(db, victim).role == "requester" and user(db, victim).is_active


def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, registry: dict[str, int]) -> None:
    browser = app.test_client()
    for path in [*ADMIN_ONLY_GETS, *STAFF_GETS]:
        response = browser.get(path.format(user=1, **registry))
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_authority_and_provider_pages_show_assessments_keys_and_items(
    app: Flask, db: Session, registry: dict[str, int]
) -> None:
    browser = signed_in(app, make_user(db, "legal_officer"))
    listing = text(browser.get("/admin/authorities"))
    assert "War Crimes Unit DE" in listing and "WCU-DE" in listing
    page = browser.get(f"/admin/authorities/{registry['authority']}")
    assert page.status_code == 200
    body = text(page)
    assert "Fair trial" in body and "Independent review of the judiciary" in body
    assert "Witness protection" in body and "Not satisfied" in body
    assert body.count("badge--current") == 1 and body.count("badge--expired") == 1
    assert "A1B2 C3D4 E5F6 0718 293A  4B5C 6D7E 8F90 1234 5678" in body
    assert "Admin One" in body and "2026-01-05 10:00 UTC" in body
    assert "fingerprint read aloud by phone" in body
    assert browser.get("/admin/authorities/999999").status_code == 404

    providers = text(browser.get("/admin/providers"))
    assert "Rights Archive" in providers and "Archive X" in providers
    detail = text(browser.get(f"/admin/providers/{registry['provider']}"))
    assert "Ngo" in detail or "NGO" in detail.upper()
    assert re.search(r"Items in the repository</dt><dd>2</dd>", detail)
    assert browser.get("/admin/providers/999999").status_code == 404
    # The legal officer sees no link to the admin-only pages.
    assert "/admin/users" not in text(browser.get("/admin/providers"))


# --- pages: what admins do ------------------------------------------------------------------


def test_users_list_shows_status_and_filters(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    recipient = make_user(
        db, "recipient", authority_code="WCU-R", email="rana.recipient@example.test"
    )
    provider = make_user(db, "provider", email="pavel.provider@example.test")
    locked = user(db, provider)
    locked.locked_until = utcnow() + timedelta(minutes=10)
    db.commit()
    browser = signed_in(app, admin)

    everyone = text(browser.get("/admin/users"))
    for creds in (admin, recipient, provider):
        assert creds.email in everyone
    assert "Locked" in everyone and "Active" in everyone and "Last sign-in" in everyone

    only_recipients = text(browser.get("/admin/users?role=recipient"))
    assert recipient.email in only_recipients and provider.email not in only_recipients
    only_locked = text(browser.get("/admin/users?status=locked"))
    assert provider.email in only_locked and recipient.email not in only_locked
    by_org = text(browser.get("/admin/users?organisation=authority:WCU-R"))
    assert recipient.email in by_org and admin.email not in by_org
    staff = text(browser.get("/admin/users?organisation=staff"))
    assert admin.email in staff and recipient.email not in staff
    search = text(browser.get("/admin/users?q=RANA"))
    assert recipient.email in search and provider.email not in search
    assert browser.get("/admin/users?q=%25_%5C&role=bogus&status=bogus").status_code == 200


def test_deactivation_bounces_the_open_session_and_login_fails(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    target = make_user(db, "requester")
    victim_browser = signed_in(app, target)
    admin_browser = signed_in(app, admin)
    page = f"/admin/users/{target.user_id}"

    # Without the CSRF token nothing happens.
    refused = admin_browser.post(f"{page}/deactivate")
    assert refused.status_code == 400 and user(db, target).is_active

    done = post_action(admin_browser, page, f"{page}/deactivate")
    assert done.status_code == 302 and done.headers["Location"].endswith(page)
    assert "deactivated" in text(admin_browser.get(page))
    assert not user(db, target).is_active
    assert_bounced(victim_browser)
    assert_login_fails(app, target)
    assert "user.deactivate" in actions(db)

    post_action(admin_browser, page, f"{page}/reactivate")
    assert user(db, target).is_active
    assert signed_in(app, target)
    assert "user.reactivate" in actions(db)


def test_role_change_form_validates_ends_sessions_and_audits(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    target = make_user(db, "requester", authority_code="WCU-A")
    victim_browser = signed_in(app, target)
    admin_browser = signed_in(app, admin)
    page = f"/admin/users/{target.user_id}"

    bad = post_action(
        admin_browser, page, f"{page}/role", role="recipient", authority="", provider=""
    )
    assert bad.status_code == 400
    body = text(bad)
    assert "Choose the authority" in body and 'role="alert"' in body and 'href="#authority"' in body
    assert user(db, target).role == "requester"
    assert victim_browser.get("/account").status_code == 200

    done = post_action(
        admin_browser, page, f"{page}/role", role="recipient", authority="WCU-A", provider=""
    )
    assert done.status_code == 302
    assert user(db, target).role == "recipient"
    assert_bounced(victim_browser)
    assert "user.role_change" in actions(db)


def test_reset_2fa_through_the_pages_then_reenrol(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    target = make_user(db, "provider")
    victim_browser = signed_in(app, target)
    admin_browser = signed_in(app, admin)
    page = f"/admin/users/{target.user_id}"

    shown = post_action(admin_browser, page, f"{page}/reset-2fa")
    assert shown.status_code == 200
    body = text(shown)
    found = LINK.search(body)
    assert found is not None and "shown only once" in body and "expires on" in body
    link = found.group(1)
    assert link not in text(admin_browser.get(page))
    assert_bounced(victim_browser)
    assert_login_fails(app, target)  # the old authenticator no longer works

    invitee = app.test_client()
    start = invitee.get(link)
    assert start.status_code == 302 and start.headers["Location"].endswith(f"{link}/authenticator")
    form = invitee.get(f"{link}/authenticator")
    found_secret = SECRET.search(text(form))
    assert found_secret is not None
    secret = found_secret.group(1).replace(" ", "")
    assert secret != target.totp_secret
    done = invitee.post(
        f"{link}/authenticator",
        data={"csrf_token": csrf_token(form), "code": totp.code_at(secret, utcnow())},
    )
    assert done.status_code == 200
    assert len(RECOVERY.findall(text(done))) == 10

    renewed = Credentials(target.email, target.password, secret, target.user_id)
    assert signed_in(app, renewed)
    assert {"user.2fa_reset", "user.enrol"} <= set(actions(db))


def test_own_account_and_last_admin_are_protected_in_the_pages(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    browser = signed_in(app, admin)
    page = f"/admin/users/{admin.user_id}"
    body = text(browser.get(page))
    assert "You cannot deactivate your own account" in body
    assert f"{page}/deactivate" not in body

    refused = post_action(browser, "/admin/users", f"{page}/deactivate")
    assert refused.status_code == 302
    assert "cannot deactivate your own account" in text(browser.get(page))
    demote = post_action(
        browser, "/admin/users", f"{page}/role", role="legal_officer", authority="", provider=""
    )
    assert demote.status_code == 400
    assert "cannot change the role of your own account" in text(demote)
    reset = post_action(browser, "/admin/users", f"{page}/reset-2fa")
    assert reset.status_code == 302
    me = user(db, admin)
    assert me.is_active and me.role == "admin" and open_seed(me) == admin.totp_secret
    assert browser.get("/account").status_code == 200


def test_invitation_can_be_cancelled_from_the_list(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    browser = signed_in(app, admin)
    form = browser.get("/admin/users/invite")
    created = browser.post(
        "/admin/users/invite",
        data={
            "csrf_token": csrf_token(form),
            "email": "lena.officer@mechanism.example.org",
            "display_name": "Lena Officer",
            "role": "legal_officer",
            "authority": "",
            "provider": "",
        },
    )
    found = LINK.search(text(created))
    assert found is not None
    listing = text(browser.get("/admin/users?status=invited"))
    assert "lena.officer@mechanism.example.org" in listing
    invitation_id = db.scalar(select(Invitation.id))
    done = post_action(browser, "/admin/users", f"/admin/invitations/{invitation_id}/cancel")
    assert done.status_code == 302
    assert "was cancelled" in text(browser.get("/admin/users"))
    assert app.test_client().get(found.group(1)).status_code == 404
    assert "user.invite_cancel" in actions(db)


def test_audit_of_admin_actions_holds_no_secrets(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    target = make_user(db, "recipient")
    browser = signed_in(app, admin)
    page = f"/admin/users/{target.user_id}"
    shown = post_action(browser, page, f"{page}/reset-2fa")
    found = LINK.search(text(shown))
    assert found is not None
    token = found.group(1).rsplit("/", 1)[1]
    post_action(browser, page, f"{page}/deactivate")
    db.expire_all()
    rows = db.execute(select(AuditEvent.action, AuditEvent.details)).all()
    dump = json.dumps([list(row) for row in rows])
    for secret_value in (token, admin.password, target.password, admin.totp_secret):
        assert secret_value not in dump
    assert target.totp_secret not in dump
    assert hashlib.sha256(token.encode()).hexdigest() not in dump
    assert {"user.2fa_reset", "user.deactivate"} <= {action for action, _ in rows}


def test_locked_account_can_be_unlocked(app: Flask, db: Session) -> None:
    admin = make_user(db, "admin")
    target = make_user(db, "recipient")
    locked = user(db, target)
    locked.locked_until = utcnow() + timedelta(minutes=15)
    db.commit()
    browser = signed_in(app, admin)
    page = f"/admin/users/{target.user_id}"
    assert f"{page}/unlock" in text(browser.get(page))
    assert_login_fails(app, target)

    done = post_action(browser, page, f"{page}/unlock")
    assert done.status_code == 302
    assert "was unlocked" in text(browser.get(page))
    assert user_status(user(db, target)) == "active"
    assert "auth.unlock" in actions(db)
    assert signed_in(app, target)
    again = post_action(browser, page, f"{page}/unlock")
    assert again.status_code == 302
    assert "not locked" in text(browser.get(page))


# --- four-eyes on accounts (issue 18) ---------------------------------------------------------


def invite_via_form(browser: FlaskClient, email: str, role: str, authority: str = "") -> str:
    """Invite through the form as the signed-in admin; returns the link (test mode shows it)."""
    created = post_action(
        browser,
        "/admin/users/invite",
        "/admin/users/invite",
        email=email,
        display_name="Mira Tovey",
        role=role,
        authority=authority,
        provider="",
    )
    assert created.status_code == 200, text(created)
    found = LINK.search(text(created))
    assert found is not None
    return found.group(1)


def enrol(db: Session, link: str) -> Credentials:
    """Follow the link as the invitee (the domain steps of the enrolment pages)."""
    enrolment = open_enrolment(db, link.rsplit("/", 1)[1])
    assert enrolment is not None
    password = "lantern quarry violet 58"
    secret = totp.new_secret()
    from portal.accounts.invitations import choose_password

    new, _ = complete_enrolment(
        db,
        enrolment,
        password_hash=choose_password(enrolment, password, profile="fast"),
        totp_secret=secret,
        code=totp.code_at(secret, utcnow() - timedelta(seconds=30)),
    )
    db.commit()
    return Credentials(new.email, password, secret, new.id)


def approve(browser: FlaskClient, who: Credentials) -> TestResponse:
    page = f"/admin/users/{who.user_id}"
    return post_action(browser, page, f"{page}/approve")


def test_an_invited_recipient_takes_effect_only_when_a_second_admin_approves(
    app: Flask, db: Session
) -> None:
    from portal.notifications.models import Notification

    inviter, approver = make_user(db, "admin"), make_user(db, "admin")
    existing = make_user(db, "recipient", authority_code="WCU-NL")
    inviting = signed_in(app, inviter)
    newcomer = enrol(
        db, invite_via_form(inviting, "mira.tovey@wcu.example.nl", "recipient", "WCU-NL")
    )

    assert user_status(user(db, newcomer)) == "awaiting_approval"
    assert_login_fails(app, newcomer)
    assert "Awaiting a second administrator" in text(
        inviting.get(f"/admin/users/{newcomer.user_id}")
    )

    refused = approve(inviting, newcomer)  # the inviter is not a second pair of eyes
    assert refused.status_code == 403
    assert "You invited (or promoted) this person" in text(refused)
    assert user(db, newcomer).approved_at is None
    assert_login_fails(app, newcomer)

    second = signed_in(app, approver)
    listing = text(second.get("/admin/users"))
    assert "1 account awaits a second administrator's approval" in listing
    waiting = text(second.get("/admin/users?status=awaiting_approval"))
    assert "mira.tovey@wcu.example.nl" in waiting
    done = approve(second, newcomer)
    assert done.status_code == 303
    approved = user(db, newcomer)
    assert approved.approved_by_id == approver.user_id and approved.approved_at is not None
    assert signed_in(app, newcomer)
    assert "user.approve" in actions(db)
    told = db.scalars(
        select(Notification.subject).where(Notification.user_id == existing.user_id)
    ).all()
    assert any("New recipient of your authority's packages: Mira Tovey" in s for s in told)

    again = approve(second, newcomer)
    assert again.status_code == 409
    assert "already been approved" in text(again)


def test_one_admin_cannot_make_a_second_admin_and_approve_with_it(app: Flask, db: Session) -> None:
    alone, other = make_user(db, "admin"), make_user(db, "admin")
    make.authority(db, "WCU-NL", name="War Crimes Unit NL", country="NL")
    db.commit()
    browser = signed_in(app, alone)
    accomplice = enrol(db, invite_via_form(browser, "second.admin@mechanism.example", "admin"))
    assert user_status(user(db, accomplice)) == "awaiting_approval"
    assert_login_fails(app, accomplice)  # an unapproved admin cannot act at all
    assert approve(browser, accomplice).status_code == 403

    # Even once a different admin approved it, the accomplice cannot approve what its creator
    # invites.
    assert approve(signed_in(app, other), accomplice).status_code == 303
    recipient = enrol(
        db, invite_via_form(browser, "mira.tovey@wcu.example.nl", "recipient", "WCU-NL")
    )
    refused = approve(signed_in(app, accomplice), recipient)
    assert refused.status_code == 403
    assert "created by the administrator who invited this person" in text(refused)
    assert user(db, recipient).approved_at is None
    assert approve(signed_in(app, other), recipient).status_code == 303


def test_self_approval_and_approval_of_what_needs_none_are_refused(db: Session) -> None:
    from portal.accounts.approval import ApprovalRefused, approve_account

    admin = db.get(User, make_user(db, "admin").user_id)
    requester = db.get(User, make_user(db, "requester").user_id)
    assert admin is not None and requester is not None
    admin.approved_at = None
    db.flush()
    with pytest.raises(ApprovalRefused, match="Only an active, approved administrator"):
        approve_account(db, admin, by=admin)
    other = db.get(User, make_user(db, "admin").user_id)
    assert other is not None
    with pytest.raises(ApprovalRefused, match="needs no approval") as refused:
        approve_account(db, requester, by=other)
    assert refused.value.status == 409


def test_promotion_to_admin_waits_for_a_second_admin(app: Flask, db: Session) -> None:
    promoter, approver = make_user(db, "admin"), make_user(db, "admin")
    target = make_user(db, "requester")
    browser = signed_in(app, promoter)
    changed = post_action(
        browser,
        f"/admin/users/{target.user_id}",
        f"/admin/users/{target.user_id}/role",
        role="admin",
        authority="",
        provider="",
    )
    assert changed.status_code == 302
    assert user_status(user(db, target)) == "awaiting_approval"
    assert_login_fails(app, target)
    assert approve(browser, target).status_code == 403
    assert approve(signed_in(app, approver), target).status_code == 303
    assert signed_in(app, target)


def test_of_two_concurrent_approvals_one_wins(sessions: object, db: Session, app: Flask) -> None:
    from portal.accounts.approval import ApprovalRefused, approve_account
    from portal.state import portal_state

    inviter = make_user(db, "admin")
    first, second = make_user(db, "admin"), make_user(db, "admin")
    newcomer = make_user(db, "legal_officer")
    pending = user(db, newcomer)
    pending.approved_at, pending.invited_by_id = None, inviter.user_id
    db.commit()
    factory = portal_state(app).sessions
    with factory() as one, factory() as two:
        target_one, target_two = one.get(User, newcomer.user_id), two.get(User, newcomer.user_id)
        by_one, by_two = one.get(User, first.user_id), two.get(User, second.user_id)
        assert target_one and target_two and by_one and by_two
        assert target_two.approved_at is None  # loaded before the first approval
        approve_account(one, target_one, by=by_one)
        one.commit()
        with pytest.raises(ApprovalRefused, match="already been approved") as refused:
            approve_account(two, target_two, by=by_two)
        assert refused.value.status == 409
        two.rollback()
    assert user(db, newcomer).approved_by_id == first.user_id


def _real_portal(make_app: Callable[..., Flask], **settings: Any) -> Flask:
    """A test portal whose requests see the settings of a real one (neither demo nor test)."""
    app = make_app(**settings)
    state = portal_state(app)
    state.settings = state.settings.with_overrides(testing=False, demo=False)
    return app


def test_outside_demo_mode_the_link_goes_to_the_invitee_by_mail_only(
    make_app: Callable[..., Flask],
    smtp_sink: Sink,  # noqa: F811 - the fixture imported above
) -> None:
    """A real portal (not demo, not test) never shows the link to the inviting admin: it is
    mailed to the invitee, and works from there."""
    app = _real_portal(
        make_app,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        smtp_from="p@m.example",
        base_url="https://portal.mechanism.example/",
    )
    with portal_state(app).sessions() as db:
        admin = make_user(db, "admin")
    browser = signed_in(app, admin)
    created = post_action(
        browser,
        "/admin/users/invite",
        "/admin/users/invite",
        email="mira.tovey@nwu.example",
        display_name="Mira Tovey",
        role="requester",
        authority="",
        provider="",
    )
    body = text(created)
    assert created.status_code == 400  # a requester needs an authority: nothing was sent
    assert not smtp_sink.messages
    with portal_state(app).sessions() as db:
        make.authority(db, "WCU-NL", name="War Crimes Unit NL", country="NL")
        db.commit()
    form = browser.get("/admin/users/invite")
    created = browser.post(
        "/admin/users/invite",
        data={
            "csrf_token": csrf_token(form),
            "email": "mira.tovey@nwu.example",
            "display_name": "Mira Tovey",
            "role": "requester",
            "authority": "WCU-NL",
            "provider": "",
        },
    )
    body = text(created)
    assert created.status_code == 200, body
    assert "/enrol/" not in body and LINK.search(body) is None
    assert "sent by e-mail to mira.tovey@nwu.example" in body
    assert smtp_sink.done.wait(5)
    (mail,) = smtp_sink.messages
    assert smtp_sink.envelopes[0][1] == ["mira.tovey@nwu.example"]
    # on the configured address, not on the Host the admin's browser sent (localhost here)
    found = re.search(
        r"https://portal\.mechanism\.example(/enrol/[A-Za-z0-9_-]+)", mail.get_content()
    )
    assert found is not None
    with portal_state(app).sessions() as db:
        assert open_enrolment(db, found.group(1).rsplit("/", 1)[1]) is not None
        assert found.group(1) not in json.dumps(
            [list(r) for r in db.execute(select(AuditEvent.details))]
        )


def test_outside_demo_mode_no_invitation_without_mail(make_app: Callable[..., Flask]) -> None:
    app = _real_portal(make_app, smtp_host=None)
    with portal_state(app).sessions() as db:
        admin = make_user(db, "admin")
        make.authority(db, "WCU-NL", name="War Crimes Unit NL", country="NL")
        db.commit()
    created = post_action(
        signed_in(app, admin),
        "/admin/users/invite",
        "/admin/users/invite",
        email="mira.tovey@nwu.example",
        display_name="Mira Tovey",
        role="requester",
        authority="WCU-NL",
        provider="",
    )
    assert created.status_code == 400
    assert "cannot mail enrolment links" in text(created)
    with portal_state(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Invitation)) == 0
