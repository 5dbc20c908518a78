"""OpenPGP for the verifier: the pinned fingerprint, the sender's key in the recipient's
keyring, and judging every signature against the pinned key.

"Pinned" means the fingerprint given with ``--sender-fingerprint``, obtained out of band. A
signature is accepted only when the primary fingerprint of the key that made it equals that
fingerprint, or that of a key the pinned one handed over to through transition statements
signed by both keys (:mod:`portal.verify.transition`), and only when made before that key
handed over in turn: gpg's "good signature" alone says nothing about *who* signed. A key
revoked in the recipient's keyring vouches for nothing (gpg itself still prints VALIDSIG and
exits 0 for it, beside REVKEYSIG and KEYREVOKED).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from portal.registry.openpgp import grouped_fingerprint
from portal.verify.results import (
    EXIT_BAD_SIGNATURE,
    EXIT_KEY_REVOKED,
    EXIT_USAGE,
    VerifyFailed,
)

_FINGERPRINT = re.compile(r"[0-9A-F]{40}(?:[0-9A-F]{24})?")
_MAX_DETACHED_SIGNATURE = 1 << 20  # an OpenPGP signature is a few hundred bytes
GPG_OFFLINE = ["--no-auto-key-retrieve"]  # never fetch keys from the network
_SIGNATURE_PROBLEMS = {
    "signature bad",
    "signature error",
    "signature expired",
    "signing key was revoked",
}


def format_fingerprint(fpr: str) -> str:
    """A fingerprint grouped as gpg prints it."""
    return grouped_fingerprint(fpr, middle_gap=True)


def normalise_fingerprint(text: str) -> str:
    """``text`` without spaces, in capitals; raises ValueError unless it is a full fingerprint."""
    fpr = "".join(text.split()).upper()
    if fpr.startswith("0X"):
        fpr = fpr[2:]
    if not _FINGERPRINT.fullmatch(fpr):
        raise ValueError(
            "the sender fingerprint must be the full fingerprint: 40 (or 64) hexadecimal digits"
        )
    return fpr


@dataclass(frozen=True)
class SenderKey:
    """The pinned key as found in the recipient's keyring, and the keys it handed over to."""

    fingerprint: str
    expires: int | None  # Unix time; None: does not expire
    #: The keys reached from this one by transition statements, in order (each with its own
    #: ``handed_over_at`` but no successors of its own); empty without statements.
    successors: tuple[SenderKey, ...] = ()
    #: When this key handed over to the next (Unix time); None: it has not, as far as known.
    handed_over_at: int | None = None

    def accepted(self) -> dict[str, SenderKey]:
        """Every key whose signatures count, by primary fingerprint."""
        return {key.fingerprint: key for key in (self, *self.successors)}


@dataclass(frozen=True)
class FailureCodes:
    """The exit codes a signature check fails with: made by another key, or not good."""

    wrong_signer: int
    bad: int


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def judge_signature(result: Any, sender: SenderKey, what: str, codes: FailureCodes) -> str:
    """Say why every signature in ``result`` (a python-gnupg Verify or Crypt result) is good
    and made by the pinned key (or a key it handed over to); raise VerifyFailed otherwise."""
    return judge_signer(result, sender, what, codes)[0]


def judge_signer(result: Any, sender: SenderKey, what: str, codes: FailureCodes) -> tuple[str, str]:
    """:func:`judge_signature`, also returning the primary fingerprint of the key that signed.

    ``pubkey_fingerprint`` (VALIDSIG's last field) is the *primary* key's fingerprint, so a
    signature made by a signing subkey is attributed to its primary key. A key that has
    expired since still vouches for signatures made before it expired (packages are checked
    years later); a revoked key vouches for nothing (:data:`EXIT_KEY_REVOKED`); a key that
    handed over to a successor vouches only for signatures made before it did.
    """
    pinned = sender.fingerprint
    accepted = sender.accepted()
    statuses = [str(p.get("status")) for p in result.problems]
    if "no public key" in statuses:
        keyid = next(p.get("keyid") for p in result.problems if p.get("status") == "no public key")
        raise VerifyFailed(
            codes.wrong_signer,
            f"{what} was made by key {keyid or '?'}, which is not the pinned sender key "
            f"{format_fingerprint(pinned)}",
        )
    raw = str(getattr(result, "stderr", "") or "")
    if "signing key was revoked" in statuses or "[GNUPG:] KEYREVOKED" in raw:
        signer = str(getattr(result, "pubkey_fingerprint", "") or "").upper() or "?"
        raise VerifyFailed(EXIT_KEY_REVOKED, revoked_words(what, signer))
    bad = [status for status in statuses if status in _SIGNATURE_PROBLEMS]
    if bad:
        raise VerifyFailed(codes.bad, f"{what} is not valid ({bad[0]})")
    signatures = list(result.sig_info.values())
    if not signatures:
        raise VerifyFailed(codes.bad, f"{what} is missing: there is no signature to check")
    notes = ""
    signer = pinned
    for info in signatures:
        status = info.get("status")
        if status != "signature valid":
            raise VerifyFailed(codes.bad, f"{what} is not valid ({status or 'unknown status'})")
        signer = str(info.get("pubkey_fingerprint") or info.get("fingerprint") or "").upper()
        key = accepted.get(signer)
        if key is None:
            chain = " nor by a key it handed over to" if sender.successors else ""
            raise VerifyFailed(
                codes.wrong_signer,
                f"{what} was made by key {format_fingerprint(signer)}, not by the pinned "
                f"sender key {format_fingerprint(pinned)}{chain}",
            )
        made = int(info.get("timestamp") or 0)
        if key.handed_over_at is not None and made >= key.handed_over_at:
            raise VerifyFailed(
                codes.wrong_signer,
                f"{what} was made by key {format_fingerprint(signer)} on {_day(made)}, after "
                f"it handed over to its successor on {_day(key.handed_over_at)} (transition "
                "statement): a retired key signs nothing new",
            )
        notes = _expiry_note(what, key, made, "signing key has expired" in statuses, codes)
    if signer != pinned:
        notes += ", a key reached from the pinned one by transition statements"
    return f"good signature by {format_fingerprint(signer)}{notes}", signer


