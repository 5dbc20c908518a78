"""``portal-verify``: the recipient's offline check of a package from the mechanism.

A package is ``PKG-YYYY-NNNN.tar.gpg`` (a tar holding one BagIt bag, signed by the mechanism and
encrypted to the authority) with, optionally, ``PKG-YYYY-NNNN.tar.gpg.sig`` beside it (a detached
signature over the ciphertext). The verifier runs six checks and stops at the first failure:

1. the detached signature, when there is one, is good and made by the pinned sender key;
2. the package decrypts with the recipient's keyring and its inline signature (mandatory) is
   good and made by the pinned sender key;
3. the tar is safe to extract (no absolute paths, ``..``, links, devices or FIFOs, one
   top-level directory, no duplicate names, nothing larger than the bag announces);
4. the bag is valid (Library of Congress ``bagit``: complete, every checksum right);
5. ``data/manifest.json`` matches its JSON Schema and ``data/manifest.json.asc`` is a good
   signature over it by the pinned sender key;
6. the manifest and the bag agree: every file the manifest names is in the bag with the same
   SHA-256 and size, and every payload file is named by the manifest.

"Pinned" means the fingerprint given with ``--sender-fingerprint``, obtained out of band. A
signature is accepted only when the primary fingerprint of the key that made it equals that
fingerprint: gpg's "good signature" alone says nothing about *who* signed.

This module is run on the recipient's machine, possibly years later: it imports nothing from
Flask, SQLAlchemy or WeasyPrint (only python-gnupg, bagit, jsonschema and the manifest module).
The decrypted tar is streamed to a private temporary file, never held in memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
import gnupg

from portal.packages.assembly.manifest import (
    MANIFEST_PATH,
    SIGNATURE_PATH,
    ManifestInvalid,
    parse_manifest,
)
from portal.registry.openpgp import grouped_fingerprint

__all__ = [
    "EXIT_BAD_SIGNATURE",
    "EXIT_BAG_INVALID",
    "EXIT_CANNOT_DECRYPT",
    "EXIT_MANIFEST_INVALID",
    "EXIT_OK",
    "EXIT_UNSAFE_ARCHIVE",
    "EXIT_USAGE",
    "EXIT_WRONG_SIGNER",
    "Check",
    "Outcome",
    "main",
    "verify_package",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_SIGNATURE = 10
EXIT_WRONG_SIGNER = 11
EXIT_CANNOT_DECRYPT = 12
EXIT_BAG_INVALID = 13
EXIT_MANIFEST_INVALID = 14
EXIT_UNSAFE_ARCHIVE = 15

EXIT_CODES_HELP = """\
exit codes:
  0   verified
  2   usage error (bad arguments, missing file, non-empty --out directory, a subkey
      fingerprint pinned instead of the primary one), or gpg could not be run
  10  bad or missing signature (detached or inline), or the sender's key is not in the keyring
  11  signed, but not by the pinned sender fingerprint
  12  cannot decrypt (no matching secret key in the keyring, or damaged ciphertext)
  13  the BagIt bag is invalid (incomplete, or a checksum does not match)
  14  the manifest is invalid (schema, its signature, or it disagrees with the bag)
  15  unsafe archive (absolute path, "..", link, device, duplicate name, oversize member)
"""

_FINGERPRINT = re.compile(r"[0-9A-F]{40}(?:[0-9A-F]{24})?")
_OXUM = re.compile(r"(\d+)\.(\d+)")
_MAX_DETACHED_SIGNATURE = 1 << 20  # an OpenPGP signature is a few hundred bytes
_MAX_TAG_FILE = 64 << 20  # tag files are read into memory before anything is trusted
_PAYLOAD_DIR = "data"
_GPG_OFFLINE = ["--no-auto-key-retrieve"]  # never fetch keys from the network
_SIGNATURE_PROBLEMS = {
    "signature bad",
    "signature error",
    "signature expired",
    "signing key was revoked",
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Check:
    """One step of the verification, as reported."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass
class Outcome:
    """The whole verification: the checks run, the exit code and the package summary."""

    package: Path
    sender_fingerprint: str
    checks: list[Check] = field(default_factory=list)
    exit_code: int = EXIT_OK
    message: str = ""
    manifest: dict[str, Any] | None = None
    signature_checked: bool = False
    extracted_to: Path | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "message": self.message,
            "package_file": str(self.package),
            "sender_fingerprint": self.sender_fingerprint,
            "detached_signature_checked": self.signature_checked,
            "checks": [
                {"name": c.name, "ok": c.ok, "skipped": c.skipped, "detail": c.detail}
                for c in self.checks
            ],
            "package": _summary(self.manifest) if self.manifest is not None else None,
            "extracted_to": str(self.extracted_to) if self.extracted_to else None,
        }


