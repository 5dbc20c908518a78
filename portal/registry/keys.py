"""Recipient keys: import an authority's public key, record its out-of-band verification,
revoke it, and say which keys a package may be encrypted to.

A key is pinned by its full fingerprint when imported (legal officers or admins), but used only
once a legal officer *other than the importer* has recorded how the fingerprint was confirmed
with the authority outside the portal (who confirmed it, how, when): four-eyes, so no one person
can add a key that evidence is encrypted to. :func:`organisation_warnings` flags a key whose user
IDs point at another organisation to that verifier. The authority's recipients are notified when
a key is imported and when it takes effect. Functions take the session explicitly, flush but
never commit, and refuse bad input with :class:`KeyActionRefused` (safe to show) before changing
anything.
Audit events carry fingerprints and codes, never key material.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.approval import ask_for_key_check, key_check_settled
from portal.accounts.models import User
from portal.authz.roles import is_legal_officer, is_staff
from portal.db import aware_utc
from portal.notifications.service import key_added
from portal.pages import labels
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
    "key_uids",
    "organisation_warnings",
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
KEY_STATUS_LABELS: Mapping[str, str] = labels.KEY_STATUS
_CLOCK_SKEW = timedelta(minutes=5)
_UID_EMAIL = re.compile(r"<[^<>@\s]+@([^<>@\s]+)>\s*$|^[^<>@\s]+@([^<>@\s]+)$")


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


def _verifier(key: RecipientKey, user: User) -> None:
    """The second pair of eyes: an active legal officer who did not import the key."""
    if not is_legal_officer(user) or not user.is_active:
        raise KeyActionRefused("Only a legal officer can record a key's verification.")
    if key.imported_by_id == user.id:
        raise KeyActionRefused(
            "You imported this key: another legal officer must confirm its fingerprint with "
            "the authority and record it."
        )


def _domain(uid: str) -> str | None:
    found = _UID_EMAIL.search(uid)
    return (found.group(1) or found.group(2)).lower().rstrip(".") if found else None


def key_uids(key: RecipientKey) -> list[str]:
    """Every user ID of the key (the stored first one if gpg no longer accepts the key)."""
    try:
        return list(inspect_public_key(key.armored).uids)
    except KeyRejected:
        return [key.uid] if key.uid else []


def organisation_warnings(db: Session, key: RecipientKey, authority: Authority) -> list[str]:
    """Why the key's user IDs may name another organisation than ``authority`` (empty: none).

    The rule (README "Recipient keys"): the authority's domains are the e-mail domains of its
    own accounts (requesters and recipients). Each user ID must carry an e-mail address in
    one of them; a user ID in a domain of another authority's accounts, in an unknown domain,
    or without an address is flagged, as is every user ID while the authority has no accounts.
    """
    uids = key_uids(key)
    rows = db.execute(select(User.email, User.authority_id).where(User.authority_id.is_not(None)))
    domains: dict[str, set[int]] = {}
    for email, authority_id in rows:
        if authority_id is not None:
            domains.setdefault(email.rsplit("@", 1)[-1].lower(), set()).add(authority_id)
    own = {d for d, ids in domains.items() if authority.id in ids}
    names = {row.id: row.name for row in db.execute(select(Authority.id, Authority.name))}
    warnings = []
    if not uids:
        warnings.append("The key has no user ID: nothing on it names the authority.")
    for uid in uids:
        domain = _domain(uid)
        if domain is None:
            warnings.append(f"The user ID “{uid}” has no e-mail address.")
        elif domain in own:
            continue
        elif domain in domains:
            others = ", ".join(sorted(names.get(i, "?") for i in domains[domain]))
            warnings.append(
                f"The user ID “{uid}” is in the domain {domain}, which belongs to {others}, "
                f"not {authority.name}."
            )
        elif not own:
            warnings.append(
                f"{authority.name} has no accounts yet, so the domain {domain} of “{uid}” "
                "cannot be checked against it."
            )
        else:
            warnings.append(
                f"The user ID “{uid}” is in the domain {domain}, which is not one of "
                f"{authority.name}'s ({', '.join(sorted(own))})."
            )
    return warnings


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
    key_added(db, authority.id, key.fingerprint, verified=False)
    ask_for_key_check(db, key)
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
    (while unexpired and unrevoked). Only a legal officer other than the importer may; of two
    verifications at the same moment one wins, the other is refused."""
    _verifier(key, by)
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
    done = db.execute(
        update(RecipientKey)
        .where(RecipientKey.id == key.id, RecipientKey.verified_at.is_(None))
        .values(
            verified_by=name,
            verification_method=f"{label}: {details}" if details else label,
            verified_at=confirmed_at,
            verified_by_id=by.id,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(done, "rowcount", 0) or 0) != 1:
        raise KeyActionRefused("This key has already been verified.")
    db.refresh(key)
    key_check_settled(db, key, now=moment)
    key_added(db, key.authority_id, key.fingerprint, verified=True)
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
    key_check_settled(db, key, now=moment)
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
