"""The one form in which protected terms and texts are compared, by redaction and the leak check.

A reader sees the same name in "Mya  San-\\ndar", "MYA SANDAR" and "Mya\\u00adSandar", and in
an Arabic name with or without its vowel marks; so does this normaliser. Character by
character it applies:

* compatibility equivalence (NFKC: ligatures, full-width and presentation forms, superscripts),
  computed in its decomposed form (NFKD) so that every character folds on its own;
* case folding (Unicode's compatibility caseless match, ``NFKD(casefold(NFKD(casefold(NFD(c)))))``);
* whitespace, line breaks, control and format characters (soft hyphen, zero-width space and
  joiners, bidi controls, BOM, tags), variation selectors, invisible fillers: dropped;
* hyphens (so "San-\\ndar", hyphenated across a line, is "Sandar", and "Al-Rashid" is
  "Al Rashid") and apostrophes (ASCII, typographic, modifier letters and the half rings of
  transliteration: "Sa'id" is "Said"): dropped;
* Arabic: alef with hamza above or below, with madda, alef wasla -> alef; waw and ya with
  hamza -> waw and ya; ta marbuta -> ha; alef maqsura (and Farsi yeh) -> ya; keheh -> kaf;
  tatweel and every combining mark of the Arabic blocks (harakat U+064B to U+065F,
  superscript alef U+0670, Quranic marks) dropped;
* decimal digits of every script (Arabic-Indic, Myanmar, ...) -> ASCII digits; and the two
  Myanmar letters that look like Myanmar digits — wa (U+101D) and digit zero (U+1040), ra
  (U+101B) and digit seven (U+1047), Unicode confusables that writers and OCR swap all the
  time — fold like those digits, to "0" and "7" (a name read "နီသီ၀င်း" is "နီသီဝင်း").

Burmese comes first: every run of Myanmar characters that Google's ``myanmartools`` detector
judges to be Zawgyi (probability above :data:`ZAWGYI_THRESHOLD`) is converted to Unicode with
python-myanmar's converter, syllable by syllable, so mixed Zawgyi/Unicode text works and every
converted character still points at the syllable it came from. Combining marks that end up next
to each other out of canonical order are put in order, so the result is NFKD.

:func:`normalise` returns the normalised text with, for every character, the range of source
characters it came from (hits map back to the source for redaction); :func:`fold` is the same
text without the origins (the leak check's fast path). Latin accents are kept in the normalised
form; :func:`loosen` gives the looser reading the matcher also searches (accents and the
punctuation inside numbers left out).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import chain, compress, repeat
from typing import Any

__all__ = [
    "ZAWGYI_THRESHOLD",
    "Normalised",
    "fold",
    "fold_readings",
    "has_arabic",
    "has_myanmar",
    "loosen",
    "loosened",
    "normalise",
    "strip_invisible",
    "to_zawgyi",
    "zawgyi_as_unicode",
]

# Google's detector gives real Unicode names up to about 0.8 (a short name with a stacked
# consonant) and Zawgyi text 0.99+; a run in between stays as it is (the matcher also looks
# for the Zawgyi form of Burmese terms, so a missed detection still finds the name).
ZAWGYI_THRESHOLD = 0.95

_MYANMAR = "\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff"
# Invisible characters a run of Myanmar characters goes on across (a zero-width space between
# syllables is common in Burmese text); they are left out of what is detected and converted.
_INVISIBLE_IN_RUN = "\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_MYANMAR_RUN = re.compile(f"[{_MYANMAR}](?:[{_MYANMAR}{_INVISIBLE_IN_RUN}]*[{_MYANMAR}])?")
_INVISIBLE_IN_RUN_CHARS = re.compile(f"[{_INVISIBLE_IN_RUN}]")
_HAS_MYANMAR = re.compile(f"[{_MYANMAR}]")
_HAS_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")

# Dropped although not whitespace, control or format characters: hyphens (U+2011 folds to
# U+2010), apostrophes and transliteration half-rings, the combining grapheme joiner, the
# Arabic tatweel and high hamza, Hangul fillers (blank letters used to hide text).
_DROPPED = frozenset(
    "-\u058a\u1806\u2010\u2e17\u30a0"
    "'`\u2018\u2019\u201b\u02b9\u02bb\u02bc\u02bd\u02be\u02bf\u02c8"
    "\u034f\u0640\u0674\u115f\u1160\u3164\uffa0"
)
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_ARABIC_BLOCKS = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF))
# Myanmar letters written (and read by OCR) for the digit they look like, and back.
_MYANMAR_LOOKALIKES = {"\u101d": "0", "\u101b": "7"}
_ARABIC_LETTERS = {
    "\u0671": "\u0627",  # alef wasla -> alef (the hamza forms decompose to alef + a mark)
    "\u0672": "\u0627",
    "\u0673": "\u0627",
    "\u0629": "\u0647",  # ta marbuta -> ha
    "\u0649": "\u064a",  # alef maqsura -> ya
    "\u06cc": "\u064a",  # Farsi yeh -> ya
    "\u06a9": "\u0643",  # keheh -> kaf
}

# Whitespace, control characters and invisible format characters (soft hyphen, zero-width
# space/joiners, direction marks, BOM): the forms a term takes in raw bytes leave these out.
_INVISIBLE = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+"
)


@dataclass(frozen=True)
class Normalised:
    """A normalised text; character ``i`` comes from source characters
    ``starts[i]`` to ``ends[i]`` (exclusive; ``ends`` is None when that is ``starts[i] + 1``,
    i.e. unless Zawgyi syllables were converted)."""

    text: str
    starts: array[int]
    ends: array[int] | None = None

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source range ``[first, last)`` that normalised characters ``start..end`` cover
        (min and max: combining marks put in canonical order may come from anywhere in it)."""
        first = min(self.starts[start:end])
        if self.ends is None:
            return first, max(self.starts[start:end]) + 1
        return first, max(self.ends[start:end])


