"""A PDF's text as a reader would type it: glyphs in drawing order, put back in logical order.

PDF text extraction gives what the page draws, in the order it is drawn: a right-to-left run
left to right (visual order), and a Burmese syllable with its pre-base signs first (ေ and ြ
are drawn before their consonant). A PDF without ``ActualText`` carries no other order, so a
reader that wants the text as typed reorders it, as this module does, glyph by glyph:

- **Right to left**: a run of Arabic glyphs (and the neutrals between them) is reversed by
  glyph, keeping each run of digits in its own (left-to-right) order and each glyph's text
  whole (a lam-alef ligature reads "لا" either way);
- **Burmese**: the signs of a syllable follow its consonant in Unicode storage order
  (medials, vowel sign E, upper and lower vowels, tall A, anusvara, dot below, asat, visarga);
- then NFC, without bidi controls.

Used by the tests that check a PDF's text equals what was given (issue 21).
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LTChar, LTContainer, LTItem
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage

__all__ = ["drawn_glyphs", "logical_text", "reading_order"]

_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Burmese dependent signs in the order Unicode stores them after their consonant.
_SIGN_ORDER = {
    sign: rank
    for rank, sign in enumerate(
        "\u103b\u103c\u103d\u103e\u1031\u102d\u102e\u1032\u102f\u1030\u102b\u102c\u1036\u1037\u103a\u1038"
    )
}
_PRE_BASE = {"\u1031", "\u103c"}


def _is_consonant(text: str) -> bool:
    return len(text) == 1 and ("\u1000" <= text <= "\u102a" or "\u103f" <= text <= "\u104f")


def _is_arabic(text: str) -> bool:
    return any(unicodedata.bidirectional(char) in ("R", "AL", "AN") for char in text)


def _is_digit(text: str) -> bool:
    return len(text) == 1 and text.isdigit()


def _is_neutral(text: str) -> bool:
    return all(unicodedata.bidirectional(char) in ("WS", "ON", "CS", "ES", "ET") for char in text)


def _rtl_runs_in_logical_order(glyphs: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(glyphs):
        if not _is_arabic(glyphs[index]):
            out.append(glyphs[index])
            index += 1
            continue
        end = index  # the run: Arabic glyphs, and neutrals or digits with Arabic after them
        probe = index
        while probe < len(glyphs) and (
            _is_arabic(glyphs[probe]) or _is_neutral(glyphs[probe]) or _is_digit(glyphs[probe])
        ):
            if _is_arabic(glyphs[probe]):
                end = probe + 1
            probe += 1
        tokens: list[list[str]] = []
        for glyph in glyphs[index:end]:
            if _is_digit(glyph) and tokens and _is_digit(tokens[-1][-1]):
                tokens[-1].append(glyph)  # a number reads left to right inside the run
            else:
                tokens.append([glyph])
        out.extend(glyph for token in reversed(tokens) for glyph in token)
        index = end
    return out


def _burmese_in_storage_order(glyphs: list[str]) -> list[str]:
    out: list[str] = []
    pending: list[str] = []  # pre-base signs drawn before the consonant they belong to
    index = 0
    while index < len(glyphs):
        glyph = glyphs[index]
        if glyph in _PRE_BASE:
            pending.append(glyph)
            index += 1
            continue
        if _is_consonant(glyph):
            signs = list(pending)
            pending = []
            index += 1
            while index < len(glyphs) and glyphs[index] in _SIGN_ORDER:
                if glyphs[index] in _PRE_BASE:  # the next syllable's, drawn before its base
                    break
                signs.append(glyphs[index])
                index += 1
            out.append(glyph)
            out.extend(sorted(signs, key=_SIGN_ORDER.__getitem__))
            continue
        out.extend(pending)
        pending = []
        out.append(glyph)
        index += 1
    out.extend(pending)
    return out


def reading_order(glyphs: list[str]) -> str:
    """The text of ``glyphs`` (one string per drawn glyph, in drawing order) as typed."""
    ordered = _burmese_in_storage_order(_rtl_runs_in_logical_order(glyphs))
    return logical_text("".join(ordered))


def logical_text(text: str) -> str:
    """NFC, without bidi controls."""
    return _BIDI_CONTROLS.sub("", unicodedata.normalize("NFC", text))


def _chars(item: LTItem) -> Iterator[LTChar]:
    if isinstance(item, LTChar):
        yield item
    elif isinstance(item, LTContainer):
        for child in item:
            yield from _chars(child)


def drawn_glyphs(pdf: bytes) -> list[list[LTChar]]:
    """Each page's glyphs in the order the page draws them (no layout analysis)."""
    manager = PDFResourceManager()
    device = PDFPageAggregator(manager, laparams=None)
    interpreter = PDFPageInterpreter(manager, device)
    pages = []
    for page in PDFPage.get_pages(io.BytesIO(pdf)):
        interpreter.process_page(page)
        pages.append(list(_chars(device.get_result())))
    return pages
