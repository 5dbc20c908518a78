"""The text layer of an uploaded PDF is read within limits (issue 18), as its pages are
rendered: the review pages count term hits in the web process, and a page of forms nested into
a million drawings (a few KB) needs gigabytes to load. It is refused — nothing found, logged,
the web process unharmed, no child left — while ordinary PDFs are searched as before."""

from __future__ import annotations

import logging
import multiprocessing
import resource
import time
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from portal.redaction import hits
from portal.redaction.hits import hits_per_page, locate_hits
from portal.redaction.ocr import OcrFailed
from tests.redaction.test_render_limits import form_bomb

TERM = ("M-1", "Jonas Halvorsen")


def _statement(path: Path) -> Path:
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.drawString(72, 760, "Page one says nothing.")
    pdf.showPage()
    pdf.drawString(72, 760, "Jonas Halvorsen saw the convoy; Jonas Halvorsen said so.")
    pdf.save()
    return path


def test_the_review_pages_count_refuses_a_form_bomb_at_the_default_limits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=7)  # a million rectangles: ~2 GB to load
    assert bomb.stat().st_size < 4000
    caplog.set_level(logging.WARNING)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()

    assert hits_per_page(bomb, "application/pdf", [TERM]) == {}

    assert time.monotonic() - started < hits.PAGE_SECONDS
    assert "The text layer of a PDF was not searched" in caplog.text
    assert "memory" in caplog.text or "stopped" in caplog.text
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 200 * 1024  # the gigabytes were the child's, not this process's
    assert multiprocessing.active_children() == []


def test_the_worker_search_says_why_it_could_not_read_a_form_bomb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hits, "TEXT_MEMORY", 64 << 20)  # a 100,000-drawing page goes beyond
    bomb = form_bomb(tmp_path / "bomb.pdf", depth=6)
    with pytest.raises(OcrFailed, match=r"text layer could not be read: .*memory"):
        locate_hits(bomb, "application/pdf", [TERM])
    assert multiprocessing.active_children() == []


def test_ordinary_pdfs_are_searched_as_before(tmp_path: Path) -> None:
    statement = _statement(tmp_path / "statement.pdf")
    assert hits_per_page(statement, "application/pdf", [TERM]) == {"M-1": {2: 2}}
    found = [hit for hit in locate_hits(statement, "application/pdf", [TERM]) if hit.how == "text"]
    assert [(hit.code, hit.page) for hit in found] == [("M-1", 2), ("M-1", 2)]
    assert all(hit.box is not None and 0 <= hit.box[0] < hit.box[2] <= 1 for hit in found)
    with pytest.raises(FileNotFoundError):  # as before: the callers say it was not searched
        hits_per_page(tmp_path / "missing.pdf", "application/pdf", [TERM])
    assert multiprocessing.active_children() == []
