"""Bounded results for documents beyond what the portal redacts: a PDF of more pages than
:data:`~portal.redaction.pdf.MAX_PAGES` is refused at once with the reason, leaving no output
file behind (a 5,000-page PDF of hostile origin must not keep a worker busy for hours)."""

from __future__ import annotations

import time
from pathlib import Path

import pikepdf
import pytest

from portal.redaction.pdf import MAX_PAGES
from portal.redaction.renditions import CannotRedact, redact
from tests.redaction.test_redaction import NAME, term


def _pdf_of_pages(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` blank pages (one page object per page), written by pikepdf."""
    with pikepdf.new() as pdf:
        for _ in range(pages):
            pdf.add_blank_page(page_size=(200, 200))
        pdf.save(path)
    return path


def test_a_pdf_of_too_many_pages_is_refused_quickly_with_the_reason(tmp_path: Path) -> None:
    source = _pdf_of_pages(tmp_path / "long.pdf", MAX_PAGES + 1)
    dest = tmp_path / "out.pdf"
    began = time.monotonic()
    with pytest.raises(CannotRedact) as refused:
        redact(source, "application/pdf", [term("T1", NAME)], dest)
    assert time.monotonic() - began < 30
    assert refused.value.reason == (
        f"the PDF has {MAX_PAGES + 1} pages; the portal redacts 1 to {MAX_PAGES}"
    )
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_a_pdf_within_the_limit_is_redacted(tmp_path: Path) -> None:
    source = _pdf_of_pages(tmp_path / "short.pdf", 3)
    outcome = redact(source, "application/pdf", [term("T1", NAME)], tmp_path / "out.pdf")
    assert outcome.media_type == "application/pdf"
    assert [(mark.code, mark.occurrences) for mark in outcome.applied] == [("T1", 0)]
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        assert len(pdf.pages) == 3
