"""PDF → a new image-only PDF: every page rasterised, boxes burnt into the pixels.

Boxes come from ``pdf_box`` marks of the page and from every occurrence of every protected
term in the page's text layer (pdfium's character boxes, matched by the same normaliser and
matcher as everywhere else, so reversed Arabic lines and Zawgyi text are found too). Pages
are processed one at a time and written straight to the output, so memory holds one page
bitmap whatever the length.

The output is written here rather than by Pillow or ReportLab because both add a document
information dictionary (producer, dates) and hold all pages until the end. This writer
emits one JPEG image XObject and a one-line content stream per page, a catalog, a page
tree, one cross-reference table and a trailer with only /Size and /Root: no /Info, no
/ID, no XMP, no annotations, no outlines, no JavaScript, no embedded files, one %%EOF.

pdfium reads the uploaded PDF in a child process (:func:`portal.redaction.parser_limits.
stream_bounded`): it renders each page, with the text layer's character boxes and, for pages
that show an image, the page for OCR, and sends them here. A page that takes longer than
:data:`PAGE_SECONDS` to load and render, or a document that needs more than
:data:`RENDER_MEMORY` (a huge image XObject, forms nested into billions of drawings), stops
the child and refuses the item; the rendition is only written here, so nothing is left.

Page annotations and form fields are not rendered: their text is not in the text layer,
so a protected term in them could not be found and blacked out.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from PIL import Image, ImageChops

from portal.redaction import parser_limits
from portal.redaction.image import PixelBox, burn_boxes, pixel_box
from portal.redaction.matcher import Matcher
from portal.redaction.ocr import (
    ITEM_SECONDS,
    OcrBudget,
    OcrCache,
    OcrFailed,
    Scripts,
    boxes_of_hits,
    read_image,
    scripts_of,
)
from portal.redaction.pixels import OCR_DPI, PDFIUM, page_has_images, render_for_ocr
from portal.redaction.renditions import (
    AppliedMark,
    CannotRedact,
    MarkSpec,
    RedactionOutcome,
    TermMatcher,
    atomic_output,
    check_box,
    refuse_kinds,
    term_matcher,
)

if TYPE_CHECKING:
    import pypdfium2

__all__ = [
    "DEFAULT_DPI",
    "JPEG_QUALITY",
    "MAX_PAGES",
    "MAX_PAGE_PIXELS",
    "ImagePdfWriter",
    "open_pdf",
    "redact_pdf",
]

DEFAULT_DPI = 150
JPEG_QUALITY = 85
MAX_PAGES = 5000
MAX_PAGE_PIXELS = 50_000_000
#: Seconds one page may take to load and render (in the child process), at most.
PAGE_SECONDS = 60.0
#: Memory the child that renders a PDF may add (a page of MAX_PAGE_PIXELS is 150 MB as RGB,
#: held a few times while it is copied and sent).
RENDER_MEMORY = 1 << 30

# pdfium is not thread-safe: one document at a time per process.
_PDFIUM = PDFIUM

_OPEN_ERRORS = {
    2: "the PDF file cannot be read",
    3: "the file is not a PDF or is damaged",
    4: "the PDF is protected by a password",
    5: "the PDF uses an unsupported security handler",
}


class ImagePdfWriter:
    """Writes a PDF of full-page JPEG images, page by page, in one revision."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.position = 0
        self.offsets: dict[int, int] = {}
        self.kids: list[int] = []
        self.next_number = 3  # 1 = catalog, 2 = page tree, both written at the end
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def _object(self, number: int, body: bytes, stream: bytes | None = None) -> None:
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n" % number + body)
        if stream is not None:
            self._write(b"\nstream\n" + stream + b"\nendstream")
        self._write(b"\nendobj\n")

    def add_page(self, image: Image.Image, width_pt: float, height_pt: float) -> None:
        """One page showing ``image`` scaled to ``width_pt`` x ``height_pt`` points
        (stored as greyscale when it has no colour: a third of the bytes)."""
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        if image.mode == "RGB":
            red, green, blue = image.split()
            if (
                ImageChops.difference(red, green).getbbox() is None
                and ImageChops.difference(green, blue).getbbox() is None
            ):
                image = red
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=JPEG_QUALITY)
        jpeg = encoded.getvalue()
        image_number, content_number, page_number = range(self.next_number, self.next_number + 3)
        self.next_number += 3
        space = b"/DeviceGray" if image.mode == "L" else b"/DeviceRGB"
        self._object(
            image_number,
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s"
            b" /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>"
            % (image.width, image.height, space, len(jpeg)),
            jpeg,
        )
        width, height = f"{width_pt:.3f}".encode(), f"{height_pt:.3f}".encode()
        content = b"q %s 0 0 %s 0 0 cm /Im0 Do Q" % (width, height)
        self._object(content_number, b"<< /Length %d >>" % len(content), content)
        self._object(
            page_number,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s]"
            b" /Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
            % (width, height, image_number, content_number),
        )
        self.kids.append(page_number)

    def finish(self) -> None:
        """Catalog, page tree, cross-reference table and trailer."""
        if not self.kids:
            raise CannotRedact("the PDF has no pages")
        self._object(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        kids = b" ".join(b"%d 0 R" % number for number in self.kids)
        self._object(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self.kids)))
        xref_at = self.position
        size = self.next_number
        rows = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
        rows.extend(b"%010d 00000 n \n" % self.offsets[number] for number in range(1, size))
        self._write(b"".join(rows))
        self._write(
            b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
        )