class _Failed(Exception):
    """A check failed: the exit code and one sentence a person can read."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


class _UsageError(Exception):
    pass


# --------------------------------------------------------------------------- signatures


def _format_fingerprint(fpr: str) -> str:
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
class _SenderKey:
    """The pinned key as found in the recipient's keyring."""

    fingerprint: str
    expires: int | None  # Unix time; None: does not expire


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def _judge_signature(
    result: Any, sender: _SenderKey, what: str, *, wrong_signer_code: int, bad_code: int
) -> str:
    """Say why every signature in ``result`` (a python-gnupg Verify or Crypt result) is good
    and made by the pinned key; raise _Failed otherwise.

    ``pubkey_fingerprint`` (VALIDSIG's last field) is the *primary* key's fingerprint, so a
    signature made by a signing subkey is attributed to its primary key. A key that has
    expired since still vouches for signatures made before it expired (packages are checked
    years later); a revoked key vouches for nothing.
    """
    pinned = sender.fingerprint
    statuses = [str(p.get("status")) for p in result.problems]
    if "no public key" in statuses:
        keyid = next(p.get("keyid") for p in result.problems if p.get("status") == "no public key")
        raise _Failed(
            wrong_signer_code,
            f"{what} was made by key {keyid or '?'}, which is not the pinned sender key "
            f"{_format_fingerprint(pinned)}",
        )
    bad = [status for status in statuses if status in _SIGNATURE_PROBLEMS]
    if bad:
        raise _Failed(bad_code, f"{what} is not valid ({bad[0]})")
    signatures = list(result.sig_info.values())
    if not signatures:
        raise _Failed(bad_code, f"{what} is missing: there is no signature to check")
    expired_note = ""
    for info in signatures:
        status = info.get("status")
        if status != "signature valid":
            raise _Failed(bad_code, f"{what} is not valid ({status or 'unknown status'})")
        signer = str(info.get("pubkey_fingerprint") or info.get("fingerprint") or "").upper()
        if signer != pinned:
            raise _Failed(
                wrong_signer_code,
                f"{what} was made by key {_format_fingerprint(signer)}, not by the pinned "
                f"sender key {_format_fingerprint(pinned)}",
            )
        if "signing key has expired" in statuses:
            made = int(info.get("timestamp") or 0)
            if sender.expires is None or made >= sender.expires:
                raise _Failed(bad_code, f"{what} was made after the sender key expired")
            expired_note = (
                f", made on {_day(made)}, before the key expired on {_day(sender.expires)}"
            )
    return f"good signature by {_format_fingerprint(pinned)}{expired_note}"


def _require_sender_key(gpg: gnupg.GPG, pinned: str, home: Path) -> _SenderKey:
    """The pinned key must be in the keyring, as a primary key."""
    keys = gpg.list_keys(keys=[pinned])
    for key in keys:
        if str(key.get("fingerprint", "")).upper() == pinned:
            expires = str(key.get("expires") or "")
            return _SenderKey(pinned, int(expires) if expires.isdigit() else None)
    if keys:  # gpg also finds a key by the fingerprint of one of its subkeys
        primary = str(keys[0].get("fingerprint", "")).upper()
        raise _Failed(
            EXIT_USAGE,
            f"{_format_fingerprint(pinned)} is a subkey of the key "
            f"{_format_fingerprint(primary)}; pin the primary key's fingerprint",
        )
    raise _Failed(
        EXIT_BAD_SIGNATURE,
        f"the sender's public key {_format_fingerprint(pinned)} is not in the keyring "
        f"{home}, so no signature can be checked; import it first "
        f"(gpg --homedir {home} --import SENDER-KEY.asc)",
    )


def _check_detached(gpg: gnupg.GPG, package: Path, signature: Path, sender: _SenderKey) -> str:
    if signature.stat().st_size > _MAX_DETACHED_SIGNATURE:
        raise _Failed(EXIT_BAD_SIGNATURE, f"{signature.name} is too large to be a signature")
    with signature.open("rb") as stream:
        result = gpg.verify_file(stream, data_filename=str(package), extra_args=_GPG_OFFLINE)
    return _judge_signature(
        result,
        sender,
        f"the detached signature {signature.name}",
        wrong_signer_code=EXIT_WRONG_SIGNER,
        bad_code=EXIT_BAD_SIGNATURE,
    )


