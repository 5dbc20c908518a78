"""Per-account lockout: 5 failed sign-ins within 15 minutes lock the account for 15 minutes.

Each failure is an ``auth.login_failed`` audit event, so the log itself is the record of
when failures happened: the window counts the account's failure events of the last 15
minutes that came after its last successful sign-in and after its last lock ended. The
user's ``failed_logins`` mirrors that count for the admin pages.

While an account is locked every attempt fails, correct credentials included; the
attempts are audited but neither extend the lock nor count towards the next one (or an
attacker could keep a victim locked out for ever by trying once every 15 minutes, and a
stream of attempts during the lock would lock the account again the moment it ended).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import utcnow

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)

FAILED = "auth.login_failed"
LOCKOUT = "auth.lockout"
UNLOCK = "auth.unlock"
UNKNOWN_TARGET = "unknown"
# Whoever tried to sign in is not known to be anyone in particular.
VISITOR_ACTOR = "visitor"


def is_locked(user: User, *, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def _details(reason: str, remote_addr: str | None, email: str | None = None) -> dict[str, object]:
    details: dict[str, object] = {"reason": reason}
    if email is not None:
        details["email"] = email
    if remote_addr:
        details["remote_addr"] = remote_addr[:64]
    return details


def record_failure(
    db: Session,
    user: User | None,
    reason: str,
    *,
    now: datetime | None = None,
    remote_addr: str | None = None,
    actor: str = VISITOR_ACTOR,
) -> bool:
    """Audit a failed sign-in and lock the account when it is one failure too many.

    ``user`` is None when the e-mail belongs to no account: the event then has target
    ``unknown`` and records neither the e-mail (attacker-chosen text, or a real
    person's mistyped address) nor any hash of it. ``reason`` is for administrators
    (``wrong_password``, ``wrong_code``, ``locked``, ...), never shown to the visitor.
    ``actor`` is the visitor, or the signed-in user when re-entering a password or code
    on the account page fails. Returns True when this failure locked the account. Does
    not commit.
    """
    now = now or utcnow()
    if user is None:
        audit.record(db, actor, FAILED, UNKNOWN_TARGET, _details(reason, remote_addr), now=now)
        return False
    target = f"user:{user.id}"
    locked = is_locked(user, now=now)
    audit.record(
        db,
        actor,
        FAILED,
        target,
        _details("locked" if locked else reason, remote_addr, user.email),
        now=now,
    )
    if locked:
        return False
    recent = failures_in_window(db, user, now=now)
    user.failed_logins = recent
    if recent < MAX_FAILURES:
        return False
    user.locked_until = now + LOCK_DURATION
    audit.record(
        db,
        audit.SYSTEM_ACTOR,
        LOCKOUT,
        target,
        {
            "email": user.email,
            "failures": recent,
            "locked_until": user.locked_until.isoformat(),
        },
        now=now,
    )
    return True


def failures_in_window(db: Session, user: User, *, now: datetime | None = None) -> int:
    """The account's failures that count towards a lock at ``now``."""
    now = now or utcnow()
    since = now - WINDOW
    for boundary in (user.last_login_at, user.locked_until):
        if boundary is not None and boundary <= now:
            since = max(since, boundary)
    count = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == FAILED,
            AuditEvent.target == f"user:{user.id}",
            AuditEvent.occurred_at > since,
            AuditEvent.occurred_at <= now,
        )
    )
    return int(count or 0)


def record_success(user: User, *, now: datetime | None = None) -> None:
    """A completed sign-in: the failure count starts again (does not commit)."""
    user.failed_logins = 0
    user.last_login_at = now or utcnow()


def unlock(db: Session, user: User, *, actor: str, now: datetime | None = None) -> None:
    """End a lock early (an administrator's decision); earlier failures stop counting.

    The lock is ended by moving ``locked_until`` to now, which is also where the
    failure window then starts. Audited as ``auth.unlock``. Does not commit.
    """
    now = now or utcnow()
    user.locked_until = now
    user.failed_logins = 0
    audit.record(db, actor, UNLOCK, f"user:{user.id}", {"email": user.email}, now=now)
