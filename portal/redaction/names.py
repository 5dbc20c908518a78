"""What to search for, for one protected name: the name, its aliases, and its partial forms.

A reader who sees two consecutive parts of a three-part name ("Mya Sandar" of "Mya Sandar
Oo") knows who is meant. For a name written with spaces (Latin or Arabic script), every two
consecutive tokens that are not only an honorific or particle (the list is
``data/name_particles.txt``) are therefore searched for too, with the particles between them
("Bakr Al Baghdadi" of "Abu Bakr Al Baghdadi", "Mohammed bin Salman" and "Salman Al Saud" of
"Mohammed bin Salman Al Saud"); a particle alone or with one name ("U Mya", "Abu Bakr") never
is. Burmese script is written without spaces between the syllables of a name, so a Burmese
name is searched for as registered, through its aliases, and without its leading honorific
("နန်းသီရိ" of "ဒေါ်နန်းသီရိ", which also finds "မနန်းသီရိ") when at least two syllables remain.

Only names are split: a term with a digit in any token (a phone or ID number, an address) is
searched for as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from itertools import pairwise

from portal.redaction.normalise import fold, has_myanmar, zawgyi_as_unicode

__all__ = ["is_particle", "partial_names", "variants"]


@cache
def _particles() -> frozenset[str]:
    text = (
        resources.files("portal.redaction")
        .joinpath("data/name_particles.txt")
        .read_text(encoding="utf-8")
    )
    lines = (line.strip() for line in text.splitlines())
    return frozenset(fold(line) for line in lines if line and not line.startswith("#"))


def is_particle(token: str) -> bool:
    """Whether ``token`` alone is an honorific or name particle (compared normalised)."""
    return fold(token) in _particles()


def partial_names(name: str) -> list[str]:
    """Every two consecutive non-particle tokens of a name, with the particles between them,
    when that is not the whole name; a Burmese name without its leading honorific; nothing
    for terms with digits."""
    tokens = name.split()
    if any(_has_digit(token) for token in tokens):
        return []
    if has_myanmar(name):
        return _without_honorific(name)
    names = [index for index, token in enumerate(tokens) if not is_particle(token)]
    return [
        " ".join(tokens[first : last + 1])
        for first, last in pairwise(names)
        if last - first + 1 < len(tokens)
    ]


# Myanmar letters that begin a syllable (consonants, independent vowels) unless killed by an
# asat or stacked under the letter before with a virama.
_MYANMAR_ONSET = re.compile("[\u1000-\u102a\u103f\u104c-\u104f](?![\u1039\u103a])")
_MYANMAR_VIRAMA = "\u1039"


def _without_honorific(name: str) -> list[str]:
    """A Burmese name (Zawgyi converted) without its leading honorific, when the rest is two
    syllables or more; else nothing."""
    text = zawgyi_as_unicode(name).strip()
    honorifics = _burmese_particles()
    for cut in range(len(text) - 1, 0, -1):  # the longest honorific first
        if fold(text[:cut]) in honorifics and _syllable_starts(text, cut):
            rest = text[cut:].strip()
            syllables = sum(1 for index in range(len(rest)) if _syllable_starts(rest, index))
            return [rest] if syllables >= 2 else []
    return []


def _syllable_starts(text: str, index: int) -> bool:
    """Whether a syllable of Burmese ``text`` starts at ``index`` (spaces skipped)."""
    while index < len(text) and text[index].isspace():
        index += 1
    if index and text[index - 1] == _MYANMAR_VIRAMA:
        return False
    return _MYANMAR_ONSET.match(text, index) is not None


@cache
def _burmese_particles() -> frozenset[str]:
    return frozenset(particle for particle in _particles() if has_myanmar(particle))


def variants(name: str, aliases: Iterable[str] = ()) -> list[str]:
    """The forms to search for: ``name`` and each alias as given, then their partial names
    (in order, without repeats)."""
    given = [name, *aliases]
    found = [*given]
    for form in given:
        found.extend(partial_names(form))
    return list(dict.fromkeys(found))


def _has_digit(token: str) -> bool:
    return any(char.isdigit() for char in token)
