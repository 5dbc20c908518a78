"""JPEG and PNG → a new image of the same type with the boxes burnt into the pixels.

Boxes come from ``image_box`` marks and from every place OCR reads a ``term`` mark (a name on
an ID card or a shop sign: :mod:`portal.redaction.ocr`), found by the same matcher as text.

Orientation is applied first (``ImageOps.exif_transpose``) so boxes land where the person
marking them saw them. Only the pixels travel to the new file: no EXIF (GPS), XMP, ICC
profile (colours are converted to sRGB first when possible), comments or text chunks, no
second frame (the preview and depth images of MPO photos), and fully transparent PNG
pixels lose whatever colour they were hiding.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

from portal.redaction import renditions
from portal.redaction.matcher import Matcher
from portal.redaction.ocr import OcrCache, OcrFailed, boxes_of_hits, read_image, scripts_of

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "JPEG_QUALITY",
    "burn_boxes",
    "clean_mode",
    "pixel_box",
    "redact_image",
    "strict_loading",
    "to_srgb",
]

DEFAULT_MAX_PIXELS = 50_000_000  # ~ 8700 x 5800; peak memory is about twice the pixels
JPEG_QUALITY = 90

PixelBox = tuple[int, int, int, int]

# media type -> Pillow format to write, suffix, formats accepted as its content
_TYPES: dict[str, tuple[str, str, frozenset[str]]] = {
    "image/jpeg": ("JPEG", ".jpg", frozenset({"JPEG", "MPO"})),
    "image/png": ("PNG", ".png", frozenset({"PNG"})),
}


def pixel_box(box: tuple[float, float, float, float], width: int, height: int) -> PixelBox:
    """A fractional box (origin top left) in whole pixels, rounded outwards."""
    x0, y0, x1, y1 = box
    return (
        max(0, math.floor(x0 * width)),
        max(0, math.floor(y0 * height)),
        min(width, math.ceil(x1 * width)),
        min(height, math.ceil(y1 * height)),
    )


def burn_boxes(image: Image.Image, boxes: Iterable[PixelBox], label: str) -> None:
    """Paint each box solid black (opaque) and write the label in it when it fits."""
    draw = ImageDraw.Draw(image)
    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
    for left, top, right, bottom in boxes:
        if right <= left or bottom <= top:
            continue
        draw.rectangle((left, top, right - 1, bottom - 1), fill="black")
        size = min(48, int((bottom - top) * 0.6))
        while size >= 8:
            font = fonts.get(size)
            if font is None:
                font = fonts[size] = ImageFont.load_default(size=size)
            if draw.textlength(label, font=font) <= (right - left) * 0.9:
                draw.text(
                    ((left + right) / 2, (top + bottom) / 2),
                    label,
                    fill="white",
                    font=font,
                    anchor="mm",
                )
                break
            size = int(size * 0.8)


def to_srgb(image: Image.Image) -> Image.Image:
    """Convert colours to sRGB when the image carries an ICC profile (the profile itself is
    not copied); a profile Pillow cannot use is ignored (colours shift a little)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "CMYK"):
        return image
    try:
        converted = ImageCms.profileToProfile(
            image, io.BytesIO(icc), ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def clean_mode(image: Image.Image, fmt: str) -> Image.Image:
    """The pixels in a plain mode the target format stores (L, RGB or, for PNG, RGBA)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
        mode = "L"
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if fmt == "PNG" and has_alpha:
        image = image.convert("RGBA")
        # Fully transparent pixels keep no colour: it could hide a picture.
        clear = image.getchannel("A").point(lambda alpha: 255 if alpha == 0 else 0)
        image.paste((0, 0, 0, 0), mask=clear)
        return image
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")


_STRICT_LOADING = threading.Lock()


@contextmanager
def strict_loading() -> Iterator[None]:
    """Refuse truncated images while loading, whatever the process-wide setting says.

    WeasyPrint sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` when it is imported (the
    assembly imports it for the letter), which would let a damaged photo through with its
    missing part painted grey instead of refusing it.
    """
    with _STRICT_LOADING:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _load_upright(
    source: Path, media_type: str, accepted: frozenset[str], max_pixels: int
) -> Image.Image:
    try:
        with Image.open(source) as opened:
            if opened.format not in accepted:
                raise renditions.CannotRedact(
                    f"the file is {opened.format or 'an unknown image format'}, not {media_type}"
                )
            if opened.width * opened.height > max_pixels:
                raise renditions.CannotRedact(
                    f"the image is {opened.width} x {opened.height} pixels, more than the "
                    f"{max_pixels:,} the portal redacts"
                )
            if opened.format == "PNG" and getattr(opened, "n_frames", 1) > 1:
                raise renditions.CannotRedact(
                    "animated PNGs cannot be redacted (only the first frame would)"
                )
            with strict_loading():
                opened.load()
            upright = ImageOps.exif_transpose(opened)
    except Image.DecompressionBombError:
        raise renditions.CannotRedact(
            "the image declares more pixels than the portal redacts (decompression bomb?)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise renditions.CannotRedact(
            f"the image cannot be read: damaged or not a {media_type} file"
        ) from exc
    return upright


def redact_image(
    source: Path,
    media_type: str,
    marks: Sequence[renditions.MarkSpec],
    dest: Path,
    label: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    matcher: Matcher | None = None,
    ocr_cache: OcrCache | None = None,
) -> renditions.RedactionOutcome:
    """Burn the ``image_box`` marks, and the ``term`` marks wherever OCR reads them, into a
    fresh copy of the image's pixels (``matcher``: see :func:`renditions.term_matcher`)."""
    fmt, suffix, accepted = _TYPES[media_type]
    renditions.refuse_kinds(
        marks, frozenset({"image_box", "term"}), "an image (it has no text to select)"
    )
    terms = renditions.term_matcher(marks, matcher)
    boxes = [renditions.check_box(mark) for mark in marks if mark.kind == "image_box"]
    upright = clean_mode(to_srgb(_load_upright(source, media_type, accepted, max_pixels)), fmt)
    fresh = Image.new(upright.mode, upright.size)
    fresh.paste(upright)
    del upright
    found = _terms_in_pixels(fresh, marks, terms, ocr_cache)
    pixel_boxes = [pixel_box(box, fresh.width, fresh.height) for box in boxes]
    burn_boxes(fresh, [*pixel_boxes, *(box for _, box in found)], label)
    hits = {mark.code: 1 for mark in marks if mark.kind == "image_box"}
    for code, _ in found:
        hits[code] = hits.get(code, 0) + 1
    with renditions.atomic_output(dest) as out:
        if fmt == "JPEG":
            fresh.save(out, format="JPEG", quality=JPEG_QUALITY)
        else:
            fresh.save(out, format="PNG")
    return renditions.RedactionOutcome(
        media_type=media_type,
        suffix=suffix,
        applied=tuple(
            renditions.AppliedMark(mark.code, mark.kind, mark.reason, hits.get(mark.code, 0))
            for mark in marks
        ),
        protected_terms=tuple(
            (mark.code, mark.term) for mark in marks if mark.kind == "term" and mark.term
        ),
        read_with_ocr=(1,) if terms.codes else (),
    )


def _terms_in_pixels(
    image: Image.Image,
    marks: Sequence[renditions.MarkSpec],
    terms: renditions.TermMatcher,
    cache: OcrCache | None,
) -> list[tuple[str, PixelBox]]:
    """(code, box) of every place OCR reads a term mark in ``image`` (none without terms)."""
    if not terms.codes:
        return []
    scripts = scripts_of(mark.term or "" for mark in marks if mark.kind == "term")
    try:
        reading = read_image(image, scripts, cache=cache)
    except OcrFailed as failed:
        raise renditions.CannotRedact(
            f"the image could not be read with OCR: {failed.reason}"
        ) from None
    return boxes_of_hits(reading, terms.locate)
