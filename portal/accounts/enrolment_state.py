"""What an enrolment in progress has chosen so far, kept on its invitation row (server-side).

Step 1 stores the new password's argon2 hash, step 2 the authenticator secret it offers,
sealed with the portal's sealing key (:mod:`portal.sealing`, purpose
``enrolment_totp_seed:<invitation id>``). The session cookie carries neither: an old cookie
cannot bring back an earlier password or secret, and the secret is not readable in the
browser's cookie store. Choosing a password again starts the authenticator step afresh.
Everything is cleared when the enrolment completes. The link's token stays the credential.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.accounts import totp
from portal.accounts.models import Invitation
from portal.sealing import Sealer

__all__ = [
    "clear",
    "existing_secret",
    "pending_password_hash",
    "pending_secret",
    "remember_password",
]


def _purpose(invitation: Invitation) -> str:
    return f"enrolment_totp_seed:{invitation.id}"


def pending_password_hash(invitation: Invitation) -> str | None:
    return invitation.pending_password_hash


def remember_password(db: Session, invitation: Invitation, password_hash: str) -> None:
    """Keep the chosen password's hash; a new choice means a new authenticator secret.
    Flushes; the caller commits."""
    invitation.pending_password_hash = password_hash
    invitation.pending_totp_secret = None
    db.flush()


def pending_secret(db: Session, sealer: Sealer, invitation: Invitation) -> str:
    """The authenticator secret this enrolment offers, made (and stored sealed) on first use.
    Flushes; the caller commits."""
    if invitation.pending_totp_secret:
        return sealer.unseal(invitation.pending_totp_secret, _purpose(invitation))
    secret = totp.new_secret()
    invitation.pending_totp_secret = sealer.seal(secret, _purpose(invitation))
    db.flush()
    return secret


def existing_secret(sealer: Sealer, invitation: Invitation) -> str | None:
    """The secret offered so far, or None (the QR code is shown only for one)."""
    if not invitation.pending_totp_secret:
        return None
    return sealer.unseal(invitation.pending_totp_secret, _purpose(invitation))


def clear(invitation: Invitation) -> None:
    """Forget the pending choices (the enrolment completed). Does not flush."""
    invitation.pending_password_hash = None
    invitation.pending_totp_secret = None