def _decrypt(gpg: gnupg.GPG, package: Path, plaintext: Path) -> Any:
    """Decrypt ``package`` into the file ``plaintext`` (streamed by gpg, never in memory);
    return gpg's result, whose signature fields :func:`_judge_signature` reads."""
    result = gpg.decrypt_file(str(package), output=str(plaintext), extra_args=_GPG_OFFLINE)
    if not result.ok:
        plaintext.unlink(missing_ok=True)
        if result.status == "no secret key":
            reason = (
                "none of the keys it is encrypted to has its secret key in your keyring "
                "(is it addressed to another authority?)"
            )
        else:
            reason = f"gpg reports: {result.status or 'unknown error'}"
        raise _Failed(EXIT_CANNOT_DECRYPT, f"the package cannot be decrypted: {reason}")
    return result


# --------------------------------------------------------------------------- safe extraction


@dataclass(frozen=True)
class _Archive:
    top: str  # the single top-level directory: the bag's name
    members: tuple[tarfile.TarInfo, ...]
    payload_bytes: int
    payload_files: int


def _unsafe(message: str) -> _Failed:
    return _Failed(EXIT_UNSAFE_ARCHIVE, f"unsafe archive: {message}")


def _member_kind(member: tarfile.TarInfo) -> str | None:
    """None for a regular file or a directory; otherwise what it is (and why it is refused)."""
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if member.isreg() or member.isdir():
        return None
    return f"an entry of unsupported type {member.type!r}"


def _check_name(name: str) -> list[str]:
    if not name:
        raise _unsafe("an entry has an empty name")
    if name.startswith("/"):
        raise _unsafe(f"{name!r} is an absolute path")
    if "\\" in name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise _unsafe(f"{name!r} contains a backslash or a control character")
    parts = name.split("/")
    if ".." in parts:
        raise _unsafe(f"{name!r} climbs out of the bag with '..'")
    if any(part in ("", ".") for part in parts):
        raise _unsafe(f"{name!r} has an empty or '.' path component")
    return parts


def _scan(tar: tarfile.TarFile) -> tuple[str, list[tarfile.TarInfo]]:
    """First pass, over the headers only: names, types, one top directory, no duplicates."""
    top: str | None = None
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    files: set[str] = set()
    dirs: set[str] = set()
    for member in tar:
        parts = _check_name(member.name)
        kind = _member_kind(member)
        if kind is not None:
            raise _unsafe(f"{member.name!r} is {kind}")
        if top is None:
            top = parts[0]
        elif parts[0] != top:
            raise _unsafe(f"{member.name!r} is outside the bag directory {top!r}")
        if member.isreg() and len(parts) < 2:
            raise _unsafe(f"{member.name!r} is a file outside the bag directory")
        key = unicodedata.normalize("NFC", member.name).casefold()
        if key in seen:
            raise _unsafe(f"{member.name!r} appears twice in the archive")
        seen.add(key)
        (files if member.isreg() else dirs).add(key)
        dirs.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
        members.append(member)
    if top is None:
        raise _unsafe("the archive is empty")
    clash = files & dirs
    if clash:
        raise _unsafe(f"{sorted(clash)[0]!r} is both a file and a directory")
    return top, members


def _read_tag_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    if member.size > _MAX_TAG_FILE:
        raise _unsafe(f"the tag file {member.name!r} is larger than {_MAX_TAG_FILE} bytes")
    stream = tar.extractfile(member)
    if stream is None:  # not a regular file; _scan refused those already
        raise _unsafe(f"{member.name!r} is not a regular file")
    with stream:
        raw = stream.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Failed(EXIT_BAG_INVALID, f"{member.name} is not UTF-8 text") from None


def _manifest_paths(text: str) -> set[str]:
    """Payload paths named by a manifest-sha256.txt (RFC 8493 2.1.3 percent-encoding undone)."""
    paths: set[str] = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        _digest, _, path = line.partition(" ")
        path = path.lstrip(" *").replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        paths.add(unicodedata.normalize("NFC", path))
    return paths