def open_pdf(source: Path) -> pypdfium2.PdfDocument:
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(str(source))
    except pypdfium2.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        reason = _OPEN_ERRORS.get(code if isinstance(code, int) else -1, "the PDF cannot be opened")
        raise CannotRedact(reason) from None


CharBox = tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Pixels:
    """A bitmap as bytes (what crosses the pipe fastest): Pillow's ``frombuffer`` arguments."""

    mode: str  # Pillow mode of the image
    raw_mode: str  # layout of ``data``
    size: tuple[int, int]
    stride: int
    data: bytes

    @classmethod
    def of_bitmap(cls, bitmap: pypdfium2.PdfBitmap) -> Pixels:
        import pypdfium2.internal as pdfium_i  # type: ignore[import-untyped]

        mode = pdfium_i.BitmapTypeToStrReverse[bitmap.format]
        size = (bitmap.width, bitmap.height)
        return cls(mode, bitmap.mode, size, bitmap.stride, bytes(bitmap.buffer))

    @classmethod
    def of_image(cls, image: Image.Image) -> Pixels:
        return cls(image.mode, image.mode, image.size, 0, image.tobytes())

    def image(self, mode: str) -> Image.Image:
        """A copy in ``mode``."""
        decoded = Image.frombuffer(
            self.mode, self.size, self.data, "raw", self.raw_mode, self.stride, 1
        )
        if decoded.mode != mode:
            return decoded.convert(mode)
        # frombuffer shares the bytes (read-only) only when nothing had to be unpacked
        return decoded.copy() if self.raw_mode == self.mode else decoded


@dataclass(frozen=True)
class RasterPage:
    """One page as the rendering child sends it: its size in points, the pixels at the
    output scale, the text layer (characters and their boxes in those pixels, None for
    a character with no glyph) when asked for, and the page for OCR when it shows an image
    (or why it cannot be read)."""

    number: int
    width_pt: float
    height_pt: float
    pixels: Pixels
    chars: str = ""
    char_boxes: tuple[CharBox, ...] = ()
    shows_images: bool = False
    ocr_pixels: Pixels | None = None
    ocr_refusal: str | None = None


def raster_pages(
    source: Path,
    scale: float,
    text: bool,
    ocr: bool,
    mark_pages: tuple[tuple[str, int | None], ...],
) -> Iterator[RasterPage]:
    """Each page of ``source`` rendered (runs in the child: see the module notes);
    CannotRedact for a PDF that cannot be opened, is too long or too large, or lacks a page
    a mark names."""
    with _PDFIUM:
        document = open_pdf(source)
        try:
            pages = len(document)
            if not 1 <= pages <= MAX_PAGES:
                raise CannotRedact(
                    f"the PDF has {pages} pages; the portal redacts 1 to {MAX_PAGES}"
                )
            for code, number in mark_pages:
                if number is None or not 1 <= number <= pages:
                    raise CannotRedact(
                        f"mark {code}: page {number} does not exist (the PDF has {pages})"
                    )
            for index in range(pages):
                yield _raster_page(document, index, scale, text, ocr)
        finally:
            document.close()


def _raster_page(
    document: pypdfium2.PdfDocument, index: int, scale: float, text: bool, ocr: bool
) -> RasterPage:
    import pypdfium2

    try:
        page = document[index]
    except pypdfium2.PdfiumError:
        raise CannotRedact(f"page {index + 1} of the PDF cannot be read") from None
    try:
        width_pt, height_pt = page.get_size()
        if math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > MAX_PAGE_PIXELS:
            raise CannotRedact(
                f"page {index + 1} is {width_pt:.0f} x {height_pt:.0f} points, too large to "
                "rasterise"
            )
        bitmap = page.render(scale=scale, may_draw_forms=False, draw_annots=False)
        try:
            chars, boxes = _char_boxes(page, bitmap) if text else ("", ())
            pixels = Pixels.of_bitmap(bitmap)  # a copy: the bitmap's memory can go
        finally:
            bitmap.close()
        shows_images = ocr and page_has_images(page)
        ocr_pixels: Pixels | None = None
        refusal: str | None = None
        if shows_images:
            try:
                ocr_pixels = Pixels.of_image(render_for_ocr(page))
            except OcrFailed as failed:
                refusal = failed.reason
    finally:
        page.close()
    return RasterPage(
        index + 1, width_pt, height_pt, pixels, chars, boxes, shows_images, ocr_pixels, refusal
    )


