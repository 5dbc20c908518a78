"""Time-based one-time passwords (RFC 6238): 30-second steps, 6 digits, one step of
clock drift either way.

A time step once accepted for a user is never accepted again: the user's
``totp_last_step`` records the newest accepted step and any code for that step or an
earlier one is refused, so a code seen over someone's shoulder (or replayed from a
phishing proxy) is useless once its owner has used it.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.accounts import totp_seeds
from portal.accounts.models import User
from portal.db import utcnow

ISSUER = "Sharing Portal"
INTERVAL = 30
DIGITS = 6
VALID_WINDOW = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    secret: str = pyotp.random_base32(length=32)
    return secret


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from a QR code."""
    uri: str = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=email, issuer_name=ISSUER
    )
    return uri


def normalise_code(code: str) -> str | None:
    """The code as 6 digits (spaces ignored), or None when it cannot be a TOTP code."""
    cleaned = "".join(code.split())
    if len(cleaned) != DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def current_step(now: datetime | None = None) -> int:
    moment = now or utcnow()
    return int(moment.timestamp()) // INTERVAL


def matching_step(
    secret: str, code: str, *, after: int | None = None, now: datetime | None = None
) -> int | None:
    """The time step (within ±1 of now, later than ``after``) whose code is ``code``.

    Every candidate step is compared in constant time, whether or not an earlier
    one matched, so timing tells nothing about which step (if any) matched.
    """
    candidate = normalise_code(code)
    if candidate is None:
        return None
    generator = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    centre = current_step(now)
    found: int | None = None
    for step in range(centre - VALID_WINDOW, centre + VALID_WINDOW + 1):
        expected: str = generator.generate_otp(step)
        equal = hmac.compare_digest(expected.encode("ascii"), candidate.encode("ascii"))
        fresh = after is None or step > after
        if equal and fresh and found is None:
            found = step
    return found


def accept_code(user: User, code: str, *, now: datetime | None = None) -> bool:
    """Check ``code`` against ``user``'s secret; on success remember its step so it can
    never be accepted again (sets ``user.totp_last_step``; does not commit)."""
    secret = totp_seeds.open_seed(user)
    if not secret:
        return False
    step = matching_step(secret, code, after=user.totp_last_step, now=now)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def claim_code(db: Session, user: User, code: str, *, now: datetime | None = None) -> bool:
    """Like :func:`accept_code`, and safe when two requests race with the same code.

    The step is recorded with a conditional UPDATE (``totp_last_step < step``) in the
    caller's transaction, so of two concurrent logins with one code only one wins: the
    other's UPDATE matches no row (PostgreSQL re-checks the condition after the row
    lock; SQLite serialises writers). Does not commit.
    """
    secret = totp_seeds.open_seed(user)
    if not secret:
        return False
    step = matching_step(secret, code, after=user.totp_last_step, now=now)
    if step is None:
        return False
    result = db.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def code_at(secret: str, moment: datetime) -> str:
    """The code for ``moment`` (for tests and the demo; never shown for a real user)."""
    code: str = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).at(moment)
    return code
