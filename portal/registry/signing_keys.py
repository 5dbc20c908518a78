"""The mechanism's signing keys: their history, the rotation to a new key, revocation, and the
key the worker signs with.

Where the key lives, and why a restart is not a trap: ``PORTAL_SIGNING_KEY`` (with
``PORTAL_SIGNING_PASSPHRASE_FILE``) names the first key. ``portal keys rotate-signing`` writes
each new key into ``<instance>/signing-keys/<FINGERPRINT>.sec.asc`` and ``.passphrase`` (0600, in
a 0700 directory) *before* it records the rotation, and the ``signing_key`` table then decides:
:func:`load_mechanism_signer` signs with the current key's file there, falling back to
``PORTAL_SIGNING_KEY`` only when that holds the current key. A worker that has neither (another
machine, an old configuration restored) refuses to sign and says which file it needs; it never
signs with a retired or revoked key. The web process never loads any of these files: it shows
the public halves stored in the table.

A rotation's transition statement (:mod:`portal.verify.transition`: canonical JSON with both
fingerprints, the time and the reason) is signed by both keys, stored with the new key's row, and
announced to every recipient (a notification naming the new fingerprint).
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import audit
from portal.accounts.approval import where_approved
from portal.accounts.models import User
from portal.config import ConfigError, Settings, check_signing_files, refuse_shared_file
from portal.db import transaction, utcnow
from portal.notifications.service import notify
from portal.packages.assembly.gpgstream import (
    GpgError,
    Signer,
    detached_signature,
    load_signer,
    signer_public_key,
)
from portal.pages.i18n import N_
from portal.registry.models import SigningKey
from portal.registry.openpgp import (
    MIN_RSA_BITS,
    KeyRejected,
    dearmor,
    grouped_fingerprint,
    refuse_example_key,
    temporary_keyring,
)
from portal.verify.results import VerifyFailed
from portal.verify.transition import StatementInvalid, read_transition, statement_bytes

__all__ = [
    "KEYS_DIR",
    "Rotation",
    "SigningKeyError",
    "current_key",
    "history",
    "load_mechanism_signer",
    "record_first_key",
    "revoke_signing_key",
    "rotate_signing_key",
]

KEYS_DIR = "signing-keys"
_UID = "Sharing Portal signing key"
_FACTORING_ALGOS = {"1", "2", "3", "16", "17", "20"}


class SigningKeyError(Exception):
    """The signing key cannot be used or changed; the message says why and what to do."""


def history(db: Session) -> list[SigningKey]:
    """Every signing key, first first."""
    return list(db.scalars(select(SigningKey).order_by(SigningKey.active_from, SigningKey.id)))


def current_key(db: Session, *, lock: bool = False) -> SigningKey | None:
    """The key signing now (None before the first is recorded)."""
    query = select(SigningKey).where(SigningKey.active_until.is_(None))
    return db.scalar(query.with_for_update() if lock else query)


def key_files(settings: Settings, fingerprint: str) -> tuple[Path, Path]:
    """Where a rotated-to key and its passphrase are kept on a worker machine."""
    directory = settings.instance_dir / KEYS_DIR
    return directory / f"{fingerprint}.sec.asc", directory / f"{fingerprint}.passphrase"


# --------------------------------------------------------------------------- signing with it


def load_mechanism_signer(settings: Settings, db: Session) -> Signer:
    """The key to sign with now: the current key of the history (its file under
    ``<instance>/signing-keys/``, or ``PORTAL_SIGNING_KEY`` when that holds it). Raises
    :class:`SigningKeyError` saying what is wrong and how to fix it."""
    current = current_key(db)
    try:
        if current is not None:
            key, passphrase = key_files(settings, current.fingerprint)
            if key.is_file():
                for path in (key, passphrase):
                    if path.exists() and not settings.demo_or_test:
                        refuse_shared_file(path)
                signer = load_signer(key, passphrase if passphrase.exists() else None)
                return _usable(signer, settings, current)
        if settings.signing_key_file is None:
            raise SigningKeyError(
                "No signing key is configured (set PORTAL_SIGNING_KEY and "
                "PORTAL_SIGNING_PASSPHRASE_FILE)."
            )
        check_signing_files(settings)
        signer = load_signer(settings.signing_key_file, settings.signing_passphrase_file)
    except (GpgError, ConfigError) as exc:
        raise SigningKeyError(str(exc)) from None
    return _usable(signer, settings, current)


def _usable(signer: Signer, settings: Settings, current: SigningKey | None) -> Signer:
    if current is not None and signer.fingerprint != current.fingerprint:
        key, _ = key_files(settings, current.fingerprint)
        raise SigningKeyError(
            f"PORTAL_SIGNING_KEY holds key {signer.fingerprint}, but the mechanism signs with "
            f"{current.fingerprint} since {current.active_from:%Y-%m-%d %H:%M} UTC (portal keys "
            f"rotate-signing); put that key's file at {key} on this machine (copy the "
            "signing-keys directory from where the rotation ran) or point PORTAL_SIGNING_KEY "
            "at it"
        )
    try:
        refuse_example_key(signer.fingerprint, demo_or_test=settings.demo_or_test)
    except KeyRejected as exc:
        raise SigningKeyError(exc.reason) from None
    return signer


def record_first_key(db: Session, signer: Signer, *, actor: str) -> SigningKey | None:
    """Record ``signer`` as the first key when the history is empty (``portal init``); None
    when there is a history already. Flushes."""
    if current_key(db) is not None or history(db):
        return None
    row = _row(signer_public_key(signer), signer.fingerprint, utcnow(), actor)
    db.add(row)
    db.flush()
    audit.record(db, actor, "signing_key.recorded", row.fingerprint)
    return row


def _row(public: str, fingerprint: str, moment: datetime, actor: str) -> SigningKey:
    algorithm, uid = _describe(public, fingerprint)
    return SigningKey(
        fingerprint=fingerprint,
        public_key=public,
        algorithm=algorithm,
        uid=uid[:500],
        active_from=moment,
        recorded_by=actor,
    )


def _describe(public: str, fingerprint: str, *, now: datetime | None = None) -> tuple[str, str]:
    """The algorithm and first user ID of a signing key, checked against the key rules:
    not revoked or expired, able to sign, RSA/DSA at least 3072 bits."""
    with temporary_keyring() as gpg:
        gpg.import_keys(public)
        keys = [k for k in gpg.list_keys() if str(k.get("fingerprint", "")).upper() == fingerprint]
    if not keys:
        raise SigningKeyError(f"the public half of {fingerprint} could not be read")
    key = keys[0]
    expires = str(key.get("expires") or "")
    moment = (now or utcnow()).timestamp()
    if key.get("trust") == "r":
        raise SigningKeyError(f"the key {fingerprint} is revoked")
    if expires.isdigit() and int(expires) <= moment:
        raise SigningKeyError(f"the key {fingerprint} has expired")
    if "S" not in str(key.get("cap", "")):
        raise SigningKeyError(f"the key {fingerprint} cannot sign")
    algo, length = str(key.get("algo", "")), str(key.get("length", "0"))
    if algo in _FACTORING_ALGOS and int(length or 0) < MIN_RSA_BITS:
        raise SigningKeyError(f"RSA and DSA signing keys need at least {MIN_RSA_BITS} bits")
    name = str(key.get("curve") or "") or f"rsa{length}"
    uids = key.get("uids") or [""]
    return name, str(uids[0])


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class Rotation:
    """What a rotation did, for the operator."""

    old: str
    new: str
    effective_at: datetime
    key_file: Path
    passphrase_file: Path
    notified: int


def rotate_signing_key(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    reason: str,
    actor: str,
    import_key: Path | None = None,
    import_passphrase: Path | None = None,
) -> Rotation:
    """Hand the signing role from the current key to a new one (generated, or ``import_key``):
    a transition statement signed by both, the key files, the history row, an audit event and
    a notification to every recipient, all or nothing. Raises :class:`SigningKeyError`."""
    reason = " ".join(reason.split())
    with sessions() as db:
        old = load_mechanism_signer(settings, db)
        known = {row.fingerprint for row in history(db)}
    try:
        new = _new_signer(import_key, import_passphrase)
        if new.fingerprint == old.fingerprint or new.fingerprint in known:
            raise SigningKeyError(f"the key {new.fingerprint} has signed before; use a new key")
        refuse_example_key(new.fingerprint, demo_or_test=settings.demo_or_test)
        moment = utcnow()
        statement = statement_bytes(old.fingerprint, new.fingerprint, moment, reason)
        old_public, new_public = signer_public_key(old), signer_public_key(new)
        signature = _signed_by_both(statement, (old, new), (old_public, new_public))
    except (GpgError, StatementInvalid) as exc:
        raise SigningKeyError(str(exc)) from None
    except KeyRejected as exc:
        raise SigningKeyError(exc.reason) from None
    key_file, passphrase_file = _write_key_files(settings, new)
    try:
        with transaction(sessions) as db:
            notified = _record_rotation(
                db, old, (old_public, new_public), new, statement, signature, moment, actor
            )
    except BaseException:
        key_file.unlink(missing_ok=True)  # not the current key: nothing may sign with it
        passphrase_file.unlink(missing_ok=True)
        raise
    return Rotation(old.fingerprint, new.fingerprint, moment, key_file, passphrase_file, notified)


def _new_signer(import_key: Path | None, import_passphrase: Path | None) -> Signer:
    if import_key is not None:
        return load_signer(import_key, import_passphrase)
    passphrase = secrets.token_urlsafe(32)
    with temporary_keyring() as gpg:
        base = [gpg.gpgbinary, "--homedir", gpg.gnupghome, "--batch", "--no-tty"]
        secret = [*base, "--pinentry-mode", "loopback", "--passphrase-fd", "0"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        _gpg(
            [*secret, "--quick-generate-key", f"{_UID} ({stamp})", "ed25519", "sign,cert", "never"],
            passphrase,
        )
        listed = _gpg([*base, "--with-colons", "--list-secret-keys"], "")
        fingerprint = next(
            line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")
        )
        armored = _gpg([*secret, "--armor", "--export-secret-keys", fingerprint], passphrase)
    return Signer(armored, passphrase, fingerprint.upper())


def _gpg(argv: Sequence[str], stdin: str) -> str:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(argv), input=stdin.encode(), capture_output=True, timeout=120, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SigningKeyError(f"could not run gpg: {exc}") from None
    if proc.returncode != 0:
        raise SigningKeyError("gpg could not make the new signing key")
    return proc.stdout.decode("utf-8")


def _signed_by_both(statement: bytes, signers: Sequence[Signer], publics: Sequence[str]) -> str:
    """One armoured block holding a detached signature over ``statement`` by each signer,
    checked as ``portal-verify`` will check it."""
    with tempfile.TemporaryDirectory(prefix="portal-rotate-") as work:
        path = Path(work) / "transition.json"
        path.write_bytes(statement)
        packets = b"".join(signature_packets(detached_signature(path, s).decode()) for s in signers)
        armored = armor_signature(packets)
        Path(f"{path}.asc").write_text(armored, encoding="ascii")
        with temporary_keyring() as gpg:
            for public in publics:
                gpg.import_keys(public)
            try:
                read_transition(gpg, path)
            except VerifyFailed as exc:
                raise SigningKeyError(f"the transition statement does not check: {exc}") from None
    return armored


def signature_packets(armored: str) -> bytes:
    """The binary packets of one armoured PGP SIGNATURE block."""
    begin, end = "-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----"
    return dearmor(armored[armored.index(begin) + len(begin) : armored.index(end)])


def armor_signature(packets: bytes) -> str:
    """``packets`` as an ASCII-armoured PGP SIGNATURE block (RFC 4880 6.2, CRC-24 6.1)."""
    crc = 0xB704CE
    for byte in packets:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    body = base64.b64encode(packets).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    checksum = base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode("ascii")
    return (
        "\n".join(
            [
                "-----BEGIN PGP SIGNATURE-----",
                "",
                *lines,
                f"={checksum}",
                "-----END PGP SIGNATURE-----",
            ]
        )
        + "\n"
    )


def _write_key_files(settings: Settings, signer: Signer) -> tuple[Path, Path]:
    key, passphrase = key_files(settings, signer.fingerprint)
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key.parent.chmod(0o700)
    for path, content in ((key, signer.secret_key_armored), (passphrase, signer.passphrase or "")):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    return key, passphrase


def _record_rotation(
    db: Session,
    old: Signer,
    publics: tuple[str, str],
    new: Signer,
    statement: bytes,
    signature: str,
    moment: datetime,
    actor: str,
) -> int:
    current = current_key(db, lock=True)
    if current is None:  # the first key was never recorded (no `portal init` since)
        current = _row(publics[0], old.fingerprint, moment, actor)
        db.add(current)
    elif current.fingerprint != old.fingerprint:
        raise SigningKeyError("another rotation finished meanwhile; nothing was changed")
    current.active_until = moment
    row = _row(publics[1], new.fingerprint, moment, actor)
    row.transition_statement = statement.decode("utf-8")
    row.transition_signature = signature
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor,
        "signing_key.rotated",
        new.fingerprint,
        {"old_fingerprint": old.fingerprint, "new_fingerprint": new.fingerprint},
    )
    recipients = db.scalars(
        select(User).where(User.role == "recipient", User.is_active.is_(True), where_approved())
    )
    subject = N_(
        "The mechanism signs with a new key: %(fingerprint)s. Check it on the signing-key page.",
        fingerprint=grouped_fingerprint(new.fingerprint),
    )
    return len(notify(db, recipients, subject, link="/signing-key"))


# --------------------------------------------------------------------------- revocation


def revoke_signing_key(
    db: Session, fingerprint: str, certificate: str, *, reason: str, actor: str
) -> SigningKey:
    """Merge a revocation certificate into a retired key's published public key and mark it
    revoked (recipients who import it from the public page then refuse its signatures). The
    current key cannot be revoked: rotate first. Flushes."""
    fingerprint = "".join(fingerprint.split()).upper()
    row = db.scalar(select(SigningKey).where(SigningKey.fingerprint == fingerprint))
    if row is None:
        raise SigningKeyError(f"{fingerprint} is not one of the mechanism's signing keys")
    if row.active_until is None:
        raise SigningKeyError("this is the current signing key: rotate to a new key first")
    if row.revoked_at is not None:
        raise SigningKeyError(f"{fingerprint} was revoked on {row.revoked_at:%Y-%m-%d}")
    with temporary_keyring() as gpg:
        gpg.import_keys(row.public_key)
        gpg.import_keys(certificate)
        keys = [k for k in gpg.list_keys() if str(k.get("fingerprint", "")).upper() == fingerprint]
        if not keys or keys[0].get("trust") != "r":
            raise SigningKeyError(f"this is not a revocation certificate for {fingerprint}")
        row.public_key = str(gpg.export_keys(fingerprint))
    row.revoked_at = utcnow()
    row.revocation_reason = " ".join(reason.split()) or "revoked"
    db.flush()
    audit.record(db, actor, "signing_key.revoked", fingerprint)
    return row
