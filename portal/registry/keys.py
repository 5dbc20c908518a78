"""Recipient keys: import an authority's public key, record its out-of-band verification,
revoke it, and say which keys a package may be encrypted to.

A key is pinned by its full fingerprint when imported, but used only once a legal officer or
admin has recorded how the fingerprint was confirmed with the authority outside the portal
(who confirmed it, how, when). Functions take the session explicitly, flush but never commit,
and refuse bad input with :class:`KeyActionRefused` (safe to show) before changing anything.
Audit events carry fingerprints and codes, never key material.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_staff
from portal.db import aware_utc
from portal.registry.models import Authority, RecipientKey
from portal.registry.openpgp import KeyRejected, inspect_public_key, refuse_example_key

__all__ = [
    "KEY_STATUS_LABELS",
    "MAX_KEY_BYTES",
    "VERIFICATION_METHODS",
    "KeyActionRefused",
    "Verification",
    "import_key",
    "key_status",
    "revoke_key",
    "usable_keys",
    "verify_key",
]

#: An armored public key with a few subkeys and signatures is a few kilobytes.
MAX_KEY_BYTES = 64 * 1024
NAME_MAX = 200
DETAILS_MAX = 400
REASON_MAX = 2000
#: How the fingerprint was confirmed with the authority (code -> label).
VERIFICATION_METHODS: Mapping[str, str] = {
    "phone": "Phone call to a number known independently of the key",
    "video_call": "Video call with a known officer, fingerprint read aloud",
    "in_person": "In person",
    "signed_letter": "Signed letter on the authority's letterhead",
    "diplomatic_channel": "Through the diplomatic channel",
}
KEY_STATUS_LABELS: Mapping[str, str] = {
    "usable": "Usable",
    "unverified": "Not verified",
    "expired": "Expired",
    "revoked": "Revoked",
}
_CLOCK_SKEW = timedelta(minutes=5)


class KeyActionRefused(Exception):
    """A key action was refused; nothing changed. The message says why."""


@dataclass(frozen=True)
class Verification:
    """The out-of-band confirmation of a key's fingerprint."""

    confirmed_by: str  # the person at the authority who confirmed it
    method: str  # a key of VERIFICATION_METHODS
    confirmed_at: datetime
    details: str = ""  # e.g. which number was called


def _manager(user: User) -> None:
    if not is_staff(user) or not user.is_active:
        raise KeyActionRefused("Only legal officers and administrators manage recipient keys.")


def import_key(
    db: Session,
    authority: Authority,
    armored: str,
    *,
    by: User,
    demo_or_test: bool,
    now: datetime | None = None,
) -> RecipientKey:
    """Check and pin ``armored`` for ``authority`` (not yet verified, so not yet used)."""
    _manager(by)
    moment = aware_utc(now)
    text = armored.strip()
    if not text:
        raise KeyActionRefused("Paste the authority's public key or choose its .asc file.")
    if len(text.encode("utf-8")) > MAX_KEY_BYTES:
        raise KeyActionRefused(
            f"The key is larger than {MAX_KEY_BYTES // 1024} KB; send the public key alone."
        )
    try:
        info = inspect_public_key(text, now=moment)
        refuse_example_key(info.fingerprint, demo_or_test=demo_or_test)
    except KeyRejected as exc:
        raise KeyActionRefused(f"The key was refused: {exc.reason}.") from None
    existing = db.scalar(
        select(RecipientKey).where(
            RecipientKey.authority_id == authority.id,
            RecipientKey.fingerprint == info.fingerprint,
        )
    )
    if existing is not None:
        raise KeyActionRefused("This key is already on file for the authority.")
    key = RecipientKey(
        authority_id=authority.id,
        fingerprint=info.fingerprint,
        armored=text + "\n",
        algorithm=info.algorithm,
        uid=(info.uids[0] if info.uids else "")[:500],
        created_at=moment,
        expires_at=info.expires_at,
        imported_by_id=by.id,
    )
    db.add(key)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "key.import",
        f"authority:{authority.code}",
        {"key": key.id, "fingerprint": key.fingerprint, "algorithm": key.algorithm},
        now=moment,
    )
    return key