def _char_boxes(
    page: pypdfium2.PdfPage, bitmap: pypdfium2.PdfBitmap
) -> tuple[str, tuple[CharBox, ...]]:
    """The text layer's characters and each one's loose box in the bitmap's pixels."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]

    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        chars = "".join(
            chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 0xFFFD) for i in range(count)
        )
        to_bitmap = _page_to_bitmap(page, bitmap)
        boxes: list[CharBox] = []
        for index in range(count):
            try:
                left, bottom, right, top = textpage.get_charbox(index, loose=True)
            except pypdfium2.PdfiumError:
                boxes.append(None)  # a character pdfium generated (a space, a line break)
                continue
            if right <= left or top <= bottom:
                boxes.append(None)
                continue
            (x0, y0), (x1, y1) = to_bitmap(left, bottom), to_bitmap(right, top)
            boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    finally:
        textpage.close()
    return chars, tuple(boxes)


def _page_to_bitmap(
    page: pypdfium2.PdfPage, bitmap: pypdfium2.PdfBitmap
) -> Callable[[float, float], tuple[float, float]]:
    """Page points to the bitmap's pixels: the affine map pdfium uses, taken once from three
    points a page apart (pdfium's converter rounds each point to a pixel and costs a call
    per point: 20 ms a page of text)."""
    convert = bitmap.get_posconv(page)
    width, height = page.get_size()
    width, height = max(width, 1.0), max(height, 1.0)
    ox, oy = (float(v) for v in convert.to_bitmap(0, 0))
    xx, xy = (float(v) for v in convert.to_bitmap(width, 0))
    yx, yy = (float(v) for v in convert.to_bitmap(0, height))
    a, b = (xx - ox) / width, (yx - ox) / height
    c, d = (xy - oy) / width, (yy - oy) / height

    def to_bitmap(x: float, y: float) -> tuple[float, float]:
        return ox + a * x + b * y, oy + c * x + d * y

    return to_bitmap


def _term_boxes(raster: RasterPage, matcher: TermMatcher) -> tuple[dict[str, int], list[PixelBox]]:
    """How often each term mark's code occurs in the text layer, and the pixel boxes."""
    counts = dict.fromkeys(matcher.codes, 0)
    boxes: list[PixelBox] = []
    if not matcher.codes:
        return counts, boxes
    for hit in matcher.locate(raster.chars):
        found = _line_boxes(raster.char_boxes[hit.start : hit.end])
        if not found:  # in the text, but nowhere on the page: cannot black it out
            raise CannotRedact(
                f"mark {hit.code}: a match on page {raster.number} has no position on the page"
            )
        boxes.extend(found)
        counts[hit.code] += 1
    return counts, boxes


def _line_boxes(char_boxes: Sequence[CharBox]) -> list[PixelBox]:
    """One pixel box per line the matched characters sit on (their loose boxes joined)."""
    rects: list[list[float]] = []
    for char_box in char_boxes:
        if char_box is None:
            continue
        box = list(char_box)
        last = rects[-1] if rects else None
        if last is not None and box[1] < last[3] and box[3] > last[1]:  # same line
            last[:] = [
                min(last[0], box[0]),
                min(last[1], box[1]),
                max(last[2], box[2]),
                max(last[3], box[3]),
            ]
        else:
            rects.append(box)
    pad = 2.0
    return [
        (
            math.floor(x0 - pad),
            math.floor(y0 - pad),
            math.ceil(x1 + pad),
            math.ceil(y1 + pad),
        )
        for x0, y0, x1, y1 in rects
    ]


