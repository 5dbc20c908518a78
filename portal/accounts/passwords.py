"""Password hashing with argon2id.

Two cost profiles: ``standard`` (argon2-cffi's RFC 9106 low-memory profile: 64 MiB,
3 passes, ~0.2 s here) for every real deployment, and ``fast`` (argon2id at minimal
cost) that settings allow only in test mode, so suites that create many users stay
quick. The profile is passed in (from ``Settings.password_hash_profile``); nothing is
kept at module level except a cache of dummy hashes.

Verifying costs whatever the *stored* hash's parameters say; ``needs_rehash`` tells
when those differ from the current profile so the login can re-hash the password.
"""

from __future__ import annotations

from typing import Final, Literal

from argon2 import Parameters as Argon2Parameters
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

MIN_PASSWORD_LENGTH = 12

HashProfile = Literal["standard", "fast"]
HASH_PROFILES: Final[tuple[HashProfile, ...]] = ("standard", "fast")

_PARAMETERS: Final[dict[str, Argon2Parameters]] = {
    "standard": RFC_9106_LOW_MEMORY,
    # Still argon2id, so hashes look and verify like real ones; only the cost is minimal.
    "fast": Argon2Parameters(
        type=Type.ID,
        version=19,
        salt_len=16,
        hash_len=32,
        time_cost=1,
        memory_cost=64,
        parallelism=1,
    ),
}


def hasher(profile: str = "standard") -> PasswordHasher:
    """A hasher with the parameters of ``profile``; hashes made with other parameters
    'need rehash'."""
    try:
        parameters = _PARAMETERS[profile]
    except KeyError:
        raise ValueError(
            f"unknown password hash profile {profile!r}; expected one of {', '.join(HASH_PROFILES)}"
        ) from None
    return PasswordHasher.from_parameters(parameters)


def hash_password(password: str, *, profile: str = "standard") -> str:
    return hasher(profile).hash(password)


def verify_password(stored_hash: str | None, password: str, *, profile: str = "standard") -> bool:
    """True when ``password`` matches. A missing hash still costs one verification (of a
    dummy hash made with ``profile``) so unknown accounts take as long as known ones."""
    ph = hasher(profile)
    if stored_hash is None:
        stored_hash = _dummy_hash(ph)
        password = password + "\x00never-matches"
    try:
        return ph.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, *, profile: str = "standard") -> bool:
    """True when ``stored_hash`` was made with other parameters than ``profile``'s."""
    try:
        return hasher(profile).check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# Cache of one dummy hash per parameter set (not secret; computing it costs one hash).
_DUMMY: dict[str, str] = {}


def _dummy_hash(ph: PasswordHasher) -> str:
    key = f"{ph.time_cost}:{ph.memory_cost}:{ph.parallelism}:{ph.hash_len}:{ph.salt_len}"
    if key not in _DUMMY:
        _DUMMY[key] = ph.hash("dummy password for timing equalisation")
    return _DUMMY[key]
