"""A plain text whose removed runs are already decided → PDF bytes (WeasyPrint/Pango).

The text is set in the fonts of :mod:`portal.documents.fonts`: Pango joins Arabic and runs
it right to left, and shapes Burmese. Each line is a paragraph whose direction is that of
its first strong character. Each removed run is a black box carrying the label, of the
label's width whatever was removed (the box does not tell how long a name was). A
character no installed font can draw is refused, never printed as an empty box.

The PDF carries no document information, no XMP, no outline and no annotations. When the
text has characters beyond Latin (shaped or right-to-left scripts), an invisible layer
(:mod:`portal.documents.text_layer`) makes extractors, the leak check among them, read
each line in logical order. Long texts are typeset in parts of at most
``CHUNK_CHARACTERS`` characters (WeasyPrint keeps about 1 MB of layout per page until it
writes the PDF), each part starting on a new page, and pdfium joins the parts into one
PDF, saved whole.
"""

from __future__ import annotations

import html
import io
import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from portal.documents.fonts import SANS, FontStack, undrawable
from portal.documents.html_pdf import html_to_pdf
from portal.documents.text_layer import add_text_layer
from portal.redaction.normalise import zawgyi_as_unicode
from portal.redaction.renditions import CannotRedact

__all__ = ["CHUNK_CHARACTERS", "shown", "typeset"]

CHUNK_CHARACTERS = 300_000  # about 90 pages and 120 MB of layout
_LINE_BREAK = re.compile(r"\r\n|[\n\r\f\v\x1c-\x1e\x85\u2028\u2029]")
# Control characters other than tabs and line breaks: HTML drops some, Pango draws others
# as boxes; the rendition shows each as a space.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
_NAMED_IN_REFUSAL = 8
_LATIN = FontStack(SANS.faces[:1], "sans-serif")  # Noto Sans: what needs no text layer
_TALL_SCRIPTS = (  # (CSS class, pattern): scripts whose lines need more height
    ("myanmar", re.compile("[\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f]")),
    ("arabic", re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")),
)

# A4, 9 pt text on 12 pt lines; lines with Arabic or Burmese get the room their marks
# need above and below. A label too long for a line wraps inside its box.
_STYLE = """
@page { size: A4; margin: 50pt; }
html { font-family: %(family)s; font-size: 9pt; line-height: 12pt; color: #000; }
body { margin: 0; }
p { margin: 0; min-height: 12pt; white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 4; }
p.arabic { line-height: 15pt; }
p.myanmar { line-height: 18pt; }
.r { display: inline-block; max-width: 100%%; padding: 0 3pt; background: #000; color: #fff;
     font-size: 7pt; line-height: 9pt; white-space: pre-wrap; overflow-wrap: anywhere; }
"""

Line = list[str | None]  # runs of kept text; None where a box replaces a removed run


def shown(run: str) -> str:
    """``run`` as the rendition has it: control characters other than tabs and line
    breaks become spaces."""
    return _CONTROL.sub(" ", run)


def _direction(text: str) -> str:
    """``rtl`` when the first strong character is right-to-left, else ``ltr``: what
    ``dir="auto"`` means (Unicode bidi rules P2-P3), which WeasyPrint does not implement."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "ltr"


def _lines(text: str, intervals: Sequence[tuple[int, int]]) -> list[Line]:
    """The rendition's lines (a line break inside a removed run goes with it). Kept Burmese
    written in Zawgyi is shown converted to Unicode, so it reads right in the Noto font."""
    lines: list[Line] = [[]]
    position = 0
    for start, end in [*intervals, (len(text), len(text))]:
        for number, line in enumerate(_LINE_BREAK.split(text[position:start])):
            if number:
                lines.append([])
            if line:
                lines[-1].append(zawgyi_as_unicode(line))
        if start < end:
            lines[-1].append(None)
        position = end
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the file's last line break ends a line, it starts none
    return lines


def _kept(lines: Sequence[Line]) -> str:
    return "".join(part for line in lines for part in line if part is not None)


def _check_drawable(text: str) -> None:
    missing = undrawable(SANS, text)
    if not missing:
        return
    named = ", ".join(
        f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"
        for char in missing[:_NAMED_IN_REFUSAL]
    )
    if len(missing) > _NAMED_IN_REFUSAL:
        named += f" and {len(missing) - _NAMED_IN_REFUSAL} more"
    raise CannotRedact(
        f"the text has characters no installed font can show ({named}); they would print "
        "as empty boxes, so it cannot be shared redacted"
    )


def _chunks(lines: Sequence[Line]) -> Iterator[Sequence[Line]]:
    """Runs of whole lines of at most ``CHUNK_CHARACTERS`` characters (a longer line alone)."""
    start = size = 0
    for index, line in enumerate(lines):
        length = sum(len(part) for part in line if part is not None) + 1
        if size and size + length > CHUNK_CHARACTERS:
            yield lines[start:index]
            start, size = index, 0
        size += length
    yield lines[start:]


def _html(lines: Sequence[Line], label: str) -> str:
    box = f'<span class="r" dir="{_direction(label)}">{html.escape(label)}</span>'
    paragraphs = []
    for line in lines:
        kept = "".join(part for part in line if part is not None)
        body = "".join(box if part is None else html.escape(part) for part in line)
        tall = next((name for name, script in _TALL_SCRIPTS if script.search(kept)), "")
        paragraphs.append(f'<p dir="{_direction(kept)}" class="{tall}">{body}</p>')
    style = _STYLE % {"family": SANS.css}
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{style}</style></head>'
        f"<body>{''.join(paragraphs)}</body></html>"
    )


def _no_metadata(_document: Any, pdf: Any) -> None:
    """WeasyPrint finisher: no document information (Producer, title...), and nothing in
    the catalogue but the pages."""
    pdf.info.clear()
    for key in ("Metadata", "Lang", "Names", "Outlines", "AcroForm", "OpenAction"):
        pdf.catalog.pop(key, None)


def _no_metadata_with_layer(document: Any, pdf: Any) -> None:
    _no_metadata(document, pdf)
    add_text_layer(document, pdf)


def _join(parts: Sequence[bytes]) -> bytes:
    """One PDF of the pages of ``parts``, saved whole (one revision). pdfium adds no
    document information to a document that has none."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

    document = pypdfium2.PdfDocument(parts[0])
    try:
        for part in parts[1:]:
            other = pypdfium2.PdfDocument(part)
            try:
                document.import_pages(other)
            finally:
                other.close()
        buffer = io.BytesIO()
        document.save(buffer, version=17, flags=pdfium_c.FPDF_NO_INCREMENTAL)
    finally:
        document.close()
    return buffer.getvalue()


def typeset(text: str, intervals: Sequence[tuple[int, int]], label: str) -> bytes:
    """The PDF of ``text`` (as :func:`shown` made it) with each of ``intervals`` (sorted,
    disjoint character ranges) replaced by a box labelled ``label``."""
    lines = _lines(text, intervals)
    kept = _kept(lines) + label
    _check_drawable(kept)
    finisher = _no_metadata_with_layer if undrawable(_LATIN, kept) else _no_metadata
    parts = [html_to_pdf(_html(chunk, label), finisher=finisher) for chunk in _chunks(lines)]
    return parts[0] if len(parts) == 1 else _join(parts)
