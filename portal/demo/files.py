"""Deterministic generators for the demo's evidence files.

Every generator is a pure function of its arguments: no clock, no randomness
without a fixed seed, fixed dates in every embedded metadata field. The same
arguments give the same bytes (and so the same sha256) on every run on the same
machine; the fonts installed on the machine are the only outside input.
"""

from __future__ import annotations

import io
import math
import os
import random
import struct
import textwrap
import wave
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from PIL import Image, ImageDraw, ImageFont
from PIL.ExifTags import GPS, IFD, Base
from PIL.TiffImagePlugin import IFDRational

from portal.documents.html_pdf import html_to_pdf

# A4 in PDF points.
PAGE_WIDTH = 595.0
PAGE_HEIGHT = 842.0
_MARGIN = 64.0
_FONT_SIZE = 11.0
_LEADING = 16.0
_WRAP_COLUMNS = 88


@dataclass(frozen=True)
class Box:
    """A rectangle as fractions of the page or image (0..1, origin top left)."""

    x0: float
    y0: float
    x1: float
    y1: float


# --- plain text ---------------------------------------------------------------------------


def text_file(text: str) -> bytes:
    """UTF-8 with Unix line endings and a final newline."""
    body = text.replace("\r\n", "\n").strip("\n")
    return (body + "\n").encode("utf-8")


# --- PDFs with a text layer (ReportLab) ---------------------------------------------------


@dataclass(frozen=True)
class PdfLine:
    """One paragraph of a PDF page; ``anchor`` names it so its box can be looked up."""

    text: str
    anchor: str | None = None
    bold: bool = False


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    # anchor -> (page number from 1, box around the paragraph's text)
    anchors: dict[str, tuple[int, Box]] = field(default_factory=dict)


def _pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def pdf_document(
    *,
    title: str,
    author: str,
    created: datetime,
    pages: Sequence[Sequence[PdfLine]],
) -> RenderedPdf:
    """A text PDF made with ReportLab in invariant mode, with a fixed creation date.

    Paragraphs are wrapped at a fixed width and drawn line by line so the box of
    every anchored paragraph is known exactly (for ``pdf_box`` redaction marks).
    """
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), invariant=1, pageCompression=1)
    fixed_date = _pdf_date(created)
    canvas.setDateFormatter(lambda *_parts: fixed_date)
    canvas.setTitle(title)
    canvas.setAuthor(author)
    canvas.setCreator("Sharing Portal demo generator")
    canvas.setSubject("Fictional demonstration material")
    anchors: dict[str, tuple[int, Box]] = {}
    for page_number, page in enumerate(pages, start=1):
        y = PAGE_HEIGHT - _MARGIN
        for line in page:
            font = "Helvetica-Bold" if line.bold else "Helvetica"
            wrapped = textwrap.wrap(line.text, _WRAP_COLUMNS) or [""]
            top = y - _LEADING + _FONT_SIZE * 0.8  # ascenders of the first line
            widest = 0.0
            for piece in wrapped:
                y -= _LEADING
                if y < _MARGIN:
                    raise ValueError(f"page {page_number} of {title!r} overflows")
                canvas.setFont(font, _FONT_SIZE)
                canvas.drawString(_MARGIN, y, piece)
                widest = max(widest, canvas.stringWidth(piece, font, _FONT_SIZE))
            if line.anchor is not None:
                # Pad a little around the glyphs (descenders, ascenders).
                bottom = y - _FONT_SIZE * 0.25  # descenders of the last line
                anchors[line.anchor] = (
                    page_number,
                    _page_box(_MARGIN - 3, top + 3, _MARGIN + widest + 3, bottom - 3),
                )
            y -= _LEADING / 2
        canvas.showPage()
    canvas.save()
    return RenderedPdf(data=buffer.getvalue(), anchors=anchors)


def _page_box(left: float, top: float, right: float, bottom: float) -> Box:
    """Convert PDF points (origin bottom left) to a top-left fractional box."""
    return Box(
        x0=round(left / PAGE_WIDTH, 4),
        y0=round((PAGE_HEIGHT - top) / PAGE_HEIGHT, 4),
        x1=round(right / PAGE_WIDTH, 4),
        y1=round((PAGE_HEIGHT - bottom) / PAGE_HEIGHT, 4),
    )


# --- an analytical report (WeasyPrint) ----------------------------------------------------


