"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12


def hasher() -> PasswordHasher:
    """The current hashing parameters; changing them makes old hashes 'need rehash'."""
    return PasswordHasher()  # argon2id, RFC 9106 low-memory defaults


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. A missing hash still costs one verification so
    unknown accounts take as long as known ones."""
    ph = hasher()
    if stored_hash is None:
        stored_hash = _dummy_hash(ph)
        password = password + "\x00never-matches"
    try:
        return ph.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)


_DUMMY: dict[str, str] = {}


def _dummy_hash(ph: PasswordHasher) -> str:
    key = f"{ph.time_cost}:{ph.memory_cost}:{ph.parallelism}"
    if key not in _DUMMY:
        _DUMMY[key] = ph.hash("dummy password for timing equalisation")
    return _DUMMY[key]
