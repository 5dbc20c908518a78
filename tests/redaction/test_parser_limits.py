"""Parsers of uploaded and imported files run within limits: a small Flate-bomb PDF is
refused by the leak check with a reason, quickly; a parse that wants too much memory is
stopped; Pillow refuses (not merely warns about) images of too many pixels."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from portal.redaction import parser_limits
from portal.redaction.leakcheck import check_files
from portal.redaction.parser_limits import MAX_IMAGE_PIXELS, ParseLimitExceeded, run_bounded

TERMS = [("MK-1", "Fictional Person")]


def _flate_bomb(path: Path, operators: int) -> Path:
    """A one-page PDF whose content stream inflates ~2,000-fold into ``operators`` no-op
    operators (pdfminer interprets every one)."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    data = b"1 0 0 1 0 0 cm\n" * operators
    stream = pikepdf.Stream(pdf, zlib.compress(data, 9))
    stream["/Filter"] = pikepdf.Name.FlateDecode
    pdf.pages[0].obj["/Contents"] = pdf.make_indirect(stream)
    pdf.save(path, compress_streams=False)
    return path


def test_a_flate_bomb_pdf_is_unchecked_with_a_reason_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = _flate_bomb(tmp_path / "bomb.pdf", 1_000_000)  # 15 MB of operators: ~25 s unbounded
    assert bomb.stat().st_size < 40_000
    monkeypatch.setattr(parser_limits, "PARSE_SECONDS", 1)
    started = time.monotonic()
    report = check_files([("bomb.pdf", bomb)], TERMS)
    assert time.monotonic() - started < 10
    assert not report.clean and report.hits == ()
    assert report.unchecked == (
        ("bomb.pdf", "the PDF was not read to the end: reading it took longer than 1 s"),
    )


def test_an_ordinary_pdf_is_still_read_through_the_child(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.pages[0].obj["/Contents"] = pdf.make_stream(b"BT /F1 12 Tf (Fictional Person) Tj ET")
    pdf.save(tmp_path / "plain.pdf")
    report = check_files([("plain.pdf", tmp_path / "plain.pdf")], TERMS)
    assert {(hit.path, hit.where) for hit in report.hits} >= {("plain.pdf", "text")}


def _allocate(size: int) -> int:
    return len(bytearray(size))


def _fail() -> None:
    raise ValueError("a reason from the child")


def test_a_parse_that_wants_too_much_memory_is_stopped() -> None:
    assert run_bounded(_allocate, 1 << 20) == 1 << 20
    with pytest.raises(ParseLimitExceeded, match="memory"):
        run_bounded(_allocate, 2 << 30, memory=256 << 20)
    with pytest.raises(ValueError, match="a reason from the child"):
        run_bounded(_fail)


def test_pillow_refuses_images_beyond_the_pixel_limit(tmp_path: Path) -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    path = tmp_path / "wide.png"
    Image.new("1", (side, side)).save(path)  # one bit a pixel: small to make, small on disk
    with pytest.raises(Image.DecompressionBombError), Image.open(path) as opened:
        opened.load()
    report = check_files([("wide.png", path)], TERMS)
    assert not report.clean
    ((name, reason),) = report.unchecked
    assert name == "wide.png" and "DecompressionBomb" in reason
