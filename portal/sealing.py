"""Sealing short secrets at rest: AES-256-GCM under a key kept outside the database.

A sealed value is one line of text::

    v1:<key id>:<nonce>:<ciphertext>

``v1`` is the format version, the key id is 8 hex digits derived from the key (HMAC-SHA256,
so it tells keys apart without revealing anything about them), the nonce (12 random bytes)
and the ciphertext with its 16-byte tag are standard base64. The associated data binds the
value to its *purpose*, which names what it is and the row it belongs to
(``protected_identifier:PID-2026-00012``): a sealed value copied to another row, or to
another kind of secret, does not open.

The key is 32 random bytes, stored as 64 hex digits in a file (``PORTAL_SEALING_KEY_FILE``,
default ``instance/sealing_key``, mode 0600) that ``portal init`` creates when it is missing,
like the Flask secret key. It is read on first use, not at start-up, so the portal still
serves everything else when the key is missing. In test mode each app has a random key of its
own. The key is not in database backups: back it up apart, or the sealed values are lost.

Errors are typed (:class:`SealingKeyUnavailable`, :class:`CannotUnseal`); their messages
name the purpose and the key file, never the plaintext. The protected identifiers
(:mod:`portal.registry.identifiers`) use this module. The TOTP seeds use a key file of their
own through :class:`RotatingSealer` (:mod:`portal.accounts.totp_seeds`), which
``portal rotate-totp-key`` replaces: during a rotation values are sealed with the new key and
open under either, by the key id they carry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portal.config import ConfigError, Settings, create_private_file, refuse_shared_file

__all__ = [
    "KEY_BYTES",
    "MAX_PLAINTEXT_BYTES",
    "VERSION",
    "CannotUnseal",
    "RotatingSealer",
    "Sealer",
    "SealingError",
    "SealingKeyUnavailable",
    "ensure_sealing_key",
    "is_sealed",
    "key_id",
    "pending_key_path",
    "read_sealing_key",
    "sealed_by",
    "sealer_for",
]

VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random, so a key must seal far fewer than 2**32
#: Sealing is for short secrets (names, numbers, TOTP seeds), not for documents.
MAX_PLAINTEXT_BYTES = 4096
_KEY_ID_LABEL = b"portal sealing key id"


class SealingError(Exception):
    """Something could not be sealed or unsealed; the message never holds the plaintext."""


class SealingKeyUnavailable(SealingError, ConfigError):
    """The sealing key file is missing, unreadable, malformed or readable by others."""


class CannotUnseal(SealingError):
    """A sealed value does not open: malformed, sealed under another key or for another
    purpose, or altered."""


def key_id(key: bytes) -> str:
    """The 8 hex digits that name ``key`` in the values it seals."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


