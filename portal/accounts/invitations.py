"""Invitations and enrolment: how a person gets (or gets back) an account.

An admin invites someone (:func:`invite`): a one-time link valid for 48 hours whose
token only the admin sees, once; the database keeps its sha256. Following the link,
the person chooses a password, confirms a code from an authenticator app and is
shown recovery codes. The account is created, and the invitation consumed, only
when the code is confirmed, so an abandoned enrolment leaves nothing behind and can
be resumed with the same link until it expires.

A 2FA reset (:mod:`portal.accounts.user_admin`) issues the same kind of link for an existing
account: an invitation whose e-mail already has an account is a re-enrolment. It
sets up a new authenticator only; the password stays, so the link alone does not
give anyone the account.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts import totp, totp_seeds
from portal.accounts.approval import ask_for_approval, needs_approval
from portal.accounts.creation import NewUser
from portal.accounts.models import ROLES, Invitation, User
from portal.accounts.password_policy import check_new_password
from portal.accounts.passwords import hash_password
from portal.accounts.recovery import issue_recovery_codes
from portal.authz.roles import is_known_role, is_provider_user, works_for_an_authority
from portal.db import utcnow
from portal.pages.i18n import N_
from portal.registry.models import Authority, Provider

INVITATION_LIFETIME = timedelta(hours=48)
MAX_DISPLAY_NAME = 200
MAX_EMAIL = 254
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s.]+"
_EMAIL = re.compile(EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

__all__ = [
    "EMAIL_PATTERN",
    "INVITATION_LIFETIME",
    "Enrolment",
    "EnrolmentError",
    "InvitationError",
    "WrongCode",
    "cancel_invitation",
    "choose_password",
    "complete_enrolment",
    "find_invitation",
    "invite",
    "issue_invitation",
    "open_enrolment",
    "open_invitation_for",
    "resolve_organisation",
    "revoke_open_invitations",
    "token_hash",
]


class InvitationError(ValueError):
    """An invitation could not be made. ``field`` names the form field at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class EnrolmentError(ValueError):
    """An enrolment step could not be completed; the message says why."""


class WrongCode(EnrolmentError):
    """The authenticator code did not match the new secret."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- inviting -----------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """Lowercased and stripped; raises :class:`InvitationError` when it is no address."""
    address = email.strip().lower()
    if len(address) > MAX_EMAIL or not _EMAIL.fullmatch(address):
        raise InvitationError(
            "Enter an e-mail address in the form name@example.org.", field="email"
        )
    return address


def resolve_organisation(
    db: Session, role: str, authority_code: str | None, provider_code: str | None
) -> tuple[int | None, int | None]:
    """``(authority_id, provider_id)`` for a user of ``role``; raises :class:`InvitationError`.

    Requesters and recipients belong to an authority, providers to a provider, staff to
    neither (the same rule the database enforces).
    """
    if not is_known_role(role):
        raise InvitationError(f"Choose one of the roles: {', '.join(ROLES)}.", field="role")
    authority_code = (authority_code or "").strip() or None
    provider_code = (provider_code or "").strip() or None
    if works_for_an_authority(role):
        if provider_code:
            raise InvitationError(
                f"A {role} belongs to an authority, not a provider.", field="provider"
            )
        if not authority_code:
            raise InvitationError(f"Choose the authority this {role} works for.", field="authority")
        found = db.scalar(select(Authority.id).where(Authority.code == authority_code))
        if found is None:
            raise InvitationError(f"There is no authority {authority_code!r}.", field="authority")
        return found, None
    if is_provider_user(role):
        if authority_code:
            raise InvitationError(
                "A provider user belongs to a provider, not an authority.", field="authority"
            )
        if not provider_code:
            raise InvitationError("Choose the provider this user represents.", field="provider")
        found = db.scalar(select(Provider.id).where(Provider.code == provider_code))
        if found is None:
            raise InvitationError(f"There is no provider {provider_code!r}.", field="provider")
        return None, found
    if authority_code or provider_code:
        raise InvitationError(
            f"A {role.replace('_', ' ')} is Mechanism staff and belongs to no authority or "
            "provider; leave both empty.",
            field="authority" if authority_code else "provider",
        )
    return None, None


def open_invitation_for(db: Session, email: str, now: datetime) -> Invitation | None:
    """The newest unused, unexpired invitation for ``email``."""
    return db.scalar(
        select(Invitation)
        .where(Invitation.email == email, Invitation.used_at.is_(None), Invitation.expires_at > now)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(1)
    )


def revoke_open_invitations(db: Session, email: str, now: datetime) -> int:
    """Make every open invitation for ``email`` expire now; returns how many there were."""
    result = db.execute(
        update(Invitation)
        .where(Invitation.email == email, Invitation.used_at.is_(None), Invitation.expires_at > now)
        .values(expires_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def issue_invitation(
    db: Session,
    *,
    email: str,
    display_name: str,
    role: str,
    authority_id: int | None,
    provider_id: int | None,
    invited_by: User | None,
    now: datetime,
) -> tuple[Invitation, str]:
    """Store a new invitation and return it with its token (the only copy). No checks, no audit."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        token_hash=token_hash(token),
        email=email,
        display_name=display_name,
        role=role,
        authority_id=authority_id,
        provider_id=provider_id,
        invited_by_id=invited_by.id if invited_by is not None else None,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    db.add(invitation)
    db.flush()
    return invitation, token


