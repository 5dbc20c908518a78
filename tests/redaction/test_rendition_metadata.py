"""Every redacted rendition is written without metadata, whatever the source carried: PDFs
(document information, XMP, annotations, attachments, form fields, JavaScript), JPEGs (EXIF
with GPS, XMP, comments), PNGs (tEXt, zTXt, iTXt), and the PDFs made from plain text.

The sources are hostile files made with real tools (pikepdf, Pillow) that name a protected
person everywhere a reader does not look; each rendition is read back with the same tools.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from portal.redaction.leakcheck import check_files
from portal.redaction.renditions import MarkSpec, redact
from tests.support.hostile import (
    PDF_PLACES,
    file_texts,
    jpeg_with,
    metadata_of_image,
    metadata_of_pdf,
    pdf_lines,
    pdf_with,
    png_with,
)
from tests.support.identifiers import LATIN_NAME

CODE = "PID-TEST-1"
MARK = MarkSpec(CODE, "term", "protected identifier", term=LATIN_NAME)


def _absent(path: Path) -> None:
    """The name is nowhere in the file: bytes, text, metadata (and the leak check agrees)."""
    for text in file_texts(path):
        assert "orlanda" not in text.casefold() and "marrow" not in text.casefold()
    assert check_files([("rendition", path)], [(CODE, LATIN_NAME)]).clean


def test_a_hostile_pdf_becomes_a_pdf_without_metadata(tmp_path: Path) -> None:
    source = tmp_path / "hostile.pdf"
    source.write_bytes(pdf_with(LATIN_NAME, *PDF_PLACES))
    assert len(metadata_of_pdf(source)) >= 6  # the source does carry all of it
    dest = tmp_path / "rendition.pdf"
    outcome = redact(source, "application/pdf", [MARK], dest)
    assert [(a.code, a.occurrences, a.pages) for a in outcome.applied] == [(CODE, 1, ((1, 1),))]
    assert metadata_of_pdf(dest) == []
    _absent(dest)


def test_a_pdf_names_the_pages_of_each_hit(tmp_path: Path) -> None:
    source = tmp_path / "pages.pdf"
    source.write_bytes(
        pdf_lines(["Nothing here."], [f"{LATIN_NAME} came.", f"Later {LATIN_NAME} left."])
    )
    outcome = redact(source, "application/pdf", [MARK], tmp_path / "out.pdf")
    assert [(a.occurrences, a.pages) for a in outcome.applied] == [(2, ((2, 2),))]


@pytest.mark.parametrize(
    ("media_type", "data"),
    [
        ("image/jpeg", jpeg_with(LATIN_NAME, exif=True, comment=True, xmp=True, gps=True)),
        ("image/png", png_with(LATIN_NAME)),
        ("image/png", png_with(LATIN_NAME, compressed=True)),
        ("image/png", png_with(LATIN_NAME, international=True)),
    ],
    ids=["jpeg-exif-gps-comment-xmp", "png-text", "png-ztxt", "png-itxt"],
)
def test_an_image_with_no_box_is_remade_from_its_pixels(
    tmp_path: Path, media_type: str, data: bytes
) -> None:
    source = tmp_path / "source"
    source.write_bytes(data)
    assert metadata_of_image(source)  # the source carries it
    dest = tmp_path / "rendition"
    outcome = redact(source, media_type, [], dest)
    assert (outcome.media_type, outcome.applied) == (media_type, ())
    assert metadata_of_image(dest) == []
    _absent(dest)
    with Image.open(source) as before, Image.open(dest) as after:
        assert after.size == before.size


def test_orientation_is_applied_before_the_metadata_goes(tmp_path: Path) -> None:
    source = tmp_path / "turned.jpg"
    source.write_bytes(jpeg_with(None, orientation=6, size=(64, 32)))  # "rotate 90° to view"
    dest = tmp_path / "upright.jpg"
    redact(source, "image/jpeg", [], dest)
    with Image.open(dest) as upright:
        assert upright.size == (32, 64)
    assert metadata_of_image(dest) == []


def test_a_text_rendition_carries_no_metadata(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text(f"Notes.\n{LATIN_NAME} was at the mill.\n", encoding="utf-8")
    dest = tmp_path / "notes.pdf"
    redact(source, "text/plain", [MARK], dest)
    assert metadata_of_pdf(dest) == []
    _absent(dest)
