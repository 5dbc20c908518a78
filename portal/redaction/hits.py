"""Where the terms of marks occur in an item's text, page by page, for the review page.

Text items are one page; PDFs are read through their text layer (pypdfium2, under the shared
lock). Pages that are images are searched with OCR by assembly and its preview, in a worker,
never here: this module reads text only, so it is quick enough for a page view. The same
matcher as redaction finds the terms (Arabic forms, Zawgyi, partial names).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from portal.redaction.matcher import Matcher, TermTooShort
from portal.redaction.pixels import PDFIUM

__all__ = ["MAX_TEXT_BYTES", "PageHits", "hits_per_page"]

#: Text beyond this is not searched on the review page (assembly searches all of it).
MAX_TEXT_BYTES = 20 * 1024 * 1024
#: PDF pages beyond this are not searched on the review page (likewise).
MAX_PAGES = 2000

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
    import pypdfium2

    texts: list[tuple[int, str]] = []
    with PDFIUM:
        try:
            document = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError:
            return []
        try:
            for index in range(min(len(document), MAX_PAGES)):
                page = document[index]
                textpage = page.get_textpage()
                try:
                    texts.append((index + 1, textpage.get_text_range()))
                finally:
                    textpage.close()
                    page.close()
        finally:
            document.close()
    return texts