def _display_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvitationError("Enter the person's name.", field="display_name")
    if len(cleaned) > MAX_DISPLAY_NAME or _CONTROL.search(cleaned):
        raise InvitationError(
            f"The name must be at most {MAX_DISPLAY_NAME} characters.", field="display_name"
        )
    return cleaned


def invite(
    db: Session, spec: NewUser, *, invited_by: User, now: datetime | None = None
) -> tuple[Invitation, str]:
    """Invite a person to enrol with ``spec``'s role and organisation; audited.

    Returns the invitation and its token. Refuses an e-mail that already has an account
    or an open invitation. Flushes; the caller commits.
    """
    now = now or utcnow()
    email = normalise_email(spec.email)
    display_name = _display_name(spec.display_name)
    authority_id, provider_id = resolve_organisation(
        db, spec.role, spec.authority_code, spec.provider_code
    )
    if db.scalar(select(User.id).where(User.email == email)) is not None:
        raise InvitationError(
            f"{email} already has an account. To give its owner a new enrolment link, "
            "reset their two-factor authentication on their user page.",
            field="email",
        )
    if open_invitation_for(db, email, now) is not None:
        raise InvitationError(
            f"{email} already has an open invitation. Cancel it first to send a new one.",
            field="email",
        )
    invitation, token = issue_invitation(
        db,
        email=email,
        display_name=display_name,
        role=spec.role,
        authority_id=authority_id,
        provider_id=provider_id,
        invited_by=invited_by,
        now=now,
    )
    audit.record(
        db,
        audit.actor_label(invited_by),
        "user.invite",
        f"invitation:{invitation.id}",
        {
            "email": email,
            "role": spec.role,
            "authority": (spec.authority_code or "").strip() or None,
            "provider": (spec.provider_code or "").strip() or None,
            "expires_at": invitation.expires_at.isoformat(),
        },
        now=now,
    )
    return invitation, token


def cancel_invitation(
    db: Session, invitation: Invitation, *, by: User, now: datetime | None = None
) -> None:
    """Withdraw an open invitation (its link stops working); audited."""
    now = now or utcnow()
    if invitation.used_at is not None or invitation.expires_at <= now:
        raise InvitationError("This invitation is no longer open: it was used or has expired.")
    invitation.expires_at = now
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "user.invite_cancel",
        f"invitation:{invitation.id}",
        {"email": invitation.email},
        now=now,
    )