def _dropped(char: str) -> bool:
    if char in _DROPPED or unicodedata.category(char) in _DROPPED_CATEGORIES or char.isspace():
        return True
    if "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return True  # variation selectors
    code = ord(char)
    return unicodedata.category(char) == "Mn" and any(
        low <= code <= high for low, high in _ARABIC_BLOCKS
    )


def _fold_char(char: str) -> str:
    """What one source character becomes (possibly nothing, possibly several characters)."""
    if _dropped(char):
        return ""
    nfkd = unicodedata.normalize
    decomposed = nfkd("NFKD", nfkd("NFKD", nfkd("NFD", char).casefold()).casefold())
    folded = []
    for part in decomposed:
        if _dropped(part):
            continue
        part = _ARABIC_LETTERS.get(part, part)
        part = _MYANMAR_LOOKALIKES.get(part, part)
        digit = unicodedata.decimal(part, None)
        folded.append(part if digit is None else str(digit))
    return "".join(folded)


class _Table(dict[int, str]):
    """``str.translate`` table filled on demand: source character -> what it folds to (or,
    with ``lengths``, a character whose code point is that length)."""

    LIMIT = 200_000  # distinct characters kept; a text using more starts the table afresh

    def __init__(self, lengths: bool) -> None:
        super().__init__()
        self.lengths = lengths

    def __missing__(self, ordinal: int) -> str:
        if len(self) >= self.LIMIT:
            self.clear()
        folded = _fold_char(chr(ordinal))
        value = chr(len(folded)) if self.lengths else folded
        self[ordinal] = value
        return value


_FOLDED = _Table(lengths=False)
_LENGTHS = _Table(lengths=True)


# --- Burmese --------------------------------------------------------------------------------


@cache
def _myanmar() -> tuple[Callable[[str], float], Any, Any]:
    """The Zawgyi detector, python-myanmar's converter and syllable breaker (loaded once, on
    first use). The converter prints syllables it cannot convert; a protected name must never
    reach a log, so its module-level ``print`` is silenced."""
    from myanmar import converter, language
    from myanmartools import ZawgyiDetector

    converter.print = lambda *args, **kwargs: None
    with warnings.catch_warnings():  # it reads its model with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        detector = ZawgyiDetector()
    return detector.get_zawgyi_probability, converter, language


def _convert(text: str, source: str, target: str) -> str | None:
    _detect, converter, _language = _myanmar()
    try:
        converted = converter.convert(text, source, target)
    except Exception:  # an unconvertible syllable: keep the text as it is
        return None
    return converted if isinstance(converted, str) else None


