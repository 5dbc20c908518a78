"""What to search for, for one protected name: the name, its aliases, and its partial forms.

A reader who sees two consecutive parts of a three-part name ("Mya Sandar" of "Mya Sandar
Oo") knows who is meant. For a name written with spaces (Latin or Arabic script) of three or
more tokens, every two consecutive tokens are therefore searched for too, except pairs with a
token that is only an honorific or particle ("U Mya", "Abu Bakr", "bin Salman": the list is
``data/name_particles.txt``). Burmese script is written without spaces between the syllables
of a name, so a Burmese name is searched for as registered and through its aliases only.

Only names are split: a term with a digit in any token (a phone or ID number, an address) is
searched for as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources
from itertools import pairwise

from portal.redaction.normalise import fold, has_myanmar

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
    """Every two consecutive tokens of a name of three or more tokens, without the pairs that
    include a particle; nothing for shorter names, Burmese script or terms with digits."""
    tokens = name.split()
    if len(tokens) < 3 or has_myanmar(name) or any(_has_digit(token) for token in tokens):
        return []
    return [
        f"{first} {second}"
        for first, second in pairwise(tokens)
        if not is_particle(first) and not is_particle(second)
    ]


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