def _expiry_note(what: str, key: SenderKey, made: int, expired: bool, codes: FailureCodes) -> str:
    if not expired:
        return ""
    if key.expires is None or made >= key.expires:
        raise VerifyFailed(codes.bad, f"{what} was made after the sender key expired")
    return f", made on {_day(made)}, before the key expired on {_day(key.expires)}"


def revoked_words(what: str, fingerprint: str) -> str:
    """The report's sentence for a signature by a revoked key."""
    shown = format_fingerprint(fingerprint) if _FINGERPRINT.fullmatch(fingerprint) else fingerprint
    return (
        f"{what} was made by key {shown}, which has been REVOKED by its owner (a revocation "
        "certificate is in your keyring): it vouches for nothing, whenever it signed. Ask the "
        "mechanism, out of band, for its current key"
    )


def keyring_entry(gpg: gnupg.GPG, fingerprint: str) -> SenderKey | None:
    """The primary key ``fingerprint`` in the keyring (None when absent); VerifyFailed
    (:data:`EXIT_KEY_REVOKED`) when it is revoked there."""
    for key in gpg.list_keys(keys=[fingerprint]):
        if str(key.get("fingerprint", "")).upper() == fingerprint:
            if key.get("trust") == "r":
                raise VerifyFailed(
                    EXIT_KEY_REVOKED,
                    f"the key {format_fingerprint(fingerprint)} has been REVOKED by its owner "
                    "(a revocation certificate is in your keyring): nothing it signed is "
                    "trusted. Ask the mechanism, out of band, for its current key",
                )
            expires = str(key.get("expires") or "")
            return SenderKey(fingerprint, int(expires) if expires.isdigit() else None)
    return None


def require_sender_key(gpg: gnupg.GPG, pinned: str, home: Path) -> SenderKey:
    """The pinned key must be in the keyring, as a primary key."""
    found = keyring_entry(gpg, pinned)
    if found is not None:
        return found
    keys = gpg.list_keys(keys=[pinned])
    if keys:  # gpg also finds a key by the fingerprint of one of its subkeys
        primary = str(keys[0].get("fingerprint", "")).upper()
        raise VerifyFailed(
            EXIT_USAGE,
            f"{format_fingerprint(pinned)} is a subkey of the key "
            f"{format_fingerprint(primary)}; pin the primary key's fingerprint",
        )
    raise VerifyFailed(
        EXIT_BAD_SIGNATURE,
        f"the sender's public key {format_fingerprint(pinned)} is not in the keyring "
        f"{home}, so no signature can be checked; import it first "
        f"(gpg --homedir {home} --import SENDER-KEY.asc)",
    )


def check_detached(
    gpg: gnupg.GPG,
    signature: Path,
    data: Path,
    sender: SenderKey,
    *,
    role: str,
    label: str,
    codes: FailureCodes,
) -> str:
    """Judge the detached ``signature`` over ``data``, called "the ``role`` ``label``" in the
    report (``label`` names the signature file)."""
    if signature.stat().st_size > _MAX_DETACHED_SIGNATURE:
        raise VerifyFailed(codes.bad, f"{label} is too large to be a signature")
    with signature.open("rb") as stream:
        result = gpg.verify_file(stream, data_filename=str(data), extra_args=GPG_OFFLINE)
    return judge_signature(result, sender, f"the {role} {label}", codes)