def verify_key(
    db: Session,
    key: RecipientKey,
    verification: Verification,
    *,
    by: User,
    now: datetime | None = None,
) -> RecipientKey:
    """Record how the key's fingerprint was confirmed with the authority; from now on it is used
    (while unexpired and unrevoked)."""
    _manager(by)
    moment = aware_utc(now)
    if key.revoked_at is not None:
        raise KeyActionRefused("This key has been revoked; import a new key instead.")
    if key.verified_at is not None:
        raise KeyActionRefused("This key has already been verified.")
    name = " ".join(verification.confirmed_by.split())
    if not name:
        raise KeyActionRefused("Name the person at the authority who confirmed the fingerprint.")
    if len(name) > NAME_MAX:
        raise KeyActionRefused(f"The name must be at most {NAME_MAX} characters.")
    label = VERIFICATION_METHODS.get(verification.method)
    if label is None:
        raise KeyActionRefused("Choose how the fingerprint was confirmed.")
    details = " ".join(verification.details.split())
    if len(details) > DETAILS_MAX:
        raise KeyActionRefused(f"The details must be at most {DETAILS_MAX} characters.")
    confirmed_at = aware_utc(verification.confirmed_at)
    if confirmed_at > moment + _CLOCK_SKEW:
        raise KeyActionRefused("The confirmation cannot be in the future.")
    try:
        inspect_public_key(key.armored, now=moment)  # still fit (e.g. not expired meanwhile)
    except KeyRejected as exc:
        raise KeyActionRefused(f"The key can no longer be used: {exc.reason}.") from None
    key.verified_by = name
    key.verification_method = f"{label}: {details}" if details else label
    key.verified_at = confirmed_at
    key.verified_by_id = by.id
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "key.verify",
        f"key:{key.fingerprint}",
        {"key": key.id, "method": verification.method, "confirmed_at": confirmed_at.isoformat()},
        now=moment,
    )
    return key


def revoke_key(
    db: Session, key: RecipientKey, *, reason: str, by: User, now: datetime | None = None
) -> RecipientKey:
    """Stop using the key for new packages (packages already made stay as they are)."""
    _manager(by)
    moment = aware_utc(now)
    if key.revoked_at is not None:
        raise KeyActionRefused("This key has already been revoked.")
    text = reason.strip()
    if not text:
        raise KeyActionRefused("Give the reason for revoking the key.")
    if len(text) > REASON_MAX:
        raise KeyActionRefused(f"The reason must be at most {REASON_MAX} characters.")
    key.revoked_at = moment
    key.revoked_by_id = by.id
    key.revocation_reason = text
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "key.revoke",
        f"key:{key.fingerprint}",
        {"key": key.id},
        now=moment,
    )
    return key


def key_status(key: RecipientKey, now: datetime | None = None) -> str:
    """``revoked``, ``expired``, ``unverified`` or ``usable`` (a key of KEY_STATUS_LABELS)."""
    moment = aware_utc(now)
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= moment:
        return "expired"
    if key.verified_at is None:
        return "unverified"
    return "usable"


def usable_keys(db: Session, authority_id: int, now: datetime | None = None) -> list[RecipientKey]:
    """The authority's keys a package may be encrypted to: verified, unrevoked, unexpired, and
    still able to encrypt at ``now`` (checked again with gpg: a subkey may expire before its
    primary key). Ordered by fingerprint."""
    moment = aware_utc(now)
    candidates = db.scalars(
        select(RecipientKey)
        .where(
            RecipientKey.authority_id == authority_id,
            RecipientKey.verified_at.is_not(None),
            RecipientKey.revoked_at.is_(None),
            or_(RecipientKey.expires_at.is_(None), RecipientKey.expires_at > moment),
        )
        .order_by(RecipientKey.fingerprint)
    ).all()
    usable = []
    for key in candidates:
        try:
            inspect_public_key(key.armored, now=moment)
        except KeyRejected:
            continue
        usable.append(key)
    return usable
