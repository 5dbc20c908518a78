"""A signed-in user changing their own credentials: password and recovery codes.

Both re-check what the user knows or holds (current password, current TOTP code), so a
session left open on a shared computer is not enough to take the account over. A wrong
answer counts towards the account's lockout like a failed sign-in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from portal import audit
from portal.accounts import recovery, throttle, totp
from portal.accounts.models import User
from portal.accounts.password_policy import WeakPassword, check_new_password
from portal.accounts.passwords import hash_password, verify_password
from portal.accounts.sessions import end_all_sessions
from portal.db import utcnow
from portal.pages.i18n import N_


class CredentialChangeRefused(ValueError):
    """The change was refused; ``message`` is for the user (nothing was changed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


WRONG_CURRENT = N_("The current password is not correct.")
WRONG_CODE = N_("The code is not correct. Enter the current code from your authenticator app.")
LOCKED = N_("The account is locked after too many failed attempts. Try again later.")
UNCHANGED = N_("The new password must be different from the current one.")
MISMATCH = N_("The two new passwords do not match.")


def change_password(
    db: Session,
    user: User,
    *,
    current: str,
    new: str,
    confirm: str,
    profile: str = "standard",
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> None:
    """Set a new password and end every session of the user (the caller then opens a
    fresh one for the browser that made the change). Audited as
    ``account.password_changed``. Raises :class:`CredentialChangeRefused`; does not
    commit (commit after a refusal too: a wrong current password is recorded)."""
    now = now or utcnow()
    actor = audit.actor_label(user)
    if throttle.is_locked(user, now=now):
        raise CredentialChangeRefused(LOCKED)
    if not verify_password(user.password_hash, current, profile=profile):
        throttle.record_failure(
            db, user, "wrong_current_password", now=now, remote_addr=remote_addr, actor=actor
        )
        raise CredentialChangeRefused(WRONG_CURRENT)
    if new != confirm:
        raise CredentialChangeRefused(MISMATCH)
    if new == current:
        raise CredentialChangeRefused(UNCHANGED)
    try:
        check_new_password(new, email=user.email)
    except WeakPassword as exc:
        raise CredentialChangeRefused(exc.reason) from None
    user.password_hash = hash_password(new, profile=profile)
    ended = end_all_sessions(db, user, "password_changed", now=now)
    audit.record(
        db, actor, "account.password_changed", f"user:{user.id}", {"sessions_ended": ended}, now=now
    )


def regenerate_recovery_codes(
    db: Session,
    user: User,
    *,
    code: str,
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> list[str]:
    """Replace the user's recovery codes after checking a current TOTP code (not a
    recovery code: losing the authenticator is what recovery codes are for). Returns
    the new codes, to show once. Audited as ``account.recovery_codes_regenerated``."""
    now = now or utcnow()
    actor = audit.actor_label(user)
    if throttle.is_locked(user, now=now):
        raise CredentialChangeRefused(LOCKED)
    if not totp.claim_code(db, user, code, now=now):
        throttle.record_failure(
            db, user, "wrong_code", now=now, remote_addr=remote_addr, actor=actor
        )
        raise CredentialChangeRefused(WRONG_CODE)
    codes = recovery.issue_recovery_codes(db, user)
    audit.record(
        db,
        actor,
        "account.recovery_codes_regenerated",
        f"user:{user.id}",
        {"count": len(codes)},
        now=now,
    )
    return codes
