"""Server-side login sessions behind Flask-Login.

The session cookie carries a random token (Flask-Login's "alternative id"); the
database holds its sha256. Every request re-checks the session: not ended, not idle
for more than 30 minutes, not older than 12 hours, the user still active and the
user's session epoch unchanged (logout, password change and 2FA reset bump it,
ending every session of that user at once).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.accounts.approval import is_approved
from portal.accounts.models import LoginSession, User
from portal.db import utcnow
from portal.notifications.models import Notification

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# Writing last_seen_at on every request would serialise SQLite writers for nothing.
TOUCH_INTERVAL = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ActiveSession:
    user: User
    session: LoginSession
    token: str
    #: The user's unread notifications when the session was loaded (the header's badge).
    unread: int = 0


def start_session(
    db: Session,
    user: User,
    *,
    remote_addr: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> str:
    """Open a new session for ``user`` and return its token (to put in the cookie)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    db.add(
        LoginSession(
            token_hash=token_hash(token),
            user_id=user.id,
            epoch=user.session_epoch,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    db.flush()
    return token


def load_session(db: Session, token: str, *, now: datetime | None = None) -> ActiveSession | None:
    """The live session for ``token``, or None (and the session is ended) when it lapsed."""
    now = now or utcnow()
    # One round trip for the session, its user and the badge's count: this runs before every page.
    unread = (
        select(func.count())
        .where(Notification.user_id == User.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )
    found = db.execute(
        select(LoginSession, User, unread)
        .outerjoin(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == token_hash(token))
    ).first()
    if found is None:
        return None
    row, user, unread_count = found
    if row.ended_at is not None:
        return None
    reason = _lapse_reason(row, user, now)
    if reason is not None or user is None:
        _end(row, now, reason or "user_missing")
        db.commit()
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
        db.commit()
    return ActiveSession(user=user, session=row, token=token, unread=int(unread_count or 0))


def _lapse_reason(row: LoginSession, user: User | None, now: datetime) -> str | None:
    if user is None:
        return "user_missing"
    if not user.is_active:
        return "user_deactivated"
    if not is_approved(user):
        return "awaiting_approval"
    if row.epoch != user.session_epoch:
        return "revoked"
    if now >= row.expires_at:
        return "absolute_timeout"
    if now - row.last_seen_at > IDLE_TIMEOUT:
        return "idle_timeout"
    return None


def _end(row: LoginSession, now: datetime, reason: str) -> None:
    row.ended_at = now
    row.end_reason = reason


def end_session(db: Session, token: str, reason: str, *, now: datetime | None = None) -> None:
    """End one session (does not commit)."""
    row = db.scalar(select(LoginSession).where(LoginSession.token_hash == token_hash(token)))
    if row is not None and row.ended_at is None:
        _end(row, now or utcnow(), reason)


def end_all_sessions(db: Session, user: User, reason: str, *, now: datetime | None = None) -> int:
    """End every session of ``user`` and bump the epoch (does not commit). Returns how many
    open sessions were ended."""
    now = now or utcnow()
    user.session_epoch += 1
    result = db.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