def _announced(
    tar: tarfile.TarFile, top: str, members: Sequence[tarfile.TarInfo]
) -> tuple[int, int, set[str]]:
    """Payload-Oxum (bytes, files) and the payload paths of manifest-sha256.txt."""
    by_name = {member.name: member for member in members}
    info = by_name.get(f"{top}/bag-info.txt")
    manifest = by_name.get(f"{top}/manifest-sha256.txt")
    if info is None or manifest is None:
        missing = "bag-info.txt" if info is None else "manifest-sha256.txt"
        raise _Failed(EXIT_BAG_INVALID, f"the bag has no {missing}")
    oxum = None
    for line in _read_tag_file(tar, info).splitlines():
        label, _, value = line.partition(":")
        if label.strip().lower() == "payload-oxum":
            oxum = _OXUM.fullmatch(value.strip())
    if oxum is None:
        raise _Failed(EXIT_BAG_INVALID, "bag-info.txt has no valid Payload-Oxum")
    return int(oxum[1]), int(oxum[2]), _manifest_paths(_read_tag_file(tar, manifest))


def _check_sizes(tar: tarfile.TarFile, top: str, members: Sequence[tarfile.TarInfo]) -> _Archive:
    """Every payload file is announced by manifest-sha256.txt, and sizes stay within
    Payload-Oxum (each file and in total) before a single byte is extracted."""
    oxum_bytes, oxum_files, announced = _announced(tar, top, members)
    total = count = 0
    prefix = f"{top}/"
    for member in members:
        if not member.isreg():
            continue
        relative = member.name[len(prefix) :]
        if relative.split("/")[0] != _PAYLOAD_DIR:
            if member.size > _MAX_TAG_FILE:
                raise _unsafe(f"the tag file {member.name!r} is larger than {_MAX_TAG_FILE} bytes")
            continue
        if unicodedata.normalize("NFC", relative) not in announced:
            raise _unsafe(f"{member.name!r} is not announced in manifest-sha256.txt")
        if member.size > oxum_bytes:
            raise _unsafe(
                f"{member.name!r} is {member.size} bytes, more than the whole payload "
                f"announced by Payload-Oxum ({oxum_bytes} bytes)"
            )
        total += member.size
        count += 1
        if total > oxum_bytes or count > oxum_files:
            raise _unsafe(
                f"the payload exceeds what Payload-Oxum announces ({oxum_bytes} bytes in "
                f"{oxum_files} files)"
            )
    return _Archive(top, tuple(members), total, count)


def _extract(tar_path: Path, dest: Path) -> tuple[Path, str]:
    """Check the tar (two passes over its headers), extract it into ``dest``; return the bag
    directory and what was checked."""
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            top, members = _scan(tar)
            archive = _check_sizes(tar, top, members)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=archive.members, filter="data")
            else:  # Python < 3.11.4: our own checks above are the only guard
                tar.extractall(dest, members=archive.members)  # noqa: S202 - members checked
    except tarfile.FilterError as exc:
        raise _unsafe(str(exc)) from None
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise _unsafe(f"the decrypted content is not a readable tar archive ({exc})") from None
    bag = dest / archive.top
    for member in archive.members:
        if member.isreg() and (dest / member.name).stat().st_size != member.size:
            raise _unsafe(f"{member.name!r} did not extract to its announced size")
    if not bag.is_dir():
        raise _unsafe("the archive holds no bag directory")
    return bag, (
        f"{len(archive.members)} entries, no absolute paths, '..', links, devices or duplicate "
        f"names; {archive.payload_files} payload files, {archive.payload_bytes} bytes, within "
        "what Payload-Oxum and manifest-sha256.txt announce"
    )


# --------------------------------------------------------------------------- bag and manifest


def _validate_bag(bag_dir: Path) -> tuple[bagit.Bag, str]:
    try:
        bag = bagit.Bag(str(bag_dir))
        if "sha256" not in bag.algorithms:
            raise _Failed(EXIT_BAG_INVALID, "the bag has no SHA-256 manifest")
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        details = [str(detail) for detail in (exc.details or [])]
        shown = "; ".join(details[:3]) or str(exc.message)
        more = f" (and {len(details) - 3} more)" if len(details) > 3 else ""
        raise _Failed(EXIT_BAG_INVALID, f"the bag is not valid: {shown}{more}") from None
    except bagit.BagError as exc:
        raise _Failed(EXIT_BAG_INVALID, f"the bag is not valid: {exc}") from None
    files = len(bag.payload_entries())
    return bag, f"bag {bag_dir.name} is complete; {files} payload files, every SHA-256 matches"


