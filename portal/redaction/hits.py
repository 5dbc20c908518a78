"""Where terms occur in an item, page by page, for the review page.

:func:`hits_per_page` counts the hits of a few terms (an item's term marks) in the text:
text items are one page, PDFs are read through their text layer (pypdfium2). It reads text
only, so it is quick enough for a page view.

A PDF's text layer is read in a child process within :data:`PAGE_SECONDS` per page and
:data:`TEXT_MEMORY` (:func:`portal.redaction.parser_limits.stream_bounded`, as rendering is):
loading a page parses all of its content, and a page of forms nested into a million drawings
(a few KB) needs gigabytes for that. The review pages read it in the web process, so
:func:`hits_per_page` finds nothing in such a file (logged; rendering refuses it with the
reason), and :func:`locate_hits` raises OcrFailed with the reason.

:func:`locate_hits` is the worker's (the ``find_hits`` job): every hit of many terms (the
item's term marks and the whole register) with its page and its box as fractions of the page,
from the text layer and, on pages that show an image and in photos, from OCR (cached, like
redaction's). The same matcher as redaction finds the terms (Arabic forms, Zawgyi, partial
names). Results hold codes and boxes, never a term.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageOps

from portal.redaction import parser_limits
from portal.redaction.matcher import Matcher, TermTooShort
from portal.redaction.ocr import OcrCache, OcrFailed, Reading, boxes_of_hits, scripts_of
from portal.redaction.pixels import OCR_DPI, PDFIUM, read_image_file, read_pdf_pages

__all__ = ["MAX_TEXT_BYTES", "FoundHit", "PageHits", "hits_per_page", "locate_hits"]

#: Text beyond this is not searched on the review page (assembly searches all of it).
MAX_TEXT_BYTES = 20 * 1024 * 1024
#: PDF pages beyond this are not searched on the review page (likewise).
MAX_PAGES = 2000
#: Seconds the child may take to load one page's text layer, and memory it may add.
PAGE_SECONDS = 60.0
TEXT_MEMORY = 768 << 20

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: code -> page -> hits on that page.
PageHits = dict[str, dict[int, int]]


def hits_per_page(path: Path, media_type: str, terms: Sequence[tuple[str, str]]) -> PageHits:
    """How often each (code, term) occurs on each page of the file's text (empty for files
    without text, or when nothing can be read)."""
    if not terms:
        return {}
    try:
        matcher = Matcher(terms)
    except TermTooShort:
        return {}
    found: PageHits = defaultdict(dict)
    for page, text in _page_texts(path, media_type):
        for hit in matcher.locate(text):
            found[hit.code][page] = found[hit.code].get(page, 0) + 1
    return dict(found)


def _page_texts(path: Path, media_type: str) -> list[tuple[int, str]]:
    if media_type == "text/plain":
        if path.stat().st_size > MAX_TEXT_BYTES:
            return []
        return [(1, path.read_bytes().decode("utf-8", errors="replace"))]
    if media_type != "application/pdf":
        return []
    try:
        return _bounded(_page_texts_child, path)
    except parser_limits.ParseLimitExceeded as exc:
        logger.warning("The text layer of a PDF was not searched: %s", exc)
        return []


def _bounded(child: Callable[..., Iterator[T]], *args: Any) -> list[T]:
    """Every result of ``child(*args)``, made in a child process within the limits;
    ParseLimitExceeded (with the reason) when it goes beyond them."""
    results = parser_limits.stream_bounded(
        child, *args, seconds=PAGE_SECONDS, memory=TEXT_MEMORY, preload=(__name__,)
    )
    with closing(results):
        return list(results)


def _page_texts_child(path: Path) -> Iterator[tuple[int, str]]:
    """In the child: (page number, text) of each page."""
    for number, _page, textpage in _text_pages(path):
        yield number, textpage.get_text_range()


def _text_pages(path: Path) -> Iterator[tuple[int, Any, Any]]:
    """(page number, page, text page) of each page of the PDF (up to MAX_PAGES), under the
    pdfium lock; nothing for a file pdfium cannot open. Each page is closed after its turn."""
    import pypdfium2

    with PDFIUM:
        try:
            document = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError:
            return
        try:
            for index in range(min(len(document), MAX_PAGES)):
                page = document[index]
                textpage = page.get_textpage()
                try:
                    yield index + 1, page, textpage
                finally:
                    textpage.close()
                    page.close()
        finally:
            document.close()


@dataclass(frozen=True)
class FoundHit:
    """One hit of ``code`` on ``page``; ``box``: where, as fractions of the page (x0, y0, x1,
    y1 from the top left), None for text items; ``how``: "text" or "ocr"."""

    code: str
    page: int
    box: tuple[float, float, float, float] | None
    how: str


def locate_hits(
    path: Path,
    media_type: str,
    terms: Sequence[tuple[str, str]],
    *,
    ocr_cache: OcrCache | None = None,
) -> list[FoundHit]:
    """Every hit of ``terms`` in the file (see the module notes); OcrFailed when the pixels of
    a page cannot be read."""
    usable = [(code, term) for code, term in terms if _searchable(code, term)]
    if not usable:
        return []
    matcher = Matcher(usable)
    scripts = scripts_of(term for _, term in usable)
    if media_type == "text/plain":
        return [FoundHit(hit.code, 1, None, "text") for _, text in _page_texts(path, media_type)
                for hit in matcher.locate(text)]  # fmt: skip
    if media_type == "application/pdf":
        found = _text_layer_hits(path, usable)
        for number, reading in read_pdf_pages(path, scripts, ocr_cache):
            size = _ocr_size(path, number)
            found.extend(_ocr_hits(reading, matcher, number, size))
        return found
    if media_type.startswith("image/"):
        found = []
        for number, reading in read_image_file(path, scripts, ocr_cache):
            with Image.open(path) as opened:
                upright = ImageOps.exif_transpose(opened) or opened
                size = upright.size
            found.extend(_ocr_hits(reading, matcher, number, size))
        return found
    return []


def _searchable(code: str, term: str) -> bool:
    try:
        Matcher([(code, term)])
    except TermTooShort:
        return False
    return True


def _fractions(
    box: tuple[float, float, float, float], width: float, height: float
) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return _unit(x0 / width), _unit(y0 / height), _unit(x1 / width), _unit(y1 / height)


def _unit(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def _text_layer_hits(path: Path, terms: Sequence[tuple[str, str]]) -> list[FoundHit]:
    try:
        pages = _bounded(_text_hits_child, path, list(terms))
    except parser_limits.ParseLimitExceeded as exc:
        raise OcrFailed(f"the PDF's text layer could not be read: {exc}") from None
    return [hit for hits in pages for hit in hits]


def _text_hits_child(path: Path, terms: list[tuple[str, str]]) -> Iterator[list[FoundHit]]:
    """In the child: the hits of ``terms`` on each page, with their boxes."""
    matcher = Matcher(terms)
    for number, page, textpage in _text_pages(path):
        width, height = page.get_size()
        found = []
        for hit in matcher.locate(textpage.get_text_range()):
            boxes = [textpage.get_charbox(i) for i in range(hit.start, hit.end)]
            boxes = [b for b in boxes if b[2] > b[0]]
            if not boxes:
                continue
            left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
            bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
            box = (left, height - top, right, height - bottom)
            found.append(FoundHit(hit.code, number, _fractions(box, width, height), "text"))
        yield found


def _ocr_size(path: Path, number: int) -> tuple[float, float]:
    """The size in pixels of page ``number`` as OCR read it (rendered at OCR_DPI)."""
    import pypdfium2

    with PDFIUM:
        document = pypdfium2.PdfDocument(str(path))
        try:
            width, height = document[number - 1].get_size()
        finally:
            document.close()
    return width * OCR_DPI / 72, height * OCR_DPI / 72


def _ocr_hits(
    reading: Reading, matcher: Matcher, number: int, size: tuple[float, float]
) -> list[FoundHit]:
    return [
        FoundHit(code, number, _fractions(box, *size), "ocr")
        for code, box in boxes_of_hits(reading, matcher.locate)
    ]