def find_invitation(db: Session, token: str, now: datetime | None = None) -> Invitation | None:
    """The unused, unexpired invitation whose token is ``token``, or None."""
    now = now or utcnow()
    if not token or len(token) > 200:
        return None
    found = db.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    return found


# --- enrolling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """An open invitation being followed, and the account it re-enrols (None: a new one)."""

    invitation: Invitation
    user: User | None

    @property
    def is_reenrolment(self) -> bool:
        return self.user is not None

    @property
    def email(self) -> str:
        return self.invitation.email


def open_enrolment(db: Session, token: str, now: datetime | None = None) -> Enrolment | None:
    """The enrolment ``token`` opens, or None when the link is not (or no longer) valid.

    A link for an e-mail that has an account only re-enrols that account while it is
    active and has no confirmed authenticator (its 2FA was reset).
    """
    invitation = find_invitation(db, token, now)
    if invitation is None:
        return None
    user = db.scalar(select(User).where(User.email == invitation.email))
    if user is not None and (not user.is_active or user.totp_confirmed_at is not None):
        return None
    return Enrolment(invitation=invitation, user=user)


def choose_password(enrolment: Enrolment, password: str, *, profile: str = "standard") -> str:
    """Check a new account's password against the policy and return its hash (made with
    the argon2 cost ``profile``, ``Settings.hash_profile``).

    Raises :class:`~portal.accounts.password_policy.WeakPassword`.
    """
    if enrolment.is_reenrolment:
        raise EnrolmentError("This link sets up a new authenticator; your password stays.")
    check_new_password(password, email=enrolment.email)
    return hash_password(password, profile=profile)


def complete_enrolment(
    db: Session,
    enrolment: Enrolment,
    *,
    password_hash: str | None,
    totp_secret: str,
    code: str,
    now: datetime | None = None,
) -> tuple[User, list[str]]:
    """Confirm the authenticator with ``code``, consume the invitation, issue recovery codes.

    Creates the account for a new enrolment (``password_hash`` from
    :func:`choose_password`) or sets the new secret on the re-enrolled one. Returns the
    user and the recovery codes (plaintext, to show once). Raises :class:`WrongCode` or
    :class:`EnrolmentError`; on any error the caller rolls back. Flushes; the caller commits.
    """
    now = now or utcnow()
    invitation = enrolment.invitation
    user = enrolment.user
    if user is None:
        if not password_hash:
            raise EnrolmentError("Choose your password first.")
        user = User(
            email=invitation.email,
            display_name=invitation.display_name,
            role=invitation.role,
            authority_id=invitation.authority_id,
            provider_id=invitation.provider_id,
            password_hash=password_hash,
            failed_logins=0,
            session_epoch=0,
            is_active=True,
            created_at=now,
            invited_by_id=invitation.invited_by_id,
            # Recipients, legal officers and admins wait for a second admin (approval.py).
            approved_at=None if needs_approval(invitation.role) else now,
        )
    step = totp.matching_step(totp_secret, code, now=now)
    if step is None:
        raise WrongCode(
            N_(
                "That code did not match. Check that your device's clock is right and enter "
                "the 6-digit code your authenticator app shows now."
            )
        )
    user.totp_last_step = step
    user.totp_confirmed_at = now
    if enrolment.user is None:
        db.add(user)
    db.flush()
    totp_seeds.seal_seed(user, totp_secret)  # sealed for the user's id, known from here
    db.flush()
    if enrolment.user is None:
        ask_for_approval(db, user)  # recipients, officers and admins wait for a second admin
    consumed = db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if int(getattr(consumed, "rowcount", 0) or 0) != 1:
        raise EnrolmentError("This enrolment link has already been used.")
    codes = issue_recovery_codes(db, user)
    audit.record(
        db,
        audit.actor_label(user),
        "user.enrol",
        f"user:{user.id}",
        {
            "invitation": invitation.id,
            "reenrolment": enrolment.is_reenrolment,
            "role": user.role,
        },
        now=now,
    )
    return user, codes
