"""Where names are on an item's pages, for the review page: the text layer gives boxes from
its characters, scans and photos from OCR words; boxes are fractions of the page."""

from __future__ import annotations

from pathlib import Path

from portal.redaction.hits import locate_hits
from tests.redaction.test_ocr import LATIN, scan


def test_names_on_a_scan_are_located_with_ocr_as_fractions_of_the_page(tmp_path: Path) -> None:
    page, boxes = scan([("latin", "Statement of a witness."), ("latin", f"Present: {LATIN}.")])
    source = tmp_path / "scan.pdf"
    page.save(source, format="PDF", resolution=200)
    [hit] = locate_hits(source, "application/pdf", [("PID-00001", LATIN), ("T9", "absent words")])
    assert (hit.code, hit.page, hit.how) == ("PID-00001", 1, "ocr")
    assert hit.box is not None
    x0, y0, x1, y1 = hit.box
    line = boxes[f"Present: {LATIN}."]
    assert abs(y0 - line[1] / page.height) < 0.03 and abs(y1 - line[3] / page.height) < 0.03
    assert x0 > line[0] / page.width  # the name, not the whole line
    assert abs(x1 - line[2] / page.width) < 0.03


def test_a_photo_and_a_text_and_short_terms(tmp_path: Path) -> None:
    page, _ = scan([("latin", f"Sign: {LATIN}")], size=(1200, 300))
    photo = tmp_path / "sign.png"
    page.save(photo)
    [hit] = locate_hits(photo, "image/png", [("M1", LATIN)])
    assert hit.page == 1 and hit.how == "ocr" and hit.box and 0 < hit.box[0] < hit.box[2] <= 1
    text = tmp_path / "s.txt"
    text.write_text(f"{LATIN} and again {LATIN}", encoding="utf-8")
    assert [(h.code, h.box) for h in locate_hits(text, "text/plain", [("M1", LATIN)])] == [
        ("M1", None),
        ("M1", None),
    ]
    assert locate_hits(text, "text/plain", [("M2", "Q")]) == []  # too short to search