def to_zawgyi(text: str) -> str | None:
    """``text`` (Burmese, its Zawgyi runs detected as :func:`fold` does) as Zawgyi would encode
    it; None if it cannot be converted."""
    unicode = _spliced(text, _from_zawgyi(text))
    return _convert(unicodedata.normalize("NFC", unicode), "unicode", "zawgyi")


def _zawgyi_syllables(run: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, Unicode) for each syllable of a Zawgyi run, or one piece for the whole run
    when syllable by syllable does not give what the converter gives for the run."""
    _detect, converter, language = _myanmar()
    whole = _convert(run, "zawgyi", "unicode")
    if whole is None:
        return
    pieces: list[tuple[int, int, str]] = []
    position = 0
    try:
        encoding = converter.encoders["zawgyi"]
        for syllable in language.MorphoSyllableBreak(text=run, encoding=encoding):
            source = syllable["syllable"]
            converted = _convert(source, "zawgyi", "unicode")
            if converted is None:
                break
            pieces.append((position, position + len(source), converted))
            position += len(source)
    except Exception:
        pieces = []
    if position == len(run) and "".join(piece for _s, _e, piece in pieces) == whole:
        yield from pieces
    else:
        yield 0, len(run), whole


@lru_cache(maxsize=16384)
def zawgyi_as_unicode(text: str) -> str:
    """``text`` with its Zawgyi runs converted to Unicode, the rest untouched: what a reader
    of a rendition must see (a Unicode font shows Zawgyi as the wrong letters)."""
    return _spliced(text, _from_zawgyi(text))


@lru_cache(maxsize=16384)
def _is_zawgyi(run: str) -> bool:
    """The detector's verdict on one run (cached: Burmese text repeats its short phrases)."""
    return _myanmar()[0](run) > ZAWGYI_THRESHOLD


# (start, end, Unicode): a piece of the source, converted; one per syllable of a Zawgyi run.
_Piece = tuple[int, int, str]


def _from_zawgyi(text: str) -> list[_Piece]:
    """The Zawgyi runs of ``text`` converted to Unicode, syllable by syllable, in text order
    (no pieces: nothing to convert)."""
    if not _HAS_MYANMAR.search(text):
        return []
    pieces: list[_Piece] = []
    for match in _MYANMAR_RUN.finditer(text):
        run = match[0]
        kept: Sequence[int] = range(match.start(), match.end())
        if _INVISIBLE_IN_RUN_CHARS.search(run):
            kept = [index for index in kept if not _INVISIBLE_IN_RUN_CHARS.match(text[index])]
            run = "".join(text[index] for index in kept)
        if not _is_zawgyi(run):
            continue
        syllables = list(_zawgyi_syllables(run))
        if syllables:  # the pieces cover the run: from its first to its last character
            last = len(syllables) - 1
            pieces.extend(
                (
                    match.start() if number == 0 else kept[begin],
                    match.end() if number == last else kept[end - 1] + 1,
                    unicode,
                )
                for number, (begin, end, unicode) in enumerate(syllables)
            )
    return pieces


def _spliced(text: str, pieces: list[_Piece]) -> str:
    parts: list[str] = []
    position = 0
    for start, end, unicode in pieces:
        parts.append(text[position:start])
        parts.append(unicode)
        position = end
    parts.append(text[position:])
    return "".join(parts)


# --- the normaliser ---------------------------------------------------------------------------


def fold(text: str, *, zawgyi: bool = True) -> str:
    """The normalised form of ``text`` (see the module's docstring). ``zawgyi=False`` leaves
    Zawgyi runs as they are (for the Zawgyi form of a term)."""
    return fold_readings(text)[0] if zawgyi else _fold(text)


def fold_readings(text: str) -> tuple[str, ...]:
    """``fold(text)``, and, when a Zawgyi run was converted, ``fold(text, zawgyi=False)`` too
    (the matcher searches both: see :mod:`portal.redaction.matcher`)."""
    pieces = _from_zawgyi(text)
    if not pieces:
        return (_fold(text),)
    return _fold(_spliced(text, pieces)), _fold(text)


def _fold(text: str) -> str:
    folded = text.translate(_FOLDED)
    if not unicodedata.is_normalized("NFKD", folded):
        folded = unicodedata.normalize("NFKD", folded)  # only reorders combining marks
    return folded


