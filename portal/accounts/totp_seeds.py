"""The one way to read and write an account's TOTP seed: sealed at rest.

``user.totp_secret`` holds the base32 seed sealed (AES-GCM, :mod:`portal.sealing`) for the
purpose ``totp_seed:<user id>`` under the TOTP key: a file of its own next to the sealing key
(``<dir of PORTAL_SEALING_KEY_FILE>/totp_key``, mode 0600, made by ``portal init``), kept out
of the database and its backups. It has its own file so that ``portal rotate-totp-key``
(:mod:`portal.accounts.totp_key`) re-seals the seeds alone, in one database transaction; the
sealing key also seals the protected identifiers, the marks' terms and the OCR cache on disk.

Seeds stored in the clear before sealing (no ``v1:`` prefix; base32 has no colon) are still
read, and ``portal init`` seals every one left (:func:`seal_plain_seeds`, idempotent). In test
mode the whole process has one random TOTP key (:func:`test_sealer`). Domain code finds the
sealer in the user's database session (:func:`attach_sealer`), so callers pass none.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, sessionmaker

from portal.accounts.models import User
from portal.config import Settings
from portal.sealing import RotatingSealer, Sealer, SealingKeyUnavailable, is_sealed

__all__ = [
    "KEY_SETTING",
    "attach_sealer",
    "open_seed",
    "seal_plain_seeds",
    "seal_seed",
    "sealer_for_settings",
    "sealer_of",
    "test_sealer",
    "totp_key_path",
]

KEY_SETTING = "the TOTP key file (totp_key next to PORTAL_SEALING_KEY_FILE)"
_SESSION_KEY = "portal.totp_seed_sealer"


def totp_key_path(settings: Settings) -> Path:
    """The TOTP key file: ``totp_key`` in the sealing key's directory."""
    return settings.sealing_key_path.with_name("totp_key")


def sealer_for_settings(settings: Settings) -> Sealer:
    """A sealer for the TOTP seeds: the test sealer in test mode, else the TOTP key file."""
    if settings.testing:
        return test_sealer()
    return RotatingSealer(totp_key_path(settings), key_setting=KEY_SETTING)


_test_sealer: Sealer | None = None


def test_sealer() -> Sealer:
    """Test mode's TOTP sealer: one random key for the whole process, so that users a test
    makes through a bare session sign in through any test app. Once a process has asked for
    it, sessions without a sealer of their own use it; a portal never asks (it runs with
    ``testing`` off), so its bare sessions are refused instead."""
    global _test_sealer
    if _test_sealer is None:
        _test_sealer = Sealer.random()
    return _test_sealer


def attach_sealer(sessions: sessionmaker[Session], sealer: Sealer) -> None:
    """Make ``sealer`` the TOTP sealer of every session ``sessions`` opens (``build_state``
    does this for the portal's sessions), so domain code finds it from a user's session."""
    sessions.configure(info={_SESSION_KEY: sealer})


def sealer_of(db: Session) -> Sealer:
    """The TOTP sealer attached to ``db`` (:func:`attach_sealer`)."""
    sealer = db.info.get(_SESSION_KEY, _test_sealer)
    if not isinstance(sealer, Sealer):
        raise SealingKeyUnavailable(
            "this database session has no TOTP sealer (sessions of the portal state have one)"
        )
    return sealer


def _sealer_for(user: User, sealer: Sealer | None) -> Sealer:
    if sealer is not None:
        return sealer
    db = object_session(user)
    if db is None:
        raise SealingKeyUnavailable("a TOTP seed is sealed for a user in a database session")
    return sealer_of(db)


def _purpose(user: User) -> str:
    if user.id is None:
        raise ValueError("a TOTP seed is sealed for a stored user (flush it first)")
    return f"totp_seed:{user.id}"


def seal_seed(user: User, secret: str, sealer: Sealer | None = None) -> None:
    """Store ``secret`` as ``user``'s seed, sealed. The user must have an id (flushed)."""
    user.totp_secret = _sealer_for(user, sealer).seal(secret, _purpose(user))


def open_seed(user: User, sealer: Sealer | None = None) -> str | None:
    """``user``'s seed in base32, or None when there is none. A seed stored before sealing
    is returned as it is; a sealed one that does not open raises
    :class:`portal.sealing.CannotUnseal` (naming the user id, never the seed)."""
    stored = user.totp_secret
    if not stored:
        return None
    if not is_sealed(stored):
        return stored
    return _sealer_for(user, sealer).unseal(stored, _purpose(user))


def seal_plain_seeds(db: Session, sealer: Sealer) -> int:
    """Seal every seed still stored in the clear; returns how many. Idempotent. Flushes."""
    count = 0
    rows = select(User).where(User.totp_secret.is_not(None)).with_for_update()
    for user in db.scalars(rows):
        if user.totp_secret and not is_sealed(user.totp_secret):
            seal_seed(user, user.totp_secret, sealer)
            count += 1
    db.flush()
    return count
