"""Which pixels OCR reads, and how they are prepared: PDF pages that show an image (a scan,
a photo pasted into a statement) and image files, each frame.

A PDF page whose content is only text and vector drawing is not read with OCR: its text
layer holds every character it shows and is searched exactly (pdfium for redaction,
pdfminer.six for the leak check). A page with any image object, at any depth (inside form
XObjects too), is rendered at :data:`OCR_DPI` and read; that covers scanned pages, mixed
pages and every page of a redacted PDF rendition (which are images).

pdfium loads and renders the pages in a child process within time and memory limits
(:func:`portal.redaction.parser_limits.stream_bounded`, as the redactor does): a page that
renders forever or needs gigabytes stops the child and the PDF is refused as unreadable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, ImageSequence

from portal.redaction import parser_limits
from portal.redaction.ocr import (
    MAX_PIXELS,
    OcrBudget,
    OcrCache,
    OcrFailed,
    Reading,
    Scripts,
    read_image,
)

if TYPE_CHECKING:
    import pypdfium2

__all__ = [
    "MAX_FRAMES",
    "OCR_DPI",
    "page_has_images",
    "pages_for_ocr",
    "read_image_file",
    "read_pdf_pages",
]

OCR_DPI = 200  # Tesseract reads 10-point text reliably from about 200 dpi
MAX_FRAMES = 50  # frames of one image file (GIF, TIFF, WebP) read, at most

# pdfium is not thread-safe: one document at a time per process (see portal.redaction.pdf).
PDFIUM = threading.Lock()


def page_has_images(page: pypdfium2.PdfPage) -> bool:
    """Whether the page draws any image (form XObjects searched too)."""
    import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

    for _ in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=16):
        return True
    return False


def render_for_ocr(page: pypdfium2.PdfPage) -> Image.Image:
    """The page at :data:`OCR_DPI`, greyscale (what Tesseract reads best); OcrFailed for a
    page too large to read."""
    width, height = page.get_size()
    scale = OCR_DPI / 72
    if width * scale * height * scale > MAX_PIXELS:
        raise OcrFailed(f"the page is {width:.0f} x {height:.0f} points, too large to read")
    bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=False, draw_annots=False)
    try:
        image: Image.Image = bitmap.to_pil().convert("L")
        return image
    finally:
        bitmap.close()


#: Seconds one page may take to load and render for OCR (in the child process), at most.
PAGE_SECONDS = 60.0
#: Memory the child that renders the pages may add (a page of MAX_PIXELS is 50 MB in grey).
RENDER_MEMORY = 768 << 20


def pages_for_ocr(path: Path) -> Iterator[tuple[int, Image.Image]]:
    """(page number, page at OCR_DPI) of each page that shows an image; runs in the child
    process :func:`read_pdf_pages` starts."""
    import pypdfium2

    with PDFIUM:
        try:
            document = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError:
            raise OcrFailed("the PDF cannot be opened to read its pages") from None
        try:
            for index in range(len(document)):
                try:
                    page = document[index]
                except pypdfium2.PdfiumError:
                    raise OcrFailed(f"page {index + 1} cannot be read") from None
                try:
                    image = render_for_ocr(page) if page_has_images(page) else None
                finally:
                    page.close()
                if image is not None:
                    yield index + 1, image
        finally:
            document.close()


def read_pdf_pages(
    path: Path, scripts: Scripts, cache: OcrCache | None = None, budget: OcrBudget | None = None
) -> Iterator[tuple[int, Reading]]:
    """(page number, reading) of every page of the PDF at ``path`` that shows an image;
    OcrFailed when the PDF or a page cannot be read, or its rendering goes beyond the
    limits. The child renders the next page while Tesseract reads this one."""
    rendering = parser_limits.stream_bounded(
        pages_for_ocr, path, seconds=PAGE_SECONDS, memory=RENDER_MEMORY, preload=(__name__,)
    )
    with closing(rendering):
        try:
            for number, image in rendering:
                if budget is not None:
                    budget.check(number)
                yield number, read_image(image, scripts, cache=cache)
        except parser_limits.ParseLimitExceeded as exc:
            raise OcrFailed(f"the PDF's pages could not be rendered: {exc}") from None


def read_image_file(
    path: Path, scripts: Scripts, cache: OcrCache | None = None, budget: OcrBudget | None = None
) -> Iterator[tuple[int, Reading]]:
    """(frame number, reading) of each frame of the image file at ``path``, upright;
    OcrFailed when it cannot be read whole."""
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise OcrFailed(
                    f"the image is {opened.width} x {opened.height} pixels, more than the "
                    f"{MAX_PIXELS:,} the portal reads with OCR"
                )
            frames = getattr(opened, "n_frames", 1)
            if frames > MAX_FRAMES:
                raise OcrFailed(f"the image has {frames} frames; the portal reads {MAX_FRAMES}")
            pictures = [
                ImageOps.exif_transpose(frame.convert("RGB"))
                for frame in ImageSequence.Iterator(opened)
            ]
    except OcrFailed:
        raise
    except Exception:  # Pillow raises many kinds for damaged files
        raise OcrFailed("the image cannot be decoded to read it") from None
    for number, picture in enumerate(pictures, start=1):
        if budget is not None:
            budget.check(number)
        yield number, read_image(picture, scripts, cache=cache)
