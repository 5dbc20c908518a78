"""Invitations and enrolment as domain functions, on both database backends."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts import totp
from portal.accounts.creation import NewUser
from portal.accounts.invitations import (
    INVITATION_LIFETIME,
    EnrolmentError,
    InvitationError,
    WrongCode,
    cancel_invitation,
    choose_password,
    complete_enrolment,
    find_invitation,
    invite,
    open_enrolment,
)
from portal.accounts.models import Invitation, RecoveryCode, User
from portal.accounts.password_policy import WeakPassword
from portal.accounts.passwords import hash_password, verify_password
from portal.accounts.recovery import use_recovery_code
from portal.accounts.totp_seeds import open_seed
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.registry.models import Authority, Provider
from tests.support import factories as make

NOW = utcnow().replace(microsecond=0)
PASSWORD = "lantern quarry violet 58"


@dataclass
class World:
    admin: User
    authority: Authority
    provider: Provider


def add_user(session: Session, email: str, role: str = "admin", **org: int | None) -> User:
    """A fully enrolled user, made directly (these tests are about invitations)."""
    return make.user(
        session, role, email=email, display_name=email.split("@")[0],
        password_hash=hash_password("irrelevant password here", profile="fast"),
        totp_secret=totp.new_secret(), totp_confirmed_at=NOW - timedelta(days=30), **org,
    )  # fmt: skip


@pytest.fixture
def world(session: Session) -> World:
    authority = make.authority(session, "WCU-NL", name="War Crimes Unit NL", country="NL")
    provider = make.provider(session, "NGO-1", name="Syrian Archive Test", public_name="NGO One")
    admin = add_user(session, "root.admin@mechanism.example.org")
    session.commit()
    return World(admin=admin, authority=authority, provider=provider)


def spec(
    email: str = "noor.salem@wcu.example.nl", role: str = "requester", **codes: str
) -> NewUser:
    if role in ("requester", "recipient") and not codes:
        codes = {"authority_code": "WCU-NL"}
    return NewUser(email=email, display_name="Noor Salem", role=role, **codes)


def audit_text(session: Session) -> str:
    rows = session.execute(select(AuditEvent.action, AuditEvent.target, AuditEvent.details)).all()
    return json.dumps([list(row) for row in rows])


def count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# --- invite ---------------------------------------------------------------------------------


def test_invite_stores_only_the_hash_and_expires_after_48_hours(
    session: Session, world: World
) -> None:
    invitation, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    session.commit()

    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invitation.expires_at == NOW + timedelta(hours=48) == NOW + INVITATION_LIFETIME
    assert invitation.email == "noor.salem@wcu.example.nl"
    assert invitation.authority_id == world.authority.id and invitation.provider_id is None
    assert invitation.invited_by_id == world.admin.id and invitation.used_at is None
    stored = session.execute(select(Invitation.__table__)).all()
    assert token not in repr(stored)

    assert find_invitation(session, token, NOW) == invitation
    assert find_invitation(session, token, NOW + timedelta(hours=47, minutes=59)) == invitation
    assert find_invitation(session, token, NOW + timedelta(hours=48)) is None
    assert find_invitation(session, token + "x", NOW) is None
    assert find_invitation(session, "", NOW) is None

    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.invite")).one()
    assert event.actor == f"user:{world.admin.id}"
    assert event.target == f"invitation:{invitation.id}"
    details = json.loads(event.details)
    assert details["email"] == "noor.salem@wcu.example.nl"
    assert details["role"] == "requester" and details["authority"] == "WCU-NL"
    assert token not in audit_text(session) and invitation.token_hash not in audit_text(session)


def test_invite_normalises_email_and_name(session: Session, world: World) -> None:
    invitation, _ = invite(
        session,
        NewUser(
            " Noor.Salem@WCU.example.NL ", "  Noor   Salem ", "provider", provider_code="NGO-1"
        ),
        invited_by=world.admin,
        now=NOW,
    )
    assert invitation.email == "noor.salem@wcu.example.nl"
    assert invitation.display_name == "Noor Salem"
    assert invitation.provider_id == world.provider.id and invitation.authority_id is None


def test_duplicate_email_refused_for_account_and_open_invitation(
    session: Session, world: World
) -> None:
    with pytest.raises(InvitationError, match="already has an account") as caught:
        invite(session, spec("ROOT.admin@mechanism.example.org", "admin"), invited_by=world.admin)
    assert caught.value.field == "email"

    invite(session, spec(), invited_by=world.admin, now=NOW)
    session.commit()
    with pytest.raises(InvitationError, match="open invitation"):
        invite(session, spec("NOOR.SALEM@wcu.example.nl"), invited_by=world.admin, now=NOW)
    session.rollback()
    # Once the first has expired a new one may be sent.
    later = NOW + INVITATION_LIFETIME
    invite(session, spec(), invited_by=world.admin, now=later)
    session.commit()
    assert count(session, Invitation) == 2


@pytest.mark.parametrize(
    ("new", "field", "words"),
    [
        (spec(role="requester", authority_code=""), "authority", "Choose the authority"),
        (spec(role="recipient", authority_code="NOPE"), "authority", "no authority 'NOPE'"),
        (spec(role="requester", authority_code="WCU-NL", provider_code="NGO-1"), "provider", ""),
        (spec(role="provider"), "provider", "Choose the provider"),
        (spec(role="provider", provider_code="NGO-1", authority_code="WCU-NL"), "authority", ""),
        (spec(role="legal_officer", authority_code="WCU-NL"), "authority", "leave both empty"),
        (spec(role="admin", provider_code="NGO-1"), "provider", "leave both empty"),
        (spec(role="superuser"), "role", "Choose one of the roles"),
        (spec(email="not-an-address"), "email", "name@example.org"),
        (spec(email="a@b"), "email", "name@example.org"),
        (NewUser("x@y.example.org", "   ", "admin"), "display_name", "name"),
    ],
)
def test_invalid_invitations_refused_and_nothing_stored(
    session: Session, world: World, new: NewUser, field: str, words: str
) -> None:
    events_before = count(session, AuditEvent)
    with pytest.raises(InvitationError) as caught:
        invite(session, new, invited_by=world.admin, now=NOW)
    session.rollback()
    assert caught.value.field == field
    assert words in caught.value.message
    assert count(session, Invitation) == 0
    assert count(session, AuditEvent) == events_before


def test_cancelled_invitation_stops_working(session: Session, world: World) -> None:
    invitation, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    cancel_invitation(session, invitation, by=world.admin, now=NOW + timedelta(minutes=5))
    session.commit()
    assert find_invitation(session, token, NOW + timedelta(minutes=5)) is None
    assert open_enrolment(session, token, NOW + timedelta(minutes=5)) is None
    with pytest.raises(InvitationError, match="no longer open"):
        cancel_invitation(session, invitation, by=world.admin, now=NOW + timedelta(minutes=6))
    actions = session.scalars(select(AuditEvent.action)).all()
    assert "user.invite_cancel" in actions


# --- enrolment ------------------------------------------------------------------------------


def test_new_enrolment_creates_the_account_only_when_the_code_is_confirmed(
    session: Session, world: World
) -> None:
    invitation, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    session.commit()
    enrolment = open_enrolment(session, token, NOW)
    assert enrolment is not None and not enrolment.is_reenrolment

    with pytest.raises(WeakPassword):
        choose_password(enrolment, "short", profile="fast")
    with pytest.raises(WeakPassword):
        choose_password(enrolment, "noor.salem@wcu.example.nl", profile="fast")
    password_hash = choose_password(enrolment, PASSWORD, profile="fast")
    assert verify_password(password_hash, PASSWORD, profile="fast")
    assert count(session, User) == 1  # nothing written yet

    secret = totp.new_secret()
    wrong = f"{(int(totp.code_at(secret, NOW)) + 1) % 1_000_000:06d}"
    with pytest.raises(WrongCode):
        complete_enrolment(
            session, enrolment, password_hash=password_hash, totp_secret=secret, code=wrong, now=NOW
        )
    session.rollback()
    assert count(session, User) == 1
    assert open_enrolment(session, token, NOW) is not None  # may try again

    enrolment = open_enrolment(session, token, NOW)
    assert enrolment is not None
    code = totp.code_at(secret, NOW)
    user, codes = complete_enrolment(
        session, enrolment, password_hash=password_hash, totp_secret=secret, code=code, now=NOW
    )
    session.commit()

    assert (user.email, user.display_name, user.role) == (
        "noor.salem@wcu.example.nl",
        "Noor Salem",
        "requester",
    )
    assert user.authority_id == world.authority.id and user.is_active
    assert open_seed(user) == secret and user.totp_confirmed_at == NOW
    assert secret not in (user.totp_secret or "")  # stored sealed
    assert user.password_hash == password_hash
    assert len(codes) == 10 and len(set(codes)) == 10
    assert count(session, RecoveryCode) == 10
    session.refresh(invitation)
    assert invitation.used_at == NOW
    # The link is spent; the code that confirmed the app cannot be replayed at sign-in.
    assert open_enrolment(session, token, NOW) is None
    assert find_invitation(session, token, NOW) is None
    assert not totp.accept_code(user, code, now=NOW)
    assert use_recovery_code(session, user, codes[0], now=NOW)
    assert not use_recovery_code(session, user, codes[0], now=NOW)

    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.enrol")).one()
    assert event.actor == event.target == f"user:{user.id}"
    assert json.loads(event.details) == {
        "invitation": invitation.id,
        "reenrolment": False,
        "role": "requester",
    }
    log = audit_text(session)
    for secret_value in (token, secret, password_hash, PASSWORD, code, *codes):
        assert secret_value not in log


def test_enrolment_needs_a_password_first(session: Session, world: World) -> None:
    _, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    enrolment = open_enrolment(session, token, NOW)
    assert enrolment is not None
    secret = totp.new_secret()
    with pytest.raises(EnrolmentError, match="password"):
        complete_enrolment(
            session,
            enrolment,
            password_hash=None,
            totp_secret=secret,
            code=totp.code_at(secret, NOW),
            now=NOW,
        )


def test_expired_link_cannot_complete(session: Session, world: World) -> None:
    _, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    session.commit()
    assert open_enrolment(session, token, NOW + INVITATION_LIFETIME) is None
    assert open_enrolment(session, token, NOW + INVITATION_LIFETIME - timedelta(seconds=1))


def test_link_for_an_email_that_got_an_enrolled_account_is_refused(
    session: Session, world: World
) -> None:
    _, token = invite(session, spec(), invited_by=world.admin, now=NOW)
    add_user(session, "noor.salem@wcu.example.nl", "requester", authority_id=world.authority.id)
    session.commit()
    # Completing would overwrite a working account's authenticator: the link is dead.
    assert open_enrolment(session, token, NOW) is None
