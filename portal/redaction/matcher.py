"""Many protected terms, one pass: an Aho-Corasick automaton over their normalised variants.

:class:`Matcher` is compiled once from (code, term) pairs (a mark's code and term, an
identifier's code and each of its names and aliases). Every term becomes its
:func:`~portal.redaction.names.variants` (the term, its partial names), each normalised
(:mod:`portal.redaction.normalise`), and added to one ``ahocorasick.Automaton``; a text is then
searched once whatever the number of terms (10,000 identifiers cost about what 10 do; see
``bench/matching.py``). Besides:

* Arabic in visual order: some PDFs store right-to-left text in the order it is drawn, and
  pdfminer and pdfium then return each line reversed. For every variant with Arabic letters
  the automaton also holds the normalised variant reversed, and that reversed form with the
  lam-alef pairs inside each word put back in logical order (a lam-alef ligature is one glyph,
  extracted as lam then alef even from a reversed line). Reversing the whole normalised
  variant is right because whitespace is not part of the normalised form: a reversed line
  "ديشرلا دمحم" normalises to the reversed "محمدالرشيد". (Digits inside an Arabic term keep
  their left-to-right order in a visual line, so such a term reversed is not found: register
  the number as an identifier of its own.)
* Accents and numbers: a text is also searched in its loose reading (Latin, Greek and
  Cyrillic accents and the punctuation inside numbers left out: :func:`loosen`), for every
  variant's loose form; so "José Ramírez" and "Jose Ramirez" find each other. A variant that
  is a number (at least :data:`NUMBER_DIGITS` digits and only ``+()./`` besides) is searched
  for as its digits, without a leading ``00``: "+679 555 0199" is found in "(679) 555-0199"
  and "00679.555.0199".
* Burmese: the normaliser converts the Zawgyi runs it detects (whatever Zawgyi spelling they
  use); the automaton also holds the Zawgyi encoding of every Burmese variant, and a text with
  Myanmar characters is also searched as written (normalised without conversion), which finds
  a name whose run the detector misjudged, or a run that mixes both encodings.

:meth:`Matcher.find` gives hits in normalised coordinates (:meth:`Normalised.source_span`
maps them back); :meth:`Matcher.locate` and :meth:`Matcher.codes_in_text` take the text as
written and do both passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ahocorasick

from portal.redaction.names import variants
from portal.redaction.normalise import (
    Normalised,
    fold,
    fold_readings,
    has_arabic,
    has_myanmar,
    loosen,
    loosened,
    normalise,
    to_zawgyi,
)

__all__ = [
    "MIN_TERM_LENGTH",
    "NUMBER_DIGITS",
    "Hit",
    "Matcher",
    "TermTooShort",
    "expand",
    "search_forms",
]

# A protected term must keep at least this many characters once normalised: shorter ones
# would match everywhere (and block every package at the leak check).
MIN_TERM_LENGTH = 3

# A variant with at least this many digits and nothing else but "+()./" (once normalised:
# spaces and hyphens are gone) is a phone or ID number, compared digits only.
NUMBER_DIGITS = 7
_NUMBER = re.compile("[0-9+()./]+")

_LAM_ALEF_REVERSED = "\u0627\u0644"  # alef, lam: "لا" read backwards
_LAM_ALEF = "\u0644\u0627"


class TermTooShort(ValueError):
    """A term is shorter than MIN_TERM_LENGTH once normalised. The message names the code,
    never the term."""

    def __init__(self, code: str) -> None:
        super().__init__(
            f"{code}: a protected term needs at least {MIN_TERM_LENGTH} letters or digits once "
            "case, spaces, hyphens and invisible characters are ignored (shorter ones would "
            "match everywhere)"
        )
        self.code = code


@dataclass(frozen=True, order=True)
class Hit:
    """One place where the term(s) of ``code`` occur: ``[start, end)`` of the text searched
    (normalised for :meth:`Matcher.find`, as written for :meth:`Matcher.locate`)."""

    start: int
    end: int
    code: str


def expand(terms: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(code, variant as written) for every variant of every term. Raises :class:`TermTooShort`
    for a term too short to search for; a partial name that short is left out."""
    for code, term in terms:
        if len(fold(term)) < MIN_TERM_LENGTH:
            raise TermTooShort(code)
        for variant in variants(term):
            if variant == term or len(fold(variant)) >= MIN_TERM_LENGTH:
                yield code, variant


