"""OpenPGP key handling over the system ``gpg``, through python-gnupg.

Plain Python, no Flask: everything here is usable and testable without an app.

Every gpg operation runs in a private, temporary keyring (:func:`temporary_keyring`): a short
directory under ``/tmp`` (gpg-agent's socket path must stay short), mode 0700, whose agent is
ended and whose files are removed when the block exits. Nothing ever touches the user's own
``~/.gnupg``.

:func:`inspect_public_key` reads one armored public key and refuses, with
:class:`KeyRejected` and a reason fit to show a person, anything the portal must not pin:
garbage, secret keys, several keys at once, expired or revoked keys, RSA/DSA/ElGamal under
3072 bits, keys with no usable encryption (sub)key.

The fictional keys in ``keys_example/`` are public, so anybody could "upload" them:
:func:`refuse_example_key` refuses their fingerprints (listed in
``keys_example/fingerprints.json``, read lazily, see :func:`example_fingerprints` and
``EXAMPLE_FINGERPRINTS``) unless the app runs in demo or test mode.

Key material is never logged. Secret key material is detected *before* it reaches gpg (armor
header and packet tags), because python-gnupg logs the first bytes of anything it imports at
DEBUG level.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import functools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

__all__ = [
    "EXAMPLE_KEYS_DIR",
    "MIN_RSA_BITS",
    "KeyInfo",
    "KeyRejected",
    "dearmor",
    "example_fingerprints",
    "inspect_public_key",
    "refuse_example_key",
    "temporary_keyring",
]

logger = logging.getLogger(__name__)

#: Directory of the fictional example keys (repository root / keys_example).
EXAMPLE_KEYS_DIR = Path(__file__).resolve().parents[2] / "keys_example"

#: Minimum size of RSA, DSA and ElGamal keys and subkeys.
MIN_RSA_BITS = 3072

_REASON_NOT_A_KEY = "not an OpenPGP public key"
_REASON_PRIVATE_KEY = "this is a secret key; send only the public key"
_REASON_EXAMPLE_KEY = (
    "this is a fictional example key from keys_example/; it is accepted only in demo or test mode"
)

_FINGERPRINT_RE = re.compile(r"[0-9A-F]{40}")
_ARMOR_RE = re.compile(
    r"-----BEGIN PGP (?P<kind>[A-Z ,/0-9]+)-----(?P<body>.*?)-----END PGP (?P=kind)-----",
    re.DOTALL,
)
# OpenPGP public key algorithm ids (RFC 4880 9.1) whose strength is their modulus size.
_FACTORING_ALGOS = {"1": "rsa", "2": "rsa", "3": "rsa", "16": "elg", "17": "dsa", "20": "elg"}
_SECRET_PACKET_TAGS = frozenset({5, 7})  # Secret-Key, Secret-Subkey


class KeyRejected(ValueError):
    """A key the portal refuses to use; ``reason`` is fit to show to a person."""

    def __init__(self, reason: str, *, fingerprint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fingerprint = fingerprint


@dataclass(frozen=True)
class KeyInfo:
    """What the portal records about an accepted public key."""

    fingerprint: str  # primary key, 40 uppercase hex digits
    algorithm: str  # primary key, e.g. "ed25519", "rsa4096"
    key_length: int  # primary key, bits
    uids: tuple[str, ...]
    created_at: datetime  # UTC
    expires_at: datetime | None  # UTC; None = does not expire
    can_encrypt: bool  # a valid, unexpired, unrevoked (sub)key can encrypt
    revoked: bool


# --------------------------------------------------------------------------- keyrings


#: Temporary keyrings are /tmp/<prefix><random>: short (gpg-agent's socket name must fit) and
#: recognisable, so a worker can remove those a killed predecessor left behind.
KEYRING_PREFIX = "portal-gpg-"
KEYRING_DIR = "/tmp"  # noqa: S108 - a short path on purpose; each keyring is mkdtemp 0700
_IN_USE = ".in-use"  # flock-ed for as long as the keyring is in use
_STALE_AFTER = 60.0  # seconds: a keyring without its lock file younger than this is being made


@contextmanager
def temporary_keyring(directory: str = KEYRING_DIR) -> Iterator[gnupg.GPG]:
    """Yield a ``gnupg.GPG`` over a fresh, private ``GNUPGHOME``; end its agent and delete it after.

    The directory is made with ``tempfile.mkdtemp(prefix=KEYRING_PREFIX, dir="/tmp")`` (short
    path, so gpg-agent's socket name fits), mode 0700, and holds an exclusive ``flock`` on its
    ``.in-use`` file while in use: :func:`remove_stale_keyrings` leaves it alone until then.
    """
    home = tempfile.mkdtemp(prefix=KEYRING_PREFIX, dir=directory)
    # Locked before it has its name: a sweep that finds the lock file finds it locked (one
    # that finds no lock file leaves a keyring this young alone).
    making = os.path.join(home, f"{_IN_USE}.new")
    lock = os.open(making, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(making, os.path.join(home, _IN_USE))
        os.chmod(home, 0o700)
        yield gnupg.GPG(gnupghome=home)
    finally:
        _kill_agents(home)
        shutil.rmtree(home, ignore_errors=True)
        os.close(lock)


def remove_stale_keyrings(directory: str = KEYRING_DIR) -> int:
    """Remove the temporary keyrings a killed process left in ``directory``: ours by prefix and
    owner, and not in use (no process holds their lock). Returns how many were removed."""
    removed = 0
    uid = os.getuid()
    with os.scandir(directory) as entries:
        candidates = [
            entry.path
            for entry in entries
            if entry.name.startswith(KEYRING_PREFIX)
            and entry.is_dir(follow_symlinks=False)
            and entry.stat(follow_symlinks=False).st_uid == uid
        ]
    for home in candidates:
        if _in_use(home):
            continue
        _kill_agents(home)
        shutil.rmtree(home, ignore_errors=True)
        removed += 1
    if removed:
        logger.info("removed %d temporary keyring(s) left by an earlier process", removed)
    return removed


def _in_use(home: str) -> bool:
    try:
        lock = os.open(os.path.join(home, _IN_USE), os.O_RDONLY)
    except FileNotFoundError:  # being made right now, or made before locks existed
        try:
            age = time.time() - os.stat(home).st_mtime
        except OSError:
            return True
        return age < _STALE_AFTER
    except OSError:
        return True
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(lock)
    return False


def _kill_agents(home: str) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf is None:
        logger.warning("gpgconf not found; cannot stop gpg-agent of a temporary keyring")
        return
    try:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [gpgconf, "--homedir", home, "--kill", "all"],
            check=False,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        logger.warning("could not stop gpg-agent of a temporary keyring", exc_info=True)


# --------------------------------------------------------------------------- inspection


def inspect_public_key(armored: str, *, now: datetime | None = None) -> KeyInfo:
    """Read one ASCII-armored OpenPGP public key and check it is fit to encrypt to.

    ``now`` (timezone-aware; default: the current time) is the moment expiry is judged at.
    Raises :class:`KeyRejected` for anything that is not exactly one usable public key.
    """
    moment = _utc_now() if now is None else _aware(now)
    _precheck_armor(armored)

    with temporary_keyring() as gpg:
        result = gpg.import_keys(armored)
        if int(result.sec_read) or int(result.sec_imported):
            raise KeyRejected(_REASON_PRIVATE_KEY)
        if not int(result.count):
            raise KeyRejected(_REASON_NOT_A_KEY)
        if not result.fingerprints:
            raise KeyRejected(
                "gpg could not import this key (it may lack a valid self-signed user ID)"
            )
        keys = gpg.list_keys()

    if len(keys) != 1:
        raise KeyRejected(
            f"the block contains {len(keys)} keys; send exactly one public key at a time"
        )
    if _field(keys[0], "trust") == "i":
        raise KeyRejected("gpg considers this key invalid (no valid self-signature)")
    info, usable = _read_key(keys[0], moment)
    _check(info, usable, moment)
    return info


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _precheck_armor(armored: str) -> None:
    """Refuse non-keys and secret keys before anything reaches gpg (or a log)."""
    blocks = list(_ARMOR_RE.finditer(armored)) if armored.strip() else []
    kinds = {block["kind"] for block in blocks}
    if any("PRIVATE KEY" in kind or "SECRET KEY" in kind for kind in kinds):
        raise KeyRejected(_REASON_PRIVATE_KEY)
    public = [block["body"] for block in blocks if block["kind"] == "PUBLIC KEY BLOCK"]
    if not public:
        raise KeyRejected(_REASON_NOT_A_KEY)
    for body in public:
        if _SECRET_PACKET_TAGS & _packet_tags(dearmor(body)):
            raise KeyRejected(_REASON_PRIVATE_KEY)


def dearmor(body: str) -> bytes:
    """Decode the base64 payload of an armor block (headers and CRC line skipped)."""
    lines = [line.strip() for line in body.strip().splitlines()]
    if "" in lines:  # armor headers ("Comment: ...") end at the first blank line
        lines = lines[lines.index("") + 1 :]
    payload = "".join(line for line in lines if line and not line.startswith("="))
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return b""  # let gpg judge it


def _packet_tags(data: bytes) -> frozenset[int]:
    """Tags of the OpenPGP packets in ``data`` (RFC 4880 4.2), as far as they can be framed."""
    tags: set[int] = set()
    pos = 0
    try:
        while pos < len(data):
            ctb = data[pos]
            pos += 1
            if not ctb & 0x80:
                break
            if ctb & 0x40:  # new format
                tags.add(ctb & 0x3F)
                first = data[pos]
                pos += 1
                if first < 192:
                    length = first
                elif first < 224:
                    length = ((first - 192) << 8) + data[pos] + 192
                    pos += 1
                elif first == 255:
                    length = int.from_bytes(data[pos : pos + 4], "big")
                    pos += 4
                else:  # partial body length: never used for key packets
                    break
            else:  # old format
                tags.add((ctb >> 2) & 0x0F)
                length_type = ctb & 0x03
                if length_type == 3:  # indeterminate length
                    break
                size = 1 << length_type
                length = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            pos += length
    except IndexError:
        pass  # truncated: what was framed so far is what we know
    return frozenset(tags)


def _field(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return value if isinstance(value, str) else ""


def _timestamp(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value.isdigit() else None


def _algorithm(record: Mapping[str, Any]) -> str:
    algo = _field(record, "algo")
    if algo in _FACTORING_ALGOS:
        return f"{_FACTORING_ALGOS[algo]}{_field(record, 'length')}"
    curve = _field(record, "curve")
    return curve or f"algo{algo}"


def _is_weak(record: Mapping[str, Any]) -> bool:
    length = _field(record, "length")
    return _field(record, "algo") in _FACTORING_ALGOS and (
        not length.isdigit() or int(length) < MIN_RSA_BITS
    )


def _read_key(key: Mapping[str, Any], moment: datetime) -> tuple[KeyInfo, list[Mapping[str, Any]]]:
    """Build the KeyInfo of a python-gnupg ``list_keys`` entry; also return its usable subkeys."""
    subkey_info = key.get("subkey_info")
    subkeys: list[Mapping[str, Any]] = (
        [value for value in subkey_info.values() if isinstance(value, Mapping)]
        if isinstance(subkey_info, Mapping)
        else []
    )
    usable = [sub for sub in subkeys if _usable(sub, moment)]
    created_at = _timestamp(_field(key, "date"))
    if created_at is None:
        raise KeyRejected(_REASON_NOT_A_KEY)
    length = _field(key, "length")
    revoked = _field(key, "trust") == "r"
    expires_at = _timestamp(_field(key, "expires"))
    primary_encrypts = "e" in _field(key, "cap")  # lowercase: the primary key itself
    primary_valid = not revoked and (expires_at is None or expires_at > moment)
    uids = key.get("uids")
    info = KeyInfo(
        fingerprint=_field(key, "fingerprint").upper(),
        algorithm=_algorithm(key),
        key_length=int(length) if length.isdigit() else 0,
        uids=tuple(uid for uid in uids if isinstance(uid, str)) if isinstance(uids, list) else (),
        created_at=created_at,
        expires_at=expires_at,
        can_encrypt=primary_valid
        and (primary_encrypts or any("e" in _field(sub, "cap") for sub in usable)),
        revoked=revoked,
    )
    return info, usable


def _usable(subkey: Mapping[str, Any], moment: datetime) -> bool:
    # gpg's own validity letter is judged at the real clock; expiry is judged at ``moment``.
    if _field(subkey, "trust") in {"r", "i"}:
        return False
    expires_at = _timestamp(_field(subkey, "expires"))
    return expires_at is None or expires_at > moment


def _check(info: KeyInfo, usable: list[Mapping[str, Any]], moment: datetime) -> None:
    fpr = info.fingerprint
    if not _FINGERPRINT_RE.fullmatch(fpr):
        raise KeyRejected(_REASON_NOT_A_KEY)
    if info.revoked:
        raise KeyRejected("this key has been revoked by its owner", fingerprint=fpr)
    if info.expires_at is not None and info.expires_at <= moment:
        raise KeyRejected(
            f"this key expired on {info.expires_at:%Y-%m-%d}; ask for a current key",
            fingerprint=fpr,
        )
    weak = [_algorithm(sub) for sub in usable if _is_weak(sub)]
    if info.algorithm[:3] in {"rsa", "dsa", "elg"} and info.key_length < MIN_RSA_BITS:
        weak.insert(0, info.algorithm)
    if weak:
        raise KeyRejected(
            f"this key uses {weak[0]}; RSA, DSA and ElGamal keys must have at least "
            f"{MIN_RSA_BITS} bits",
            fingerprint=fpr,
        )
    if not info.can_encrypt:
        raise KeyRejected(
            "this key has no valid encryption subkey (it can only sign); "
            "send a key that can encrypt",
            fingerprint=fpr,
        )


# --------------------------------------------------------------------------- example keys


@functools.cache
def grouped_fingerprint(fingerprint: str, *, middle_gap: bool = False) -> str:
    """``ABCD 1234 ...``: how people read a fingerprint aloud to compare it. With
    ``middle_gap``, a double space between the halves, as gpg prints it."""
    groups = [fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4)]
    if not middle_gap:
        return " ".join(groups)
    half = len(groups) // 2
    return " ".join(groups[:half]) + "  " + " ".join(groups[half:])


def example_fingerprints() -> frozenset[str]:
    """Primary fingerprints of the fictional keys in ``keys_example/`` (read once, on first use).

    Fails loudly (``OSError``/``ValueError``) when the list is missing or malformed, so that the
    example keys are never silently accepted.
    """
    path = EXAMPLE_KEYS_DIR / "fingerprints.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of name -> fingerprint")
    fingerprints: set[str] = set()
    for name, value in data.items():
        if not isinstance(value, str) or not _FINGERPRINT_RE.fullmatch(value.upper()):
            raise ValueError(f"{path}: {name!r} is not a 40-hex-digit fingerprint")
        fingerprints.add(value.upper())
    return frozenset(fingerprints)


def __getattr__(name: str) -> frozenset[str]:
    # PEP 562: ``EXAMPLE_FINGERPRINTS`` is computed on first access, not at import time.
    if name == "EXAMPLE_FINGERPRINTS":
        return example_fingerprints()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def refuse_example_key(fingerprint: str, *, demo_or_test: bool) -> None:
    """Raise :class:`KeyRejected` for an example key's fingerprint outside demo or test mode."""
    if demo_or_test:
        return
    normalised = "".join(fingerprint.split()).upper()
    if normalised in example_fingerprints():
        raise KeyRejected(_REASON_EXAMPLE_KEY, fingerprint=normalised)