def _read_manifest(bag_dir: Path) -> dict[str, Any]:
    path = bag_dir / MANIFEST_PATH
    if not path.is_file():
        raise _Failed(EXIT_MANIFEST_INVALID, f"the bag has no {MANIFEST_PATH}")
    try:
        return parse_manifest(path.read_bytes())
    except ManifestInvalid as exc:
        raise _Failed(EXIT_MANIFEST_INVALID, str(exc)) from None


def _check_manifest_signature(gpg: gnupg.GPG, bag_dir: Path, sender: _SenderKey) -> str:
    signature = bag_dir / SIGNATURE_PATH
    if not signature.is_file():
        raise _Failed(EXIT_MANIFEST_INVALID, f"the bag has no {SIGNATURE_PATH}")
    if signature.stat().st_size > _MAX_DETACHED_SIGNATURE:
        raise _Failed(EXIT_MANIFEST_INVALID, f"{SIGNATURE_PATH} is too large to be a signature")
    with signature.open("rb") as stream:
        result = gpg.verify_file(
            stream, data_filename=str(bag_dir / MANIFEST_PATH), extra_args=_GPG_OFFLINE
        )
    return _judge_signature(
        result,
        sender,
        f"the manifest signature {SIGNATURE_PATH}",
        wrong_signer_code=EXIT_MANIFEST_INVALID,
        bad_code=EXIT_MANIFEST_INVALID,
    )


def _cross_check(bag: bagit.Bag, bag_dir: Path, manifest: Mapping[str, Any], pinned: str) -> str:
    """The manifest and the bag name the same files with the same digests and sizes."""
    digests = {
        unicodedata.normalize("NFC", path.replace(os.sep, "/")): hashes.get("sha256")
        for path, hashes in bag.payload_entries().items()
    }
    problems: list[str] = []
    if manifest["package"]["code"] != bag_dir.name:
        problems.append(
            f"the manifest names package {manifest['package']['code']}, the bag is {bag_dir.name}"
        )
    if manifest["signing_key_fingerprint"] != pinned:
        problems.append(
            "the manifest names signing key "
            f"{manifest['signing_key_fingerprint']}, not the pinned sender key"
        )
    named: set[str] = set()
    entries = [("item " + e["code"], e) for e in manifest["items"]]
    entries += [("document " + repr(e["title"]), e) for e in manifest["documents"]]
    for label, entry in entries:
        path = entry["path"]
        named.add(path)
        if path not in digests:
            problems.append(f"{label}: {path} is not in the bag")
        elif digests[path] != entry["sha256"]:
            problems.append(f"{label}: {path} has a different SHA-256 in the bag")
        elif (bag_dir / path).stat().st_size != entry["size"]:
            problems.append(f"{label}: {path} has a different size in the bag")
    for path in sorted(set(digests) - named - {MANIFEST_PATH, SIGNATURE_PATH}):
        problems.append(f"{path} is in the bag but not in the manifest")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise _Failed(
            EXIT_MANIFEST_INVALID,
            "the manifest does not match the bag: " + "; ".join(problems[:3]) + more,
        )
    return f"{len(entries)} files named by the manifest match the bag, and nothing else is in it"


# --------------------------------------------------------------------------- orchestration