def search_forms(variant: str) -> set[str]:
    """The normalised forms one variant is searched for in: as normalised, reversed (Arabic),
    Zawgyi-encoded (Burmese)."""
    folded = fold(variant)
    forms = {folded}
    if has_arabic(folded):
        # Read backwards; and so with the lam-alef pairs inside each word (the ligatures)
        # left in logical order.
        words = [fold(word)[::-1] for word in reversed(variant.split())]
        forms |= {folded[::-1], "".join(w.replace(_LAM_ALEF_REVERSED, _LAM_ALEF) for w in words)}
    if has_myanmar(variant):
        zawgyi = to_zawgyi(variant)
        if zawgyi:
            forms.add(fold(zawgyi, zawgyi=False))
    forms |= {loosen(form) for form in forms}
    number = _digits(folded)
    if number:
        forms.add(number)
    return {form for form in forms if form}


def _digits(folded: str) -> str | None:
    """A number's digits, without a leading international ``00`` (None: not a number)."""
    if not _NUMBER.fullmatch(folded):
        return None
    digits = "".join(char for char in folded if char.isdigit())
    if len(digits) < NUMBER_DIGITS:
        return None
    return digits[2:] if digits.startswith("00") else digits


class Matcher:
    """Every (code, term) compiled into one automaton; :meth:`find` searches a normalised text."""

    def __init__(self, terms: Iterable[tuple[str, str]]) -> None:
        self._compile(expand(terms))

    @classmethod
    def from_variants(cls, variants: Iterable[tuple[str, str]]) -> Matcher:
        """A matcher of (code, variant) pairs already expanded by :func:`expand`."""
        matcher = cls.__new__(cls)
        matcher._compile(variants)
        return matcher

    def _compile(self, variants: Iterable[tuple[str, str]]) -> None:
        patterns: dict[str, set[str]] = {}
        codes: set[str] = set()
        for code, variant in variants:
            codes.add(code)
            for form in search_forms(variant):
                patterns.setdefault(form, set()).add(code)
        self.codes = frozenset(codes)
        self.longest = max(map(len, patterns), default=0)
        self._automaton: Any = None
        if patterns:
            automaton = ahocorasick.Automaton()
            for form, form_codes in patterns.items():
                automaton.add_word(form, (len(form), tuple(sorted(form_codes))))
            automaton.make_automaton()
            self._automaton = automaton

    def _raw(self, normalised: str) -> Iterator[tuple[int, int, tuple[str, ...]]]:
        if self._automaton is None or not normalised:
            return
        for last, (length, codes) in self._automaton.iter(normalised):
            yield last + 1 - length, last + 1, codes
        loose = loosened(normalised)
        if loose is None:
            return
        text, kept = loose
        for last, (length, codes) in self._automaton.iter(text):
            yield kept[last + 1 - length], kept[last] + 1, codes

    def codes_in(self, normalised: str) -> set[str]:
        """The codes with at least one hit in ``normalised``."""
        found: set[str] = set()
        for _start, _end, codes in self._raw(normalised):
            found.update(codes)
        return found

    def find(self, normalised: str) -> list[Hit]:
        """Every place each code occurs in a normalised text, in text order (see
        :func:`_places`)."""
        return _places(
            Hit(start, end, code) for start, end, codes in self._raw(normalised) for code in codes
        )

    def locate(self, text: str) -> list[Hit]:
        """Every place each code occurs in ``text`` (as written), in its coordinates."""
        hits: list[Hit] = []
        for normalised in _readings(text):
            for hit in self.find(normalised.text):
                start, end = normalised.source_span(hit.start, hit.end)
                hits.append(Hit(start, end, hit.code))
        return _places(hits)

    def codes_in_text(self, text: str) -> set[str]:
        """The codes with at least one hit in ``text`` (as written)."""
        found: set[str] = set()
        for reading in fold_readings(text):
            found |= self.codes_in(reading)
        return found


def _readings(text: str) -> Iterator[Normalised]:
    """``text`` normalised, and, when it has Myanmar characters, normalised without Zawgyi
    conversion too."""
    converted = normalise(text)
    yield converted
    if converted.ends is not None:  # some run was converted
        yield normalise(text, zawgyi=False)


def _places(hits: Iterable[Hit]) -> list[Hit]:
    """Hits in text order, without those inside a longer hit of the same code (the same place:
    a partial name inside the whole name, or one name found by both readings)."""
    kept: list[Hit] = []
    reach: dict[str, int] = {}
    for hit in sorted(hits, key=lambda hit: (hit.code, hit.start, -hit.end)):
        if hit.end <= reach.get(hit.code, -1):
            continue
        reach[hit.code] = hit.end
        kept.append(hit)
    return sorted(kept)