@contextmanager
def _source_date_epoch(moment: datetime) -> Iterator[None]:
    """Pin fontTools' font timestamps for the duration of one rendering.

    Without HarfBuzz-subset, WeasyPrint subsets fonts with fontTools, which stamps
    each embedded font with the current time unless ``SOURCE_DATE_EPOCH`` is set
    (https://reproducible-builds.org/specs/source-date-epoch/): the PDF bytes then
    change from second to second. The variable is restored afterwards.
    """
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(moment.timestamp()))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def html_report(*, html_body: str, title: str, author: str, created: datetime) -> bytes:
    """A PDF rendered by WeasyPrint from HTML, with fixed metadata and identifier.

    ``html_body`` is trusted markup written by the demo itself; the title and author
    are escaped.
    """
    from html import escape

    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        f"<meta name='author' content='{escape(author)}'>"
        "<meta name='generator' content='Sharing Portal demo generator'>"
        f"<meta name='dcterms.created' content='{stamp}'>"
        f"<meta name='dcterms.modified' content='{stamp}'>"
        "<style>@page { size: A4; margin: 2cm }"
        " body { font-family: 'DejaVu Serif', serif; font-size: 10pt }"
        " h1 { font-size: 16pt } table { border-collapse: collapse }"
        " td, th { border: 1px solid #555; padding: 3pt 6pt }</style>"
        f"</head><body>{html_body}</body></html>"
    )
    with _source_date_epoch(created):
        return html_to_pdf(document, pdf_identifier=b"sharing-portal-demo")


# --- JPEG photographs with EXIF -----------------------------------------------------------


@dataclass(frozen=True)
class PhotoSpec:
    """A simple drawn scene and the EXIF data of the camera that 'took' it."""

    label: str
    seed: int
    latitude: float
    longitude: float
    taken: datetime
    make: str = "Fictocam"
    model: str = "FC-200"
    width: int = 640
    height: int = 480
    # EXIF orientation; 6 means the stored pixels must be turned 90° clockwise to display.
    orientation: int = 1
    # A sign in the scene carrying this text (e.g. a name); its box is reported.
    sign_text: str | None = None
    figures: int = 0


@dataclass(frozen=True)
class RenderedPhoto:
    data: bytes
    # Box of the sign in the upright (displayed) image, when there is one.
    sign_box: Box | None = None


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = round((minutes_full - minutes) * 60 * 100)
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 100))


def _draw_scene(spec: PhotoSpec) -> tuple[Image.Image, Box | None]:
    rng = random.Random(spec.seed)  # noqa: S311 - scenery, not security
    width, height = spec.width, spec.height
    image = Image.new("RGB", (width, height), (rng.randint(120, 170), 180, 220))
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.5, 0.65))
    draw.rectangle((0, horizon, width, height), fill=(110, 100 + rng.randint(0, 40), 70))
    for _ in range(rng.randint(2, 4)):  # buildings, some damaged
        left = rng.randint(0, width - 120)
        bw, bh = rng.randint(60, 140), rng.randint(60, 160)
        shade = rng.randint(140, 200)
        draw.rectangle(
            (left, horizon - bh, left + bw, horizon),
            fill=(shade, shade - 20, shade - 40),
            outline=(60, 60, 60),
        )
        if rng.random() < 0.6:  # a dark breach in the wall
            cx = left + bw // 2
            draw.ellipse(
                (cx - 15, horizon - bh + 10, cx + 15, horizon - bh + 40), fill=(40, 35, 30)
            )
    for _ in range(rng.randint(3, 6)):  # rubble
        x, y = rng.randint(0, width), rng.randint(horizon, height)
        draw.ellipse((x - 12, y - 6, x + 12, y + 6), fill=(90, 85, 80))
    font = ImageFont.load_default(size=18)
    draw.rectangle((0, height - 32, width, height), fill=(20, 20, 20))
    draw.text((10, height - 27), spec.label, fill=(255, 255, 255), font=font)
    for index in range(spec.figures):  # people standing in the street
        fx = int(width * (0.15 + 0.12 * index)) + rng.randint(-10, 10)
        fy = horizon + int((height - horizon) * 0.55)
        draw.rectangle((fx - 9, fy - 55, fx + 9, fy), fill=(50, 60, 110 + 30 * index))
        draw.ellipse((fx - 10, fy - 77, fx + 10, fy - 57), fill=(205, 170, 140))
    sign_box = None
    if spec.sign_text is not None:
        left, top = int(width * 0.55), int(horizon * 0.55)
        text_box = draw.textbbox((left + 8, top + 8), spec.sign_text, font=font)
        right, bottom = text_box[2] + 8, text_box[3] + 8
        post = (left + right) // 2
        draw.rectangle((post - 3, bottom, post + 3, horizon + 30), fill=(80, 60, 40))
        draw.rectangle((left, top, right, bottom), fill=(245, 240, 200), outline=(0, 0, 0))
        draw.text((left + 8, top + 8), spec.sign_text, fill=(10, 10, 10), font=font)
        sign_box = Box(
            x0=round(left / width, 4),
            y0=round(top / height, 4),
            x1=round(min(right + 1, width) / width, 4),
            y1=round(min(bottom + 1, height) / height, 4),
        )
    return image, sign_box


