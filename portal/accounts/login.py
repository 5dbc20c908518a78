"""Signing in, in two steps: e-mail + password, then a TOTP or recovery code.

Step 1 (:func:`check_password`) proves the password and returns a :class:`PendingLogin`
that the web layer keeps in the (signed) Flask session for at most five minutes; no
login session exists yet. Step 2 (:func:`check_second_factor`) proves the second factor
against that marker, and :func:`complete_login` opens the server-side session.

Every failure raises :class:`LoginFailed` after it has been recorded (audit event,
lockout count). Its ``reason`` is for the audit log only: at step 1 the visitor always
sees :data:`GENERIC_FAILURE`, whichever check failed, and an unknown e-mail costs one
password verification like a known one. At step 2 the password is already proven, so a
mistyped code keeps the visitor on the code step (``retry`` is true) with
:data:`WRONG_CODE` or :data:`SPENT_CODE`; the account's lockout still counts each one.
The caller commits in both cases.

The password is re-hashed at step 1 when its parameters are out of date: it is the only
moment the plain password is at hand (it is never kept for step 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts import recovery, throttle, totp, totp_seeds
from portal.accounts.approval import is_approved
from portal.accounts.models import User
from portal.accounts.passwords import hash_password, needs_rehash, verify_password
from portal.accounts.sessions import start_session
from portal.db import utcnow
from portal.pages.i18n import N_

# Shown on the sign-in pages, translated there (marked for the catalogs with N_).
GENERIC_FAILURE = N_(
    "The e-mail, password or code is not correct, or the account is locked. "
    "Try again or contact the administrators."
)
WRONG_CODE = N_(
    "That code is not right. Enter the code your authenticator app shows now, "
    "or one of your recovery codes."
)
SPENT_CODE = N_("That code has been used already. Wait for the next code and enter it.")
PENDING_LIFETIME = timedelta(minutes=5)
MAX_EMAIL_LENGTH = 254

SecondFactor = Literal["totp", "recovery_code"]
#: Step-2 refusals after which the visitor stays on the code step.
_RETRYABLE = frozenset({"wrong_code", "replayed_code"})


class LoginFailed(Exception):
    """A sign-in step failed. ``reason`` goes to the audit log, never to the visitor.
    ``retry`` is true when the visitor may try another code on the same step."""

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry

    @property
    def message(self) -> str:
        """What the visitor is told."""
        if not self.retry:
            return GENERIC_FAILURE
        return SPENT_CODE if self.reason == "replayed_code" else WRONG_CODE


@dataclass(frozen=True)
class PendingLogin:
    """Step 1 passed for ``user_id`` at ``started_at``; valid while the user's session
    epoch is still ``epoch`` and for :data:`PENDING_LIFETIME`."""

    user_id: int
    epoch: int
    started_at: datetime

    def to_session(self) -> dict[str, int]:
        return {"uid": self.user_id, "epoch": self.epoch, "at": int(self.started_at.timestamp())}

    @classmethod
    def from_session(cls, value: object) -> PendingLogin | None:
        """Read the marker back; anything malformed is no marker at all."""
        if not isinstance(value, dict):
            return None
        fields = (value.get("uid"), value.get("epoch"), value.get("at"))
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in fields):
            return None
        uid, epoch, at = fields
        assert isinstance(uid, int) and isinstance(epoch, int) and isinstance(at, int)  # noqa: S101
        try:
            started = datetime.fromtimestamp(at, UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(user_id=uid, epoch=epoch, started_at=started)

    def is_current(self, now: datetime) -> bool:
        return self.started_at <= now < self.started_at + PENDING_LIFETIME


@dataclass(frozen=True)
class Verified:
    user: User
    method: SecondFactor


def _enrolled(user: User) -> bool:
    return bool(user.password_hash and user.totp_secret and user.totp_confirmed_at)


def find_user(db: Session, email: str) -> User | None:
    address = email.strip().lower()
    if not address or len(address) > MAX_EMAIL_LENGTH:
        return None
    return db.scalar(select(User).where(User.email == address))


def check_password(
    db: Session,
    email: str,
    password: str,
    *,
    profile: str = "standard",
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> PendingLogin:
    """Step 1. Returns the pending marker, or records the failure and raises
    :class:`LoginFailed`. Does not commit."""
    now = now or utcnow()
    user = find_user(db, email)
    # Always one verification: against the user's hash, or a dummy one for unknown users.
    correct = verify_password(user.password_hash if user else None, password, profile=profile)
    if user is None:
        throttle.record_failure(db, None, "unknown_account", now=now, remote_addr=remote_addr)
        raise LoginFailed("unknown_account")
    reason = _refusal(user, correct=correct, now=now)
    if reason is not None:
        throttle.record_failure(db, user, reason, now=now, remote_addr=remote_addr)
        raise LoginFailed(reason)
    assert user.password_hash is not None  # noqa: S101 - _refusal checked enrolment
    if needs_rehash(user.password_hash, profile=profile):
        user.password_hash = hash_password(password, profile=profile)
        audit.record(
            db, audit.actor_label(user), "auth.password_rehashed", f"user:{user.id}", {}, now=now
        )
    return PendingLogin(user_id=user.id, epoch=user.session_epoch, started_at=now)


def _refusal(user: User, *, correct: bool, now: datetime) -> str | None:
    if throttle.is_locked(user, now=now):
        return "locked"
    if not correct:
        return "wrong_password"
    if not user.is_active:
        return "inactive"
    if not is_approved(user):
        return "awaiting_approval"
    if not _enrolled(user):
        return "not_enrolled"
    return None


def check_second_factor(
    db: Session,
    pending: PendingLogin | None,
    code: str,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
) -> Verified:
    """Step 2: a TOTP code (each time step accepted once) or an unused recovery code.

    Records the failure and raises :class:`LoginFailed` when there is no current
    pending marker, the account changed since step 1, or the code is wrong. A wrong
    code counts towards the account's lockout; unless it locked the account, the
    exception's ``retry`` lets the visitor try again on the same step. Does not commit.
    """
    now = now or utcnow()
    if pending is None or not pending.is_current(now):
        reason = "no_pending_login" if pending is None else "pending_login_expired"
        throttle.record_failure(db, None, reason, now=now, remote_addr=remote_addr)
        raise LoginFailed(reason)
    user = db.get(User, pending.user_id)
    if user is None:
        throttle.record_failure(db, None, "account_gone", now=now, remote_addr=remote_addr)
        raise LoginFailed("account_gone")
    refusal = _refusal(user, correct=True, now=now)
    if refusal is None and user.session_epoch != pending.epoch:
        refusal = "account_changed"  # e.g. password changed or 2FA reset since step 1
    if refusal is None:
        if totp.claim_code(db, user, code, now=now):
            return Verified(user, "totp")
        if recovery.use_recovery_code(db, user, code, now=now, remote_addr=remote_addr):
            return Verified(user, "recovery_code")
        refusal = "replayed_code" if _is_spent_totp(user, code, now) else "wrong_code"
    locked_now = throttle.record_failure(db, user, refusal, now=now, remote_addr=remote_addr)
    raise LoginFailed(refusal, retry=refusal in _RETRYABLE and not locked_now)


def _is_spent_totp(user: User, code: str, now: datetime) -> bool:
    """A right code for a time step already used (worth telling administrators)."""
    secret = totp_seeds.open_seed(user)
    if not secret:
        return False
    return totp.matching_step(secret, code, now=now) is not None


def complete_login(
    db: Session,
    verified: Verified,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
    user_agent: str | None = None,
) -> str:
    """Open the login session (returns its token for the cookie), reset the failure
    count, note the time and audit ``auth.login``. Does not commit."""
    now = now or utcnow()
    user = verified.user
    throttle.record_success(user, now=now)
    token = start_session(db, user, remote_addr=remote_addr, user_agent=user_agent, now=now)
    details: dict[str, object] = {"second_factor": verified.method}
    if remote_addr:
        details["remote_addr"] = remote_addr[:64]
    audit.record(db, audit.actor_label(user), "auth.login", f"user:{user.id}", details, now=now)
    return token