def redact_pdf(
    source: Path,
    marks: Sequence[MarkSpec],
    dest: Path,
    label: str,
    *,
    dpi: int = DEFAULT_DPI,
    matcher: Matcher | None = None,
    ocr_cache: OcrCache | None = None,
    ocr_seconds: float = ITEM_SECONDS,
) -> RedactionOutcome:
    """Rasterise every page of ``source`` at ``dpi``, burn in the boxes, write a new PDF.
    ``matcher``: prebuilt for some of the term marks (see :func:`term_matcher`). Terms are
    found in the text layer and, on pages that show an image, with OCR
    (:mod:`portal.redaction.ocr`)."""
    refuse_kinds(marks, frozenset({"term", "pdf_box"}), "a PDF (text spans address plain text)")
    terms = term_matcher(marks, matcher)
    scripts = scripts_of(m.term or "" for m in marks if m.kind == "term")
    pixels = _Pixels(terms, scripts, ocr_cache, OcrBudget(ocr_seconds))
    page_boxes = [(mark, check_box(mark)) for mark in marks if mark.kind == "pdf_box"]
    occurrences = {mark.code: 0 for mark in marks}
    per_page: dict[str, dict[int, int]] = {mark.code: {} for mark in marks}
    scale = dpi / 72
    rendering = parser_limits.stream_bounded(
        raster_pages,
        source,
        scale,
        bool(terms.codes),
        bool(terms.codes),
        tuple((mark.code, mark.page) for mark, _box in page_boxes),
        seconds=PAGE_SECONDS,
        memory=RENDER_MEMORY,
        preload=(__name__,),
    )
    try:
        with closing(rendering), atomic_output(dest) as out:
            writer = ImagePdfWriter(out)
            for raster in rendering:
                _redact_page(raster, scale, pixels, page_boxes, per_page, writer, label)
            writer.finish()
    except parser_limits.ParseLimitExceeded as exc:
        raise CannotRedact(f"the PDF could not be rasterised: {exc}") from None
    for code, found in per_page.items():
        occurrences[code] = sum(found.values())
    return RedactionOutcome(
        media_type="application/pdf",
        suffix=".pdf",
        applied=tuple(
            AppliedMark(
                mark.code,
                mark.kind,
                mark.reason,
                occurrences[mark.code],
                tuple(sorted(per_page[mark.code].items())),
            )
            for mark in marks
        ),
        protected_terms=tuple((mark.code, mark.term) for mark in marks if mark.term is not None),
        read_with_ocr=tuple(pixels.read),
    )


@dataclass
class _Pixels:
    """How terms are searched on a page: the matcher, and for OCR the scripts and cache;
    ``read``: the pages read with OCR so far."""

    matcher: TermMatcher
    scripts: Scripts
    cache: OcrCache | None
    budget: OcrBudget
    read: list[int] = field(default_factory=list)


def _ocr_boxes(
    raster: RasterPage, scale: float, pixels: _Pixels
) -> tuple[dict[str, int], list[PixelBox]]:
    """Hits of the term marks in the pixels of a page that shows an image (scanned, mixed),
    as boxes at the output's ``scale``."""
    counts: dict[str, int] = {}
    if not pixels.matcher.codes or not raster.shows_images:
        return counts, []
    page_number = raster.number
    pixels.read.append(page_number)
    try:
        pixels.budget.check(page_number)
        if raster.ocr_pixels is None:
            raise OcrFailed(raster.ocr_refusal or "the page could not be rendered")
        reading = read_image(raster.ocr_pixels.image("L"), pixels.scripts, cache=pixels.cache)
    except OcrFailed as failed:
        reason = f"page {page_number} could not be read with OCR: {failed.reason}"
        raise CannotRedact(reason) from None
    factor = scale / (OCR_DPI / 72)
    boxes: list[PixelBox] = []
    for code, (left, top, right, bottom) in boxes_of_hits(reading, pixels.matcher.locate):
        counts[code] = counts.get(code, 0) + 1
        boxes.append(
            (
                math.floor(left * factor),
                math.floor(top * factor),
                math.ceil(right * factor),
                math.ceil(bottom * factor),
            )
        )
    return counts, boxes


def _redact_page(
    raster: RasterPage,
    scale: float,
    pixels: _Pixels,
    page_boxes: Sequence[tuple[MarkSpec, tuple[float, float, float, float]]],
    per_page: dict[str, dict[int, int]],
    writer: ImagePdfWriter,
    label: str,
) -> None:
    number = raster.number
    counts, boxes = _term_boxes(raster, pixels.matcher)
    seen, more = _ocr_boxes(raster, scale, pixels)
    boxes.extend(more)
    for code, count in seen.items():
        counts[code] = counts.get(code, 0) + count
    for code, count in counts.items():
        if count:
            per_page[code][number] = count
    image = raster.pixels.image("RGB")
    for mark, box in page_boxes:
        if mark.page == number:
            per_page[mark.code][number] = per_page[mark.code].get(number, 0) + 1
            boxes.append(pixel_box(box, image.width, image.height))
    burn_boxes(image, boxes, label)
    writer.add_page(image, raster.width_pt, raster.height_pt)
