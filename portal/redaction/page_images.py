"""Page images for the redaction viewer: each page of an item as a PNG a browser shows.

PDF pages are rendered by pdfium at :data:`VIEW_DPI`, in colour, without annotations or form
fields (as :mod:`portal.redaction.pdf` renders them for redaction), holding the process-wide
pdfium lock. Photos are turned upright (``ImageOps.exif_transpose``, as the image redactor and
OCR do), their colours converted to sRGB the way the image redactor converts them, fully
transparent pixels cleared and the rest laid over white, and scaled down so that the long
side is at most :data:`MAX_IMAGE_SIDE` (never up). A page or photo without colour (text
pages, most scans) is stored as a greyscale PNG: the same pixels, half the bytes. Redaction
boxes are fractions of the page (0..1, origin top left), so they can be drawn over these
images whatever their size.

A PDF page is loaded and rendered in a child process within :data:`PAGE_SECONDS` and
:data:`RENDER_MEMORY` (:func:`portal.redaction.parser_limits.run_bounded`): a page built to
render forever or to need gigabytes is refused with the reason, and nothing is cached.

Decoding is bounded as in the rest of the redaction code: a page or image larger than
:data:`portal.redaction.ocr.MAX_PIXELS` is refused from its declared size before any pixels
are decoded, Pillow's decompression-bomb error is a refusal, and truncated images are refused
rather than painted grey. Multi-frame images (GIF, TIFF, WebP) show their first frame.

Images are cached by the blob's content hash and page, under
``<directory>/<sha256[:2]>/<sha256>/<page>-<dpi>dpi-<side>px.png`` (so a change of
:data:`VIEW_DPI` or :data:`MAX_IMAGE_SIDE` never serves a stale image), written atomically,
directories 0700 and files 0600: they show evidence. Nothing here knows Flask, Huey or the
database; the background job is ``render_pages`` in :mod:`portal.packages.assembly.jobs`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from portal.redaction import parser_limits
from portal.redaction.image import clean_mode, strict_loading, to_srgb
from portal.redaction.ocr import MAX_PIXELS
from portal.redaction.pdf import open_pdf
from portal.redaction.pixels import PDFIUM
from portal.redaction.renditions import CannotRedact, atomic_output
from portal.storage import check_key

if TYPE_CHECKING:
    import pypdfium2

__all__ = [
    "MAX_IMAGE_SIDE",
    "VIEWABLE",
    "VIEW_DPI",
    "PageImageFailed",
    "PageImages",
    "page_count",
]

logger = logging.getLogger(__name__)

VIEW_DPI = 110  # PDF pages rendered at this dpi for the viewer
MAX_IMAGE_SIDE = 2000  # photos are scaled down so the long side is at most this (never up)
PNG_LEVEL = 1  # zlib level of the cached PNGs: level 6 costs half as much time again
PAGE_SECONDS = 60.0  # one PDF page loaded and rendered, at most
RENDER_MEMORY = 768 << 20  # memory the rendering child may add

PDF = "application/pdf"
# media type -> the Pillow formats accepted as its content
_IMAGE_FORMATS: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset({"JPEG", "MPO"}),
    "image/png": frozenset({"PNG"}),
    "image/tiff": frozenset({"TIFF"}),
    "image/webp": frozenset({"WEBP"}),
    "image/gif": frozenset({"GIF"}),
}
VIEWABLE = frozenset({PDF, *_IMAGE_FORMATS})

_DIRECTORY_MODE = 0o700


class PageImageFailed(Exception):
    """A page image cannot be made; ``reason`` says why in a sentence for the officer (never
    the file's contents)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PageImages:
    """The cache of page images under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, sha256: str, page: int) -> Path:
        """Where page ``page`` (1-based) of blob ``sha256`` is cached (it may not exist)."""
        check_key(sha256)
        if not _is_page(page):
            raise ValueError(f"page must be a whole number from 1, not {page!r}")
        name = f"{page}-{VIEW_DPI}dpi-{MAX_IMAGE_SIDE}px.png"
        return self.directory / sha256[:2] / sha256 / name

    def cached(self, sha256: str, page: int) -> Path | None:
        """The cached PNG of the page, if there is one."""
        if not _is_page(page):
            return None
        path = self.path(sha256, page)
        return path if path.is_file() else None

    def render(self, source: Path, media_type: str, sha256: str, page: int) -> Path:
        """The cached PNG of page ``page`` of ``source`` (the blob ``sha256``), rendered first
        when it is not cached; PageImageFailed when the page cannot be shown."""
        found = self.cached(sha256, page)
        if found is not None:
            return found
        try:
            if not _is_page(page):
                raise PageImageFailed(f"there is no page {page}; pages are numbered from 1")
            if media_type == PDF:
                image = _bounded_pdf_page(source, page)
            elif media_type in _IMAGE_FORMATS:
                image = _photo(source, media_type, page)
            else:
                raise PageImageFailed(_unsupported(media_type))
        except PageImageFailed as failed:
            logger.info("page image of %s page %s refused: %s", sha256[:12], page, failed.reason)
            raise
        dest = self.path(sha256, page)
        self._make_directories(dest.parent)
        with atomic_output(dest) as out:  # mkstemp: mode 0600
            _grey_when_colourless(image).save(out, format="PNG", compress_level=PNG_LEVEL)
        return dest

    def _make_directories(self, leaf: Path) -> None:
        self.directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
        for directory in (leaf.parent, leaf):
            directory.mkdir(mode=_DIRECTORY_MODE, exist_ok=True)


def _is_page(page: object) -> bool:
    return isinstance(page, int) and not isinstance(page, bool) and page >= 1


def page_count(source: Path, media_type: str) -> int:
    """How many pages the viewer shows: a PDF's pages, 1 for an image; PageImageFailed when
    the file cannot be read or its type is not shown."""
    if media_type == PDF:
        with PDFIUM:
            document = _open(source)
            try:
                pages = len(document)
            finally:
                document.close()
        if pages < 1:
            raise PageImageFailed("the PDF has no pages")
        return pages
    if media_type in _IMAGE_FORMATS:
        try:
            with Image.open(source) as opened:
                _check_image(opened, media_type)
        except PageImageFailed:
            raise
        except Image.DecompressionBombError:
            raise PageImageFailed(_TOO_MANY_DECLARED) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise PageImageFailed(_undecodable(media_type)) from None
        return 1
    raise PageImageFailed(_unsupported(media_type))


_TOO_MANY_DECLARED = (
    f"the image declares more than the {MAX_PIXELS:,} pixels the portal shows "
    "(a decompression bomb?)"
)


def _unsupported(media_type: str) -> str:
    return f"the portal does not show pages of {media_type[:100]} files"


def _undecodable(media_type: str) -> str:
    return f"the image cannot be read: damaged or not a {media_type} file"


def _open(source: Path) -> pypdfium2.PdfDocument:
    """The PDF, open (the caller holds :data:`PDFIUM`); PageImageFailed when it cannot be."""
    try:
        return open_pdf(source)
    except CannotRedact as refused:
        raise PageImageFailed(refused.reason) from None


def _bounded_pdf_page(source: Path, page: int) -> Image.Image:
    """:func:`_pdf_page` in a child process, within the limits."""
    try:
        return parser_limits.run_bounded(
            _pdf_page,
            source,
            page,
            seconds=PAGE_SECONDS,
            memory=RENDER_MEMORY,
            preload=(__name__,),
        )
    except parser_limits.ParseLimitExceeded as exc:
        raise PageImageFailed(f"page {page} of the PDF cannot be shown: {exc}") from None


def _pdf_page(source: Path, page: int) -> Image.Image:
    """Page ``page`` of the PDF at :data:`VIEW_DPI`, RGB; pdfium is held while it renders
    (not while the PNG is written)."""
    import pypdfium2

    scale = VIEW_DPI / 72
    with PDFIUM:
        document = _open(source)
        try:
            pages = len(document)
            if page > pages:
                raise PageImageFailed(f"there is no page {page}; the PDF has {pages}")
            try:
                pdf_page = document[page - 1]
            except pypdfium2.PdfiumError:
                raise PageImageFailed(f"page {page} of the PDF cannot be read") from None
            try:
                width, height = pdf_page.get_size()
                if math.ceil(width * scale) * math.ceil(height * scale) > MAX_PIXELS:
                    raise PageImageFailed(
                        f"page {page} is {width:.0f} x {height:.0f} points, too large to show"
                    )
                try:
                    bitmap = pdf_page.render(scale=scale, may_draw_forms=False, draw_annots=False)
                except pypdfium2.PdfiumError:
                    raise PageImageFailed(f"page {page} of the PDF cannot be rendered") from None
                try:
                    # BGR (the default) comes out as an RGB copy: the bitmap's memory can go.
                    image: Image.Image = bitmap.to_pil()
                    if image.mode != "RGB":
                        image = image.convert("RGB")
                finally:
                    bitmap.close()
            finally:
                pdf_page.close()
        finally:
            document.close()
    return image


def _check_image(opened: Image.Image, media_type: str) -> None:
    """Refuse, from the header alone, a file of another format or with too many pixels."""
    if opened.format not in _IMAGE_FORMATS[media_type]:
        raise PageImageFailed(
            f"the file is {opened.format or 'an unknown image format'}, not {media_type}"
        )
    if opened.width * opened.height > MAX_PIXELS:
        raise PageImageFailed(
            f"the image is {opened.width} x {opened.height} pixels, more than the "
            f"{MAX_PIXELS:,} the portal shows"
        )


def _photo(source: Path, media_type: str, page: int) -> Image.Image:
    """The image upright, in sRGB over white, its long side at most :data:`MAX_IMAGE_SIDE`."""
    if page != 1:
        raise PageImageFailed(f"there is no page {page}; an image has one page")
    try:
        with Image.open(source) as opened:
            _check_image(opened, media_type)
            # JPEG: decode at 1/2, 1/4 or 1/8 scale when that still covers the target size.
            target = _scaled_down(opened.size)
            if target != opened.size:
                opened.draft(None, target)
            with strict_loading():
                opened.load()
            upright = ImageOps.exif_transpose(opened)
        image = _over_white(clean_mode(to_srgb(upright), "PNG"))
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    except PageImageFailed:
        raise
    except Image.DecompressionBombError:
        raise PageImageFailed(_TOO_MANY_DECLARED) from None
    except Exception:  # Pillow raises many kinds for damaged files and odd modes
        raise PageImageFailed(_undecodable(media_type)) from None
    return image


def _scaled_down(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled so that the long side is at most :data:`MAX_IMAGE_SIDE` (never up);
    the same whichever way the image is turned."""
    width, height = size
    longest = max(width, height)
    if longest <= MAX_IMAGE_SIDE:
        return size
    factor = MAX_IMAGE_SIDE / longest
    return max(1, round(width * factor)), max(1, round(height * factor))


def _grey_when_colourless(image: Image.Image) -> Image.Image:
    """An RGB image without colour (text pages, most scans) as greyscale: the same pixels in a
    third of the bytes to compress, and about half the PNG."""
    red, green, blue = image.split()
    if ImageChops.difference(red, green).getbbox() or ImageChops.difference(green, blue).getbbox():
        return image
    return red


def _over_white(image: Image.Image) -> Image.Image:
    """RGB: an image with transparency laid over white (as a browser page shows it)."""
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, "white")
        white.paste(image, mask=image.getchannel("A"))
        return white
    return image if image.mode == "RGB" else image.convert("RGB")
