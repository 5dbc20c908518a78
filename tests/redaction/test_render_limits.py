"""pdfium renders uploaded PDFs within limits (issue 18): a page whose forms are nested into
a million drawings (a 3 KB file that needs gigabytes to load) is refused, with the reason,
by the viewer's page images, by the PDF redactor and by OCR, and nothing is left behind —
no cached image, no partial rendition, no child process."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from pathlib import Path

import pytest

from portal.redaction import page_images, pdf, pixels
from portal.redaction.ocr import OcrFailed, Scripts
from portal.redaction.page_images import PageImageFailed, PageImages
from portal.redaction.renditions import CannotRedact, MarkSpec, redact

A4 = b"[0 0 595 842]"


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    return bytes(out + b"startxref\n%d\n%%%%EOF\n" % xref)


def _stream(entries: bytes, body: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(body), body)


def form_bomb(path: Path, depth: int) -> Path:
    """One page drawing a form that draws the next form ten times, ``depth`` levels deep:
    10^(depth-1) rectangles, each a page object pdfium keeps (about 2 KB each)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Resources << /XObject << /F 5 0 R >> >>"
        b" /Contents 4 0 R >>" % A4,
        _stream(b"", b"/F Do"),
    ]
    for level in range(depth):
        form = b"/Type /XObject /Subtype /Form /BBox %s" % A4
        if level == depth - 1:
            objects.append(_stream(form, b"0 0 1 1 re f"))
        else:
            draws = b" ".join([b"q 1 0 0 1 0.1 0 cm /F Do Q"] * 10)
            resources = b" /Resources << /XObject << /F %d 0 R >> >>" % (5 + level + 1)
            objects.append(_stream(form + resources, draws))
    path.write_bytes(_pdf(objects))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits a 100,000-rectangle page (about 200 MB to load, 0.4 s) goes beyond, so the
    tests stay light; the default limits are tested once, on a bigger bomb, below."""
    monkeypatch.setattr(page_images, "RENDER_MEMORY", 64 << 20)
    monkeypatch.setattr(pdf, "RENDER_MEMORY", 64 << 20)
    monkeypatch.setattr(pixels, "RENDER_MEMORY", 64 << 20)


def no_children_left() -> None:
    assert multiprocessing.active_children() == []


def test_the_viewer_refuses_a_form_bomb_at_the_default_limits(tmp_path: Path) -> None:
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=7)  # a million rectangles: ~2 GB to load
    assert bomb.stat().st_size < 4000
    images = PageImages(tmp_path / "pages")
    started = time.monotonic()
    with pytest.raises(PageImageFailed, match="page 1 of the PDF cannot be shown") as refused:
        images.render(bomb, "application/pdf", sha(bomb), 1)
    assert time.monotonic() - started < page_images.PAGE_SECONDS
    assert "memory" in refused.value.reason or "stopped" in refused.value.reason
    assert images.cached(sha(bomb), 1) is None
    assert not (tmp_path / "pages").exists() or not any((tmp_path / "pages").rglob("*"))
    no_children_left()


@pytest.mark.usefixtures("small_limits")
def test_the_redactor_refuses_a_form_bomb_and_writes_nothing(tmp_path: Path) -> None:
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=6)
    out = tmp_path / "out"
    out.mkdir()
    marks = [MarkSpec("B1", "pdf_box", "face of a witness", page=1, box=(0.1, 0.1, 0.2, 0.2))]
    with pytest.raises(CannotRedact, match=r"the PDF could not be rasterised: .*memory"):
        redact(bomb, "application/pdf", marks, out / "rendition.pdf")
    assert list(out.iterdir()) == []
    no_children_left()


@pytest.mark.usefixtures("small_limits")
def test_ocr_refuses_a_form_bomb(tmp_path: Path) -> None:
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=6)
    with pytest.raises(OcrFailed, match=r"could not be rendered: .*memory"):
        list(pixels.read_pdf_pages(bomb, Scripts()))
    no_children_left()


@pytest.mark.usefixtures("small_limits")
def test_a_page_that_renders_too_long_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_images, "RENDER_MEMORY", 4 << 30)
    monkeypatch.setattr(page_images, "PAGE_SECONDS", 0.05)
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=6)
    with pytest.raises(PageImageFailed, match=r"longer than 0\.05 s"):
        PageImages(tmp_path / "pages").render(bomb, "application/pdf", sha(bomb), 1)
    no_children_left()


@pytest.mark.usefixtures("small_limits")
def test_an_ordinary_pdf_still_renders_within_the_small_limits(tmp_path: Path) -> None:
    ordinary = form_bomb(tmp_path / "ordinary.pdf", depth=3)  # 100 rectangles
    images = PageImages(tmp_path / "pages")
    assert images.render(ordinary, "application/pdf", sha(ordinary), 1).is_file()
    marks = [MarkSpec("B1", "pdf_box", "face of a witness", page=1, box=(0.1, 0.1, 0.2, 0.2))]
    outcome = redact(ordinary, "application/pdf", marks, tmp_path / "rendition.pdf")
    assert outcome.applied[0].occurrences == 1
    no_children_left()