class _Steps:
    """Records each check as it passes; on failure the current one is recorded as failed."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.current = ""

    def start(self, name: str) -> None:
        self.current = name

    def passed(self, detail: str, *, skipped: bool = False) -> None:
        self.outcome.checks.append(Check(self.current, True, detail, skipped))

    def failed(self, failure: _Failed) -> None:
        self.outcome.checks.append(Check(self.current, False, failure.message))
        self.outcome.exit_code = failure.exit_code
        self.outcome.message = failure.message


def _clear(directory: Path, created: bool) -> None:
    """Undo what was extracted into ``--out`` after a failure: it keeps only verified bags."""
    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def verify_package(
    package: Path,
    sender_fingerprint: str,
    *,
    signature: Path | None = None,
    gnupghome: Path | None = None,
    out: Path | None = None,
) -> Outcome:
    """Run every check on ``package``; the :class:`Outcome` says which passed and why not.

    ``signature`` is the detached signature (None: not checked). ``gnupghome`` is the
    recipient's keyring (default ``~/.gnupg``): it must hold the authority's secret key and the
    sender's public key; it is only read. ``out``, when given, must be an empty or missing
    directory; the bag is kept there when, and only when, the package verifies.
    """
    pinned = normalise_fingerprint(sender_fingerprint)
    home = (gnupghome or Path("~/.gnupg")).expanduser()
    outcome = Outcome(package=package, sender_fingerprint=pinned)
    steps = _Steps(outcome)
    created_out = out is not None and not out.exists()
    work = Path(tempfile.mkdtemp(prefix="portal-verify-"))
    try:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        gpg = gnupg.GPG(gnupghome=str(home))
        steps.start("sender_key")
        sender = _require_sender_key(gpg, pinned, home)
        steps.passed(f"the pinned sender key {_format_fingerprint(pinned)} is in {home}")

        steps.start("detached_signature")
        if signature is None:
            steps.passed(
                "not checked: there is no detached signature file (it is optional; the "
                "signature inside the package is mandatory and is checked below)",
                skipped=True,
            )
        else:
            steps.passed(_check_detached(gpg, package, signature, sender))
            outcome.signature_checked = True

        steps.start("decryption")
        plaintext = work / "package.tar"
        result = _decrypt(gpg, package, plaintext)
        steps.passed("decrypted with a secret key of your keyring")

        steps.start("inline_signature")
        steps.passed(
            _judge_signature(
                result,
                sender,
                "the signature inside the package",
                wrong_signer_code=EXIT_WRONG_SIGNER,
                bad_code=EXIT_BAD_SIGNATURE,
            )
        )

        steps.start("archive_safety")
        # Into --out only through a staging directory named as what it holds: the bag gets
        # its own name there once every check passed, so even a kill midway never leaves
        # an unverified bag that looks like a verified one.
        staging = (
            Path(tempfile.mkdtemp(dir=out, prefix=".unverified-"))
            if out is not None
            else work / "extracted"
        )
        bag_dir, detail = _extract(plaintext, staging)
        plaintext.unlink()
        steps.passed(detail)

        steps.start("bag")
        bag, detail = _validate_bag(bag_dir)
        steps.passed(detail)

        steps.start("manifest_schema")
        manifest = _read_manifest(bag_dir)
        steps.passed(f"{MANIFEST_PATH} matches schema version {manifest['schema_version']}")

        steps.start("manifest_signature")
        steps.passed(_check_manifest_signature(gpg, bag_dir, sender))

        steps.start("cross_check")
        steps.passed(_cross_check(bag, bag_dir, manifest, pinned))
        if out is not None:
            verified = out / bag_dir.name
            os.replace(bag_dir, verified)
            staging.rmdir()
            bag_dir = verified
    except _Failed as failure:
        steps.failed(failure)
        if out is not None and out.is_dir():
            _clear(out, created_out)
        return outcome
    except BaseException:
        if out is not None and out.is_dir():
            _clear(out, created_out)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outcome.manifest = manifest
    outcome.extracted_to = bag_dir if out is not None else None
    outcome.message = (
        "VERIFIED: the package is complete and unaltered, and was signed by the pinned sender key"
    )
    return outcome


# --------------------------------------------------------------------------- report


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What the JSON report says about the package (the manifest, less the custody detail)."""
    return {
        "code": manifest["package"]["code"],
        "created_at": manifest["package"]["created_at"],
        "authority": manifest["authority"],
        "rfa": manifest["rfa"],
        "decision": manifest["decision"],
        "signer_fingerprint": manifest["signing_key_fingerprint"],
        "recipient_fingerprints": manifest["recipient_fingerprints"],
        "items": [
            {
                "code": item["code"],
                "title": item["title"],
                "kind": item["kind"],
                "provider": item["provider"],
                "rendition": item["rendition"],
                "path": item["path"],
                "sha256": item["sha256"],
                "size": item["size"],
                "redaction_count": sum(r["count"] for r in item["redactions"]),
                "redactions": item["redactions"],
            }
            for item in manifest["items"]
        ],
        "documents": [
            {"title": doc["title"], "path": doc["path"], "sha256": doc["sha256"]}
            for doc in manifest["documents"]
        ],
    }


def _redaction_text(redactions: Sequence[Mapping[str, Any]]) -> str:
    if not redactions:
        return "no redactions"
    total = sum(int(r["count"]) for r in redactions)
    parts = ", ".join(
        f"{r['count']} {r['kind'].replace('_', ' ')} ({r['reason']})" for r in redactions
    )
    return f"{total} redaction{'s' if total != 1 else ''}: {parts}"


