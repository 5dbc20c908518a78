"""The one way to read and write an account's TOTP seed: sealed at rest.

``user.totp_secret`` holds the base32 seed sealed (AES-GCM, :mod:`portal.sealing`) for the
purpose ``totp_seed:<user id>`` under the TOTP key: a file of its own next to the sealing key
(``<dir of PORTAL_SEALING_KEY_FILE>/totp_key``, mode 0600, made by ``portal init``), kept out
of the database and its backups. It has its own file so that ``portal rotate-totp-key``
(:mod:`portal.accounts.totp_key`) re-seals the seeds alone, in one database transaction; the
sealing key also seals the protected identifiers, the marks' terms and the OCR cache on disk.

Seeds stored in the clear before sealing (no ``v1:`` prefix; base32 has no colon) are still
read, and ``portal init`` seals every one left (:func:`seal_plain_seeds`, idempotent). In test
mode each app has a random TOTP key of its own.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.config import Settings
from portal.sealing import RotatingSealer, Sealer, is_sealed

__all__ = [
    "KEY_SETTING",
    "open_seed",
    "seal_plain_seeds",
    "seal_seed",
    "sealer_for_settings",
    "seed_sealer",
    "totp_key_path",
]

KEY_SETTING = "the TOTP key file (totp_key next to PORTAL_SEALING_KEY_FILE)"
_EXTENSION = "portal_totp_sealer"


def totp_key_path(settings: Settings) -> Path:
    """The TOTP key file: ``totp_key`` in the sealing key's directory."""
    return settings.sealing_key_path.with_name("totp_key")


def sealer_for_settings(settings: Settings) -> Sealer:
    """A sealer for the TOTP seeds: a random key in test mode, else the TOTP key file."""
    if settings.testing:
        return Sealer.random()
    return RotatingSealer(totp_key_path(settings), key_setting=KEY_SETTING)


def seed_sealer(app: Flask | None = None) -> Sealer:
    """The TOTP sealer of ``app`` (the current app by default), made on first use."""
    from portal.state import portal_state

    target = app if app is not None else current_app
    sealer: Sealer | None = target.extensions.get(_EXTENSION)
    if sealer is None:
        sealer = sealer_for_settings(portal_state(target).settings)
        target.extensions[_EXTENSION] = sealer
    return sealer


def _purpose(user: User) -> str:
    if user.id is None:
        raise ValueError("a TOTP seed is sealed for a stored user (flush it first)")
    return f"totp_seed:{user.id}"


def seal_seed(user: User, secret: str, sealer: Sealer | None = None) -> None:
    """Store ``secret`` as ``user``'s seed, sealed. The user must have an id (flushed)."""
    sealer = sealer if sealer is not None else seed_sealer()
    user.totp_secret = sealer.seal(secret, _purpose(user))


def open_seed(user: User, sealer: Sealer | None = None) -> str | None:
    """``user``'s seed in base32, or None when there is none. A seed stored before sealing
    is returned as it is; a sealed one that does not open raises
    :class:`portal.sealing.CannotUnseal` (naming the user id, never the seed)."""
    stored = user.totp_secret
    if not stored:
        return None
    if not is_sealed(stored):
        return stored
    sealer = sealer if sealer is not None else seed_sealer()
    return sealer.unseal(stored, _purpose(user))


def seal_plain_seeds(db: Session, sealer: Sealer) -> int:
    """Seal every seed still stored in the clear; returns how many. Idempotent. Flushes."""
    count = 0
    for user in db.scalars(select(User).where(User.totp_secret.is_not(None))):
        if user.totp_secret and not is_sealed(user.totp_secret):
            seal_seed(user, user.totp_secret, sealer)
            count += 1
    db.flush()
    return count
