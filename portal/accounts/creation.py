"""Creating accounts. Users are never imported: an admin invites them (or the demo
creates them through ``create_user``, the same path the invitation flow ends in)."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts import totp_seeds
from portal.accounts.models import ROLES, User
from portal.accounts.passwords import MIN_PASSWORD_LENGTH, hash_password
from portal.authz.roles import is_known_role, is_provider_user, works_for_an_authority
from portal.db import utcnow
from portal.registry.models import Authority, Provider


class AccountError(ValueError):
    """A user could not be created; the message says why."""


@dataclass(frozen=True)
class NewUser:
    email: str
    display_name: str
    role: str
    authority_code: str | None = None
    provider_code: str | None = None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def create_user(
    session: Session,
    spec: NewUser,
    *,
    password: str,
    totp_secret: str,
    actor: str,
    hash_profile: str = "standard",
) -> User:
    """Create an active, enrolled user (password + confirmed TOTP secret) and audit it.

    ``hash_profile`` is the argon2 cost profile (``Settings.hash_profile``)."""
    email = spec.email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"not an e-mail address: {spec.email!r}")
    if not is_known_role(spec.role):
        raise AccountError(f"unknown role {spec.role!r}; expected one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with e-mail {email} already exists")
    authority_id = provider_id = None
    if works_for_an_authority(spec.role):
        authority_id = _lookup(session, Authority, spec.authority_code, "authority")
    elif is_provider_user(spec.role):
        provider_id = _lookup(session, Provider, spec.provider_code, "provider")
    elif spec.authority_code or spec.provider_code:
        raise AccountError(f"a {spec.role} belongs to no authority or provider")
    user = User(
        email=email,
        display_name=spec.display_name,
        role=spec.role,
        authority_id=authority_id,
        provider_id=provider_id,
        password_hash=hash_password(password, profile=hash_profile),
        totp_confirmed_at=utcnow(),
        failed_logins=0,
        session_epoch=0,
        is_active=True,
        approved_at=utcnow(),  # made at the command line: see portal.accounts.approval
    )
    session.add(user)
    session.flush()
    totp_seeds.seal_seed(user, totp_secret)  # sealed for the user's id, known from here
    audit.record(
        session,
        actor,
        "user.create",
        f"user:{user.id}",
        {
            "email": email,
            "role": spec.role,
            "authority": spec.authority_code,
            "provider": spec.provider_code,
        },
    )
    return user


def _lookup(
    session: Session, model: type[Authority] | type[Provider], code: str | None, label: str
) -> int:
    if not code:
        raise AccountError(f"this role needs a {label}")
    found = session.scalar(select(model.id).where(model.code == code))
    if found is None:
        raise AccountError(f"unknown {label} {code!r}")
    return found