def render_text(outcome: Outcome) -> str:
    """The report a person reads: what the package is, what was checked, the verdict."""
    lines = [f"Package file   {outcome.package}"]
    manifest = outcome.manifest
    if manifest is not None:
        authority = manifest["authority"]
        rfa = manifest["rfa"]
        decision = manifest["decision"]
        package = manifest["package"]
        lines += [
            f"Package        {package['code']} (made {package['created_at']})",
            f"Addressed to   {authority['name']} ({authority['code']}, {authority['country']})",
            f"Request        {rfa['reference']} (your reference: {rfa['authority_reference']})",
            f"Decision       {decision['id']} of {decision['decided_at']}, policy "
            f"{decision['policy_id']} revision {decision['policy_revision'][:12]}",
            f"Signed by      {_format_fingerprint(manifest['signing_key_fingerprint'])}",
        ]
    lines += ["", "Checks"]
    for check in outcome.checks:
        mark = "skipped" if check.skipped else ("ok" if check.ok else "FAILED")
        lines.append(f"  [{mark:>7}] {check.name.replace('_', ' ')}: {check.detail}")
    if manifest is not None:
        lines += ["", f"Items ({len(manifest['items'])})"]
        for item in manifest["items"]:
            rendition = "redacted rendition" if item["rendition"] == "redacted" else "as is"
            lines.append(f"  {item['code']}  {item['title']}")
            lines.append(
                f"      {rendition}, {_redaction_text(item['redactions'])}; provider: "
                f"{item['provider']}"
            )
            lines.append(f"      {item['path']}  sha256 {item['sha256']}")
        if manifest["documents"]:
            lines += ["", "Documents"]
            for doc in manifest["documents"]:
                lines.append(f"  {doc['title']}: {doc['path']}")
        if outcome.extracted_to is not None:
            lines += ["", f"The verified bag is in {outcome.extracted_to}"]
    verdict = outcome.message if outcome.ok else f"NOT VERIFIED: {outcome.message}"
    lines += ["", verdict, ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-verify",
        description=(
            "Verify a package from the mechanism offline: its signatures (against the sender "
            "fingerprint you obtained out of band), decryption with your keyring, safe "
            "extraction, the BagIt bag, and the signed manifest."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("package", type=Path, help="the package file, PKG-YYYY-NNNN.tar.gpg")
    parser.add_argument(
        "--sender-fingerprint",
        required=True,
        help="the mechanism's signing key fingerprint (40 hex digits; spaces allowed)",
    )
    parser.add_argument(
        "--signature",
        type=Path,
        help="detached signature over the package (default: PACKAGE.sig when it exists)",
    )
    parser.add_argument(
        "--gnupghome",
        type=Path,
        help="your GnuPG keyring directory (default: ~/.gnupg); it must hold your secret key "
        "and the sender's public key",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="keep the verified bag in this directory (missing or empty; default: a temporary "
        "directory removed at exit)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _check_arguments(args: argparse.Namespace) -> tuple[str, Path | None]:
    """Validate the arguments; return the pinned fingerprint and the detached signature."""
    try:
        pinned = normalise_fingerprint(args.sender_fingerprint)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if not args.package.is_file():
        raise _UsageError(f"{args.package}: no such file")
    signature: Path | None = args.signature
    if signature is not None and not signature.is_file():
        raise _UsageError(f"{signature}: no such signature file")
    if signature is None:
        beside = args.package.with_name(args.package.name + ".sig")
        signature = beside if beside.is_file() else None
    home = (args.gnupghome or Path("~/.gnupg")).expanduser()
    if not home.is_dir():
        raise _UsageError(f"{home}: no such keyring directory")
    out: Path | None = args.out
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _UsageError(f"{out}: --out must be a missing or empty directory")
    return pinned, signature


def main(argv: Sequence[str] | None = None) -> int:
    """The ``portal-verify`` command; returns the exit code (see ``--help``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        pinned, signature = _check_arguments(args)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"portal-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in ("gnupg", "bagit"):  # their warnings repeat what the report says
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        outcome = verify_package(
            args.package, pinned, signature=signature, gnupghome=args.gnupghome, out=args.out
        )
    except OSError as exc:  # gpg missing, unreadable files, full disk
        print(f"portal-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(outcome.as_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(outcome), end="")
    return outcome.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
