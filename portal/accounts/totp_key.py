"""The TOTP key file: made by ``portal init``, replaced by ``portal rotate-totp-key``.

A rotation writes a new key at ``totp_key.new`` (0600), from when on every process seals new
seeds with it (:class:`portal.sealing.RotatingSealer` opens values under either key). It then
re-seals every seed in one transaction, checks that no seed is left under the old key, and
renames the new key over the old one. Re-running after a crash at any point converges: the
pending key is reused, and seeds already under it simply re-seal.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts import totp_seeds
from portal.accounts.models import User
from portal.config import ConfigError, Settings, create_private_file
from portal.db import transaction
from portal.sealing import KEY_BYTES, RotatingSealer, key_id, read_sealing_key, sealed_by

__all__ = ["RotationReport", "ensure_totp_key", "rotate_totp_key"]

#: Passes over the seeds before giving up (a seed sealed under the old key by a process that
#: had not yet seen the new one is caught by the next pass).
MAX_PASSES = 3


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    resealed: int


def ensure_totp_key(settings: Settings) -> bool:
    """Create the TOTP key file (mode 0600) when missing. Returns True when created."""
    return create_private_file(totp_seeds.totp_key_path(settings), secrets.token_hex(KEY_BYTES))


def rotate_totp_key(settings: Settings, sessions: sessionmaker[Session]) -> RotationReport:
    """Replace the TOTP key, re-sealing every seed (see the module docstring)."""
    sealer = totp_seeds.sealer_for_settings(settings)
    if not isinstance(sealer, RotatingSealer):
        raise ConfigError("test mode has no TOTP key file to rotate")
    read_sealing_key(sealer.path)  # the current key must be there (and private)
    create_private_file(sealer.pending_path, secrets.token_hex(KEY_BYTES))
    new_id = key_id(read_sealing_key(sealer.pending_path))
    resealed = 0
    for _ in range(MAX_PASSES):
        with transaction(sessions) as db:
            # FOR UPDATE: a re-enrolment writing a new seed meanwhile waits for this
            # transaction instead of being overwritten with the old seed re-sealed.
            rows = select(User).where(User.totp_secret.is_not(None)).with_for_update()
            stale = [
                user
                for user in db.scalars(rows)
                if user.totp_secret and sealed_by(user.totp_secret) != new_id
            ]
            for user in stale:
                seed = totp_seeds.open_seed(user, sealer)
                if seed:
                    totp_seeds.seal_seed(user, seed, sealer)
            resealed += len(stale)
        if not stale:
            os.replace(sealer.pending_path, sealer.path)
            return RotationReport(new_key_id=new_id, resealed=resealed)
    raise ConfigError(
        "seeds kept being sealed under the old TOTP key while rotating; run the command again"
    )
