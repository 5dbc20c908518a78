"""Files that hide a protected identifier where a reader does not look, made with real tools
(ReportLab and pikepdf for PDFs, Pillow for images), and checks that a file holds none of
a set of strings anywhere: raw bytes (UTF-8 and UTF-16), extracted text, metadata.

Every builder takes the string to hide; nothing here knows the register.
"""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
from pdfminer.high_level import extract_text
from PIL import Image, PngImagePlugin
from PIL.ExifTags import IFD, Base
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

__all__ = [
    "INNOCENT",
    "file_texts",
    "jpeg_with",
    "metadata_of_image",
    "metadata_of_pdf",
    "pdf_lines",
    "pdf_with",
    "png_with",
]

INNOCENT = "Site visit notes: the well, the school and the road to the mill."
PDF_PLACES = ("text", "info", "xmp", "annotation", "attachment", "form field", "javascript")


def pdf_lines(*pages: list[str]) -> bytes:
    """A PDF (ReportLab) with these lines of text, one list per page."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for lines in pages:
        for number, line in enumerate(lines):
            pdf.drawString(72, 760 - 20 * number, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def pdf_with(secret: str, *places: str) -> bytes:
    """An innocent one-page PDF with ``secret`` hidden in each of ``places`` (PDF_PLACES)."""
    unknown = set(places) - set(PDF_PLACES)
    assert not unknown, unknown
    text = [INNOCENT, f"Interviewed: {secret}."] if "text" in places else [INNOCENT]
    pdf = pikepdf.open(io.BytesIO(pdf_lines(text)))
    if "info" in places:
        pdf.docinfo["/Title"] = f"Statement of {secret}"
        pdf.docinfo["/Author"] = secret
    if "xmp" in places:
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:creator"] = [secret]
            meta["dc:description"] = f"Given by {secret}"
    page = pdf.pages[0]
    if "annotation" in places:
        note = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Text,
                Rect=[100, 100, 120, 120],
                Contents=pikepdf.String(f"Ask {secret} again"),
                T=pikepdf.String(secret),
            )
        )
        page.obj["/Annots"] = pdf.make_indirect(pikepdf.Array([note]))
    if "attachment" in places:
        attached = f"Contact sheet\n{secret}, the mill\n".encode()
        pdf.attachments["contacts.txt"] = pikepdf.AttachedFileSpec(pdf, attached)
    if "form field" in places:
        field = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Widget,
                FT=pikepdf.Name.Tx,
                T=pikepdf.String("witness"),
                V=pikepdf.String(secret),
                Rect=[72, 600, 300, 620],
                P=page.obj,
            )
        )
        annots = page.obj.get("/Annots", pdf.make_indirect(pikepdf.Array()))
        annots.append(field)
        page.obj["/Annots"] = annots
        pdf.Root["/AcroForm"] = pikepdf.Dictionary(Fields=[field])
    if "javascript" in places:
        pdf.Root["/OpenAction"] = pikepdf.Dictionary(
            S=pikepdf.Name.JavaScript, JS=pikepdf.String(f"app.alert('{secret}');")
        )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _image(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, size, (180, 150, 90) if mode == "RGB" else (180, 150, 90, 255))
    for x in range(size[0] // 2):  # a left half that shows where "up" is after rotating
        for y in range(size[1]):
            image.putpixel((x, y), (20, 40, 200) if mode == "RGB" else (20, 40, 200, 255))
    return image


def jpeg_with(
    secret: str | None,
    *,
    exif: bool = False,
    comment: bool = False,
    xmp: bool = False,
    gps: bool = False,
    orientation: int | None = None,
    size: tuple[int, int] = (64, 32),
) -> bytes:
    """A JPEG with ``secret`` in its EXIF (description, artist, UTF-16 XPComment), its
    comment segment or its XMP; optionally a GPS position and an EXIF orientation."""
    tags = Image.Exif()
    if exif and secret:
        tags[Base.ImageDescription] = f"Photo of {secret} at the mill"
        tags[Base.Artist] = secret
        tags[Base.XPComment] = f"{secret}\x00".encode("utf-16-le")
    if gps:
        tags.get_ifd(IFD.GPSInfo).update(
            {1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 15.0)}
        )
    if orientation is not None:
        tags[Base.Orientation] = orientation
    options: dict[str, object] = {"exif": tags.tobytes(), "quality": 90}
    if comment and secret:
        options["comment"] = f"Taken by {secret}".encode()
    if xmp and secret:
        options["xmp"] = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{secret}"/>'
            "</rdf:RDF></x:xmpmeta>"
        ).encode()
    buffer = io.BytesIO()
    _image(size).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png_with(secret: str, *, compressed: bool = False, international: bool = False) -> bytes:
    """A PNG with ``secret`` in a tEXt chunk (or zTXt, or iTXt)."""
    info = PngImagePlugin.PngInfo()
    if international:
        info.add_itxt("Description", f"Portrait of {secret}", lang="en", tkey="Description")
    else:
        info.add_text("Author", secret, zip=compressed)
    buffer = io.BytesIO()
    _image((48, 24), "RGBA").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


# --------------------------------------------------------------------------- reading back


def metadata_of_pdf(path: Path) -> list[str]:
    """What a PDF carries besides its pages' content: a list of findings (empty: none)."""
    found = []
    with pikepdf.open(path) as pdf:
        if "/Info" in pdf.trailer:
            found.append(f"Info {dict(pdf.docinfo)!r}")
        for key in ("/Metadata", "/AcroForm", "/Names", "/OpenAction", "/AA", "/Outlines"):
            if key in pdf.Root:
                found.append(f"catalog {key}")
        if len(pdf.attachments):
            found.append("attachments")
        for number, page in enumerate(pdf.pages, start=1):
            for key in ("/Annots", "/AA", "/Metadata"):
                if key in page.obj:
                    found.append(f"page {number} {key}")
    return found


def metadata_of_image(path: Path) -> list[str]:
    """What an image carries besides its pixels (EXIF, XMP, comments, text chunks, ICC)."""
    with Image.open(path) as image:
        found = [f"info {key}" for key in image.info if key not in ("jfif", "jfif_version",
                 "jfif_unit", "jfif_density", "dpi", "progressive", "progression")]  # fmt: skip
        if len(image.getexif()):
            found.append("exif")
        if getattr(image, "text", None):
            found.append("text chunks")
        if getattr(image, "applist", None):
            found.extend(f"segment {marker}" for marker, _data in image.applist if marker != "APP0")
    return found


def file_texts(path: Path) -> list[str]:
    """Every way the file can be read as text: its bytes as UTF-8 and UTF-16 (both byte
    orders, from both alignments), its extracted text (PDFs) and its metadata values."""
    data = path.read_bytes()
    texts = [data.decode("utf-8", "ignore")]
    for encoding in ("utf-16-le", "utf-16-be"):
        texts.extend(data[start:].decode(encoding, "ignore") for start in (0, 1))
    if data.startswith(b"%PDF"):
        texts.append(extract_text(path))
        with pikepdf.open(path) as pdf:
            texts.append(repr(dict(pdf.docinfo)) if "/Info" in pdf.trailer else "")
            texts.append(str(pdf.open_metadata()))
    elif data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n":
        with Image.open(path) as image:
            texts.append(repr(image.info))
            texts.append(repr(dict(image.getexif())))
    return texts