def _origins(lengths: bytes, start: int) -> array[int]:
    """For each character that the characters from ``start`` on fold to (``lengths[i]``
    characters for character ``start + i``), the index of its source character."""
    indices = range(start, start + len(lengths))
    if max(lengths, default=0) <= 1:
        return array("q", compress(indices, lengths))
    return array("q", chain.from_iterable(map(repeat, indices, lengths)))


def _lengths(text: str) -> bytes:
    return text.translate(_LENGTHS).encode("latin-1")


def normalise(text: str, *, zawgyi: bool = True) -> Normalised:
    """:func:`fold`, remembering for every normalised character where in ``text`` it came from."""
    pieces = _from_zawgyi(text) if zawgyi else []
    if not pieces:
        folded = text.translate(_FOLDED)
        starts = _origins(_lengths(text), 0)
        ends: array[int] | None = None
    else:
        parts: list[str] = []
        starts, ends = array("q"), array("q")
        position = 0
        for start, end, unicode in [*pieces, (len(text), len(text), "")]:
            parts.append(text[position:start].translate(_FOLDED))
            lengths = _lengths(text[position:start])
            starts.extend(_origins(lengths, position))
            ends.extend(_origins(lengths, position + 1))
            converted = unicode.translate(_FOLDED)
            parts.append(converted)
            starts.extend([start] * len(converted))
            ends.extend([end] * len(converted))
            position = end
        folded = "".join(parts)
    if not unicodedata.is_normalized("NFKD", folded):
        folded = _reorder(folded, starts, ends)
    return Normalised(folded, starts, ends)


def _reorder(text: str, starts: array[int], ends: array[int] | None) -> str:
    """Canonical order for runs of combining marks (stable by combining class), moving the
    origins along with their characters."""
    chars = list(text)
    index = 0
    while index < len(chars):
        if not unicodedata.combining(chars[index]):
            index += 1
            continue
        end = index
        while end < len(chars) and unicodedata.combining(chars[end]):
            end += 1
        if end - index > 1:
            order = sorted(range(index, end), key=lambda at: unicodedata.combining(chars[at]))
            chars[index:end] = [chars[at] for at in order]
            starts[index:end] = array("q", [starts[at] for at in order])
            if ends is not None:
                ends[index:end] = array("q", [ends[at] for at in order])
        index = end
    return "".join(chars)


# --- the loose reading --------------------------------------------------------------------------

# Letters whose accents are combining diacritics (U+0300 to U+036F) once decomposed: Latin,
# Greek and Cyrillic. Marks after other letters (Burmese, Arabic, Indic) are left alone.
_ACCENTED = (
    "a-zA-Z\u00c0-\u024f\u0250-\u02af\u0370-\u03ff\u0400-\u052f\u1d00-\u1dbf"
    "\u1e00-\u1fff\u2c60-\u2c7f\u2de0-\u2dff\ua640-\ua69f\ua720-\ua7ff\uab30-\uab6f"
)
# What the loose reading leaves out: the accents of those letters, and the punctuation between
# the digits of a number ("(+679) 555.0199"; spaces and hyphens are already gone).
_LOOSE = re.compile(f"(?<=[{_ACCENTED}])[\u0300-\u036f]+|(?<=[0-9])[+()./]+(?=[0-9])")


def loosen(folded: str) -> str:
    """A normalised text's loose reading: without Latin, Greek and Cyrillic accents ("José" is
    "Jose") and without the punctuation inside numbers. The normalised form itself keeps
    accents (its origins map every character back); the matcher searches both readings."""
    return _LOOSE.sub("", folded)


def loosened(folded: str) -> tuple[str, array[int]] | None:
    """:func:`loosen`, with for each of its characters the index in ``folded`` it comes from;
    None when the loose reading is ``folded`` itself."""
    parts: list[str] = []
    kept = array("q")
    position = 0
    for match in _LOOSE.finditer(folded):
        parts.append(folded[position : match.start()])
        kept.extend(range(position, match.start()))
        position = match.end()
    if not parts:
        return None
    parts.append(folded[position:])
    kept.extend(range(position, len(folded)))
    return "".join(parts), kept


def strip_invisible(text: str) -> str:
    """``text`` without whitespace, control and invisible format characters, and otherwise as
    written (the form a term takes as raw bytes)."""
    return _INVISIBLE.sub("", text)


def has_arabic(text: str) -> bool:
    return _HAS_ARABIC.search(text) is not None


def has_myanmar(text: str) -> bool:
    return _HAS_MYANMAR.search(text) is not None
