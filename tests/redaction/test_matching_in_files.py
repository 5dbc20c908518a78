"""The new matching in real files: text renditions and PDFs redacted, the leak check reading
texts shared as they are and PDFs whose Arabic is in visual order. Names are fictional."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pdfminer.high_level import extract_text

from portal.redaction.leakcheck import (
    CHUNK_SIZE,
    LeakFound,
    LeakReport,
    StreamingCheck,
    check_files,
)
from portal.redaction.normalise import fold, to_zawgyi
from portal.redaction.renditions import MarkSpec, redact

FULL_NAME = "Mya Sandar Oo"
ARABIC = "كالوم تانزو"  # fictional
ARABIC_MARKED = "كَالُومْ تـــانْزُو"  # the same, with harakat and tatweel
BURMESE = "ဒေါ်မြသန္တာဦး"  # fictional
SANS = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def term(code: str, text: str) -> MarkSpec:
    return MarkSpec(code=code, kind="term", reason="protects a witness", term=text)


def hits(report: LeakReport) -> set[tuple[str, str, str]]:
    return {(hit.path, hit.mark_code, hit.where) for hit in report.hits}


def test_a_partial_name_in_a_text_is_redacted_and_the_rendition_is_clean(tmp_path: Path) -> None:
    source = tmp_path / "statement.txt"
    source.write_text(
        "Statement of Mya Sandar Oo.\nOn page two: Mya\nSandar came back; Sandar-\nOo left.\n"
        "Mya alone, Oo alone and Sandar alone are not the name.\n",
        encoding="utf-8",
    )
    dest = tmp_path / "statement.pdf"
    outcome = redact(source, "text/plain", [term("T1", FULL_NAME)], dest)
    assert [m.occurrences for m in outcome.applied] == [3]
    extracted = fold(extract_text(str(dest)))
    for gone in ("myasandar", "sandaroo"):
        assert gone not in extracted
    assert "myaalone,ooaloneandsandaralone" in extracted
    assert check_files([("data/statement.pdf", dest)], outcome.protected_terms).clean
    assert not check_files([("statement.txt", source)], outcome.protected_terms).clean


def test_arabic_with_harakat_and_burmese_in_zawgyi_are_redacted(tmp_path: Path) -> None:
    zawgyi = to_zawgyi(BURMESE)
    assert zawgyi is not None
    source = tmp_path / "s.txt"
    source.write_text(
        f"Witness: {ARABIC_MARKED}.\nOther witness: {zawgyi} (Zawgyi).\nAnd {BURMESE}.\n",
        encoding="utf-8",
    )
    dest = tmp_path / "s.pdf"
    outcome = redact(source, "text/plain", [term("T1", ARABIC), term("T2", BURMESE)], dest)
    assert [(m.code, m.occurrences) for m in outcome.applied] == [("T1", 1), ("T2", 2)]
    extracted = fold(extract_text(str(dest)))
    assert fold("كالوم") not in extracted and fold("ဒေါ်") not in extracted
    assert "witness" in extracted
    assert check_files([("data/s.pdf", dest)], outcome.protected_terms).clean


@pytest.mark.parametrize(
    "hidden",
    [
        f"Witness {ARABIC_MARKED} spoke",
        "Witness Mya\u00adSan\u200bdar spoke",
        "Witness Mya San-\ndar spoke",
        f"Witness {to_zawgyi(BURMESE)} spoke",
        "Witness \u202eMya\u202c Sandar spoke",
    ],
)
def test_a_text_shared_as_it_is_is_read_as_text(tmp_path: Path, hidden: str) -> None:
    terms = [("T1", ARABIC), ("T2", FULL_NAME), ("T3", BURMESE)]
    for encoding in ("utf-8", "utf-16"):
        path = tmp_path / f"notes-{encoding}.txt"
        path.write_bytes(hidden.encode(encoding))
        report = check_files([("data/notes.txt", path)], terms)
        assert len(report.hits) == 1 and report.hits[0].where == "bytes", (encoding, report)


def test_text_read_as_it_streams_finds_names_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    filler = "word " * (CHUNK_SIZE // 5 - 2)
    path.write_text(filler + ARABIC_MARKED + " end\n", encoding="utf-8")
    check = StreamingCheck([("T1", ARABIC)])
    check.prepare("data/long.txt", path)
    observer = check.observe("data/long.txt")
    assert observer is not None
    data = path.read_bytes()
    with pytest.raises(LeakFound):
        for start in range(0, len(data), 4093):
            observer.feed(data[start : start + 4093])
        observer.close()
    assert hits(check.report()) == {("data/long.txt", "T1", "bytes")}


def test_binary_files_are_not_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    # A NUL byte early: binary, so the harakat-laden name is not decoded (and not found).
    path.write_bytes(b"\x00\x00\x00\x18ftyp" + ARABIC_MARKED.encode())
    assert check_files([("clip.mp4", path)], [("T1", ARABIC)]).clean


def _arabic_pdf(path: Path, line: str) -> Path:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen.canvas import Canvas

    if "TestSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("TestSans", str(SANS)))
    canvas = Canvas(str(path), pagesize=(595, 842))
    canvas.setFont("TestSans", 14)
    canvas.drawString(72, 700, line)
    canvas.showPage()
    canvas.save()
    return path


@pytest.mark.skipif(not SANS.is_file(), reason="needs DejaVu Sans (Debian fonts-dejavu-core)")
def test_arabic_in_visual_order_in_a_pdf_is_found_and_redacted(tmp_path: Path) -> None:
    # Drawn in the order the glyphs appear: extraction gives the line reversed.
    visual = _arabic_pdf(tmp_path / "visual.pdf", f"شهد {ARABIC} أمس"[::-1])
    assert fold(ARABIC) not in fold(extract_text(str(visual)))
    report = check_files([("visual.pdf", visual)], [("T1", ARABIC)])
    assert ("visual.pdf", "T1", "text") in hits(report)

    dest = tmp_path / "visual-red.pdf"
    outcome = redact(visual, "application/pdf", [term("T1", ARABIC)], dest, label="X")
    assert outcome.applied[0].occurrences == 1
    assert check_files([("red.pdf", dest)], outcome.protected_terms).clean


@pytest.mark.skipif(not SANS.is_file(), reason="needs DejaVu Sans (Debian fonts-dejavu-core)")
def test_a_partial_name_in_a_pdf_is_redacted(tmp_path: Path) -> None:
    source = _arabic_pdf(tmp_path / "p.pdf", "Later, Sandar  OO was seen.")
    dest = tmp_path / "p-red.pdf"
    outcome = redact(source, "application/pdf", [term("T1", FULL_NAME)], dest, label="X")
    assert outcome.applied[0].occurrences == 1
    report = check_files([("p.pdf", source)], [("T1", FULL_NAME)])
    assert ("p.pdf", "T1", "text") in hits(report)


def test_streamed_and_whole_checks_agree_on_text_files(tmp_path: Path) -> None:
    files = []
    for number, hidden in enumerate(
        [ARABIC_MARKED, "Mya\u00adSandar", f"x {to_zawgyi(BURMESE)} y", "nothing here"]
    ):
        path = tmp_path / f"{number}.txt"
        path.write_text(f"statement: {hidden}\n", encoding="utf-8")
        files.append((f"data/{number}.txt", path))
    terms = [("T1", ARABIC), ("T2", FULL_NAME), ("T3", BURMESE)]
    check = StreamingCheck(terms)
    for name, path in files:
        check.prepare(name, path)
    for name, path in files:
        observer = check.observe(name)
        assert observer is not None
        with contextlib.suppress(LeakFound):
            data = path.read_bytes()
            for start in range(0, len(data), 3):
                observer.feed(data[start : start + 3])
            observer.close()
    assert set(check.report().hits) == set(check_files(files, terms).hits)
    assert hits(check.report()) == {
        ("data/0.txt", "T1", "bytes"),
        ("data/1.txt", "T2", "bytes"),
        ("data/2.txt", "T3", "bytes"),
    }