class Sealer:
    """Seals and unseals short text under one key, which is loaded on first use.

    Never prints the key (``repr`` shows its id only once it is loaded).
    """

    #: What to check when a value was sealed under another key (named in errors).
    _key_setting = "PORTAL_SEALING_KEY_FILE"

    def __init__(self, load_key: Callable[[], bytes]) -> None:
        self._load_key = load_key
        self._loaded: tuple[str, AESGCM] | None = None  # (key id, cipher)
        self._lock = threading.Lock()

    @classmethod
    def with_key(cls, key: bytes) -> Sealer:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a sealing key has {KEY_BYTES} bytes")
        return cls(lambda: key)

    @classmethod
    def random(cls) -> Sealer:
        """A sealer with a fresh random key (test mode: nothing it seals outlives it)."""
        return cls.with_key(secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        loaded = self._loaded
        return f"<Sealer key {loaded[0] if loaded else 'not loaded'}>"

    def _current(self) -> tuple[str, AESGCM]:
        with self._lock:
            if self._loaded is None:
                key = self._load_key()
                if len(key) != KEY_BYTES:
                    raise SealingKeyUnavailable(f"a sealing key has {KEY_BYTES} bytes")
                self._loaded = (key_id(key), AESGCM(key))
            return self._loaded

    @property
    def key_id(self) -> str:
        """The id of this sealer's key (loads the key)."""
        return self._current()[0]

    def seal(self, plaintext: str, purpose: str) -> str:
        """``plaintext`` sealed for ``purpose`` (see the module docstring for both)."""
        data = plaintext.encode("utf-8")
        if len(data) > MAX_PLAINTEXT_BYTES:
            raise SealingError(
                f"the value for {_shown(purpose)} is longer than {MAX_PLAINTEXT_BYTES} bytes"
            )
        current_id, aead = self._current()
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = aead.encrypt(nonce, data, _associated(purpose))
        return ":".join((VERSION, current_id, _b64(nonce), _b64(ciphertext)))

    def unseal(self, sealed: str, purpose: str) -> str:
        """The plaintext of ``sealed``; raises :class:`CannotUnseal` (naming the purpose
        and why, never the value) when it does not open for ``purpose`` under this key."""
        where = _shown(purpose)
        parts = sealed.split(":")
        if len(parts) != 4:
            raise CannotUnseal(f"the sealed value for {where} is not in a known format")
        version, sealed_by, nonce_text, body_text = parts
        if version != VERSION:
            raise CannotUnseal(f"the sealed value for {where} has unknown version {version[:8]!r}")
        aead = self._opener(sealed_by, where)
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
            body = base64.b64decode(body_text, validate=True)
        except (binascii.Error, ValueError):
            raise CannotUnseal(f"the sealed value for {where} is not valid base64") from None
        if len(nonce) != NONCE_BYTES:
            raise CannotUnseal(f"the sealed value for {where} has a bad nonce")
        try:
            data = aead.decrypt(nonce, body, _associated(purpose))
        except InvalidTag:
            raise CannotUnseal(
                f"the sealed value for {where} does not open: it was altered, or sealed for "
                "another row"
            ) from None
        return data.decode("utf-8")

    def _opener(self, sealed_by: str, where: str) -> AESGCM:
        """The cipher of the key ``sealed_by`` names, or :class:`CannotUnseal`."""
        current_id, aead = self._current()
        if not hmac.compare_digest(sealed_by, current_id):
            raise CannotUnseal(
                f"the value for {where} was sealed under another key (id {sealed_by[:8]!r}; "
                f"this portal's key is {current_id}): check {self._key_setting}"
            )
        return aead


class RotatingSealer(Sealer):
    """A sealer over a key file that can be rotated while the portal runs.

    During a rotation a new key waits at ``<key file>.new``: values are then sealed with it,
    and open under either key (by the key id they carry). Both files are read on every use
    (they are 64 bytes), so a long-running process never holds a key that a rotation retired.
    """

    def __init__(self, path: Path, *, key_setting: str) -> None:
        super().__init__(lambda: read_sealing_key(path))
        self.path = path
        self._key_setting = key_setting

    @property
    def pending_path(self) -> Path:
        return pending_key_path(self.path)

    def _keys(self) -> list[tuple[str, AESGCM]]:
        """The pending key first (when a rotation is under way), then the current one."""
        keys = []
        try:
            key = read_sealing_key(self.pending_path)
            keys.append((key_id(key), AESGCM(key)))
        except SealingKeyUnavailable:
            if self.pending_path.exists():  # there, but shared or malformed
                raise
            # None, or renamed over the current key just now: read below.
        key = read_sealing_key(self.path)
        keys.append((key_id(key), AESGCM(key)))
        return keys

    def _current(self) -> tuple[str, AESGCM]:
        return self._keys()[0]

    def _opener(self, sealed_by: str, where: str) -> AESGCM:
        keys = self._keys()
        for known_id, aead in keys:
            if hmac.compare_digest(sealed_by, known_id):
                return aead
        raise CannotUnseal(
            f"the value for {where} was sealed under another key (id {sealed_by[:8]!r}; "
            f"this portal's key is {keys[0][0]}): check {self._key_setting}"
        )


def pending_key_path(path: Path) -> Path:
    """Where a rotation writes the key that replaces the one at ``path``."""
    return path.with_name(path.name + ".new")


def sealed_by(sealed: str) -> str | None:
    """The id of the key that sealed ``sealed`` (None when it is not a sealed value)."""
    parts = sealed.split(":")
    if len(parts) != 4 or parts[0] != VERSION:
        return None
    return parts[1]


def is_sealed(value: str) -> bool:
    """Whether ``value`` is in the sealed format (a secret stored before sealing is not)."""
    return sealed_by(value) is not None


def _associated(purpose: str) -> bytes:
    if not purpose or not purpose.isprintable():
        raise SealingError("a sealed value needs a printable purpose naming what and which row")
    return f"portal-sealed:{VERSION}:{purpose}".encode()


def _shown(purpose: str) -> str:
    return purpose[:120] if purpose.isprintable() else "a value"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- the key file


def ensure_sealing_key(settings: Settings) -> bool:
    """Create the sealing key file (mode 0600) when missing. Returns True when created."""
    return create_private_file(settings.sealing_key_path, secrets.token_hex(KEY_BYTES))


def read_sealing_key(path: Path) -> bytes:
    """The key in ``path``, or :class:`SealingKeyUnavailable` saying how to fix it."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SealingKeyUnavailable(
            f"No sealing key at {path}. Run `portal init` to create one (or point "
            "PORTAL_SEALING_KEY_FILE at the existing key file)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise SealingKeyUnavailable(f"The sealing key {path} cannot be read ({reason}).") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SealingKeyUnavailable(
            f"{path} is not a sealing key (expected {2 * KEY_BYTES} hex digits)."
        )
    try:
        refuse_shared_file(path)
    except ConfigError as exc:
        raise SealingKeyUnavailable(str(exc)) from None
    return key


def sealer_for(settings: Settings) -> Sealer:
    """The portal's sealer: a random key in test mode, else the key file (read on first use)."""
    if settings.testing:
        return Sealer.random()
    path = settings.sealing_key_path
    return Sealer(lambda: read_sealing_key(path))