def jpeg_photo(spec: PhotoSpec) -> RenderedPhoto:
    """A JPEG of a drawn scene with camera, date, orientation and GPS EXIF tags."""
    upright, sign_box = _draw_scene(spec)
    stored = upright
    if spec.orientation == 6:
        stored = upright.transpose(Image.Transpose.ROTATE_90)  # 90° anticlockwise
    elif spec.orientation != 1:
        raise ValueError(f"unsupported orientation {spec.orientation}")
    exif = Image.Exif()
    exif[Base.Make] = spec.make
    exif[Base.Model] = spec.model
    exif[Base.Orientation] = spec.orientation
    exif[Base.Software] = "Sharing Portal demo generator"
    stamp = spec.taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[Base.DateTime] = stamp
    exif_ifd = exif.get_ifd(IFD.Exif)
    exif_ifd[Base.DateTimeOriginal] = stamp
    exif_ifd[Base.OffsetTimeOriginal] = "+00:00"
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[GPS.GPSLatitudeRef] = "N" if spec.latitude >= 0 else "S"
    gps[GPS.GPSLatitude] = _dms(spec.latitude)
    gps[GPS.GPSLongitudeRef] = "E" if spec.longitude >= 0 else "W"
    gps[GPS.GPSLongitude] = _dms(spec.longitude)
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=85, exif=exif.tobytes())
    return RenderedPhoto(data=buffer.getvalue(), sign_box=sign_box)


# --- scans ---------------------------------------------------------------------------------


def scanned_pdf(pages: Sequence[Sequence[str]], *, created: datetime, dpi: int = 150) -> bytes:
    """An image-only PDF, as a scanner makes it: each page an A4 greyscale JPEG of its lines
    (Noto Sans from fonts-noto-core), no text layer — names in it exist only as pixels."""
    from portal.documents.fonts import SANS, locate

    font_path = next(iter(locate(SANS.faces[:1]).values()))
    font = ImageFont.truetype(str(font_path), round(dpi * 0.17))
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    images = []
    for lines in pages:
        image = Image.new("L", (width, height), 250)
        draw = ImageDraw.Draw(image)
        y = dpi
        for line in lines:
            for part in textwrap.wrap(line, 60) or [""]:
                draw.text((dpi, y), part, font=font, fill=20)
                y += round(dpi * 0.32)
            y += round(dpi * 0.16)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="PDF", resolution=dpi, save_all=True, append_images=images[1:],
        creationDate=created.utctimetuple(), modDate=created.utctimetuple(),  # same bytes each run
    )  # fmt: skip
    return buffer.getvalue()


# --- kinds the portal cannot redact ---------------------------------------------------------


def wav_audio(*, seed: int, seconds: float = 1.5, rate: int = 8000) -> bytes:
    """A short mono 16-bit WAV: a few tones with a little seeded noise."""
    rng = random.Random(seed)  # noqa: S311 - a sound, not security
    tones = [rng.choice((220.0, 261.6, 329.6, 392.0, 440.0)) for _ in range(3)]
    frames = bytearray()
    total = int(seconds * rate)
    for n in range(total):
        tone = tones[n * len(tones) // total]
        sample = 0.4 * math.sin(2 * math.pi * tone * n / rate) + rng.uniform(-0.05, 0.05)
        frames += struct.pack("<h", int(sample * 32767))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def zip_archive(members: Sequence[tuple[str, bytes]], *, modified: datetime) -> bytes:
    """A zip archive with fixed member timestamps and permissions."""
    stamp = modified.astimezone(UTC).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
