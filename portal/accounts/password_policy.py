"""What a new password must be: long enough, not common, not the user's e-mail.

Length beats composition rules (NIST SP 800-63B): at least 12 characters, any
characters, checked against a list of 20,000 common passwords. A password that is
only a common password (or the e-mail address) with digits or punctuation tacked
on the end is refused too, as is one made of very few distinct characters. The
upper bound keeps hashing cost predictable.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from importlib import resources

from portal.accounts.passwords import MIN_PASSWORD_LENGTH
from portal.pages.i18n import N_

MAX_PASSWORD_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 5
COMMON_PASSWORDS_FILE = "data/common-passwords.txt.gz"
# Stripped from the end before the second look-up: "sunshine2024!" is still "sunshine".
_TRAILING_DECORATION = "0123456789!?.,;:-_+*#@$%&^~=/\\|'\"()[]{}<> "


class WeakPassword(ValueError):
    """A new password was refused; ``reason`` says why, in words for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common-password list (lowercase), read once on first use."""
    data = resources.files("portal.accounts").joinpath(COMMON_PASSWORDS_FILE).read_bytes()
    words = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(word.strip() for word in words if word.strip())


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _undecorated(text: str) -> str:
    return text.rstrip(_TRAILING_DECORATION)


def check_new_password(password: str, *, email: str | None = None) -> None:
    """Raise :class:`WeakPassword` unless ``password`` is acceptable as a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(
            N_(
                "Your password must be at least %(limit)s characters long. A few unrelated "
                "words make a long password that is easy to remember.",
                limit=MIN_PASSWORD_LENGTH,
            )
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(
            N_(
                "Your password must be at most %(limit)s characters long.",
                limit=MAX_PASSWORD_LENGTH,
            )
        )
    if not password.strip():
        raise WeakPassword(N_("Your password must not be only spaces."))
    normalised = _normalise(password)
    candidates = {normalised, _undecorated(normalised)}
    if email:
        address = _normalise(email)
        personal = {address, address.partition("@")[0]} - {""}
        if candidates & personal:
            raise WeakPassword(N_("Your password must not be your e-mail address or part of it."))
    common = common_passwords()
    if any(candidate in common for candidate in candidates):
        raise WeakPassword(
            N_(
                "This password is on a list of commonly used passwords that attackers try "
                "first. Choose a different one."
            )
        )
    if len(set(normalised)) < MIN_DISTINCT_CHARACTERS:
        raise WeakPassword(
            N_("Your password repeats too few different characters. Choose a less predictable one.")
        )
