"""The documents of a package: transmittal letter (WeasyPrint), custody and redaction log
(ReportLab) and the recall notice. Real PDFs, read back with pdfminer."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdfminer.high_level import extract_text
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfparser import PDFParser

from portal.config import REPO_ROOT
from portal.packages.assembly.documents import (
    DocumentError,
    NoticeItem,
    custody_log_pdf,
    recall_notice_text,
    render_custody_log,
    render_transmittal_letter,
    transmittal_letter_html,
    transmittal_letter_pdf,
)
from portal.packages.assembly.facts import PROTECTED_IDENTIFIER_REASON, AppliedMark
from portal.packages.assembly.manifest import build_manifest, manifest_bytes, parse_manifest
from portal.registry.openpgp import temporary_keyring
from tests.support.package_facts import (
    PROTECTED_TERM,
    REDACTION_REASON,
    SIGNER,
    example_documents,
    example_item,
    example_package,
    example_records,
)

TEMPLATES = REPO_ROOT / "templates"
ITEMS = (example_item(1), example_item(2, rendition="as_is", redactions=(), consent=None))


def _text(pdf: bytes) -> str:
    """All text of the PDF, whitespace collapsed (table cells wrap)."""
    return " ".join(extract_text(io.BytesIO(pdf)).split())


def _info(pdf: bytes) -> list[dict[str, object]]:
    info: list[dict[str, object]] = PDFDocument(PDFParser(io.BytesIO(pdf))).info
    return info


def _pages(pdf: bytes) -> int:
    return len(pypdfium2.PdfDocument(pdf))


def _assert_one_clean_revision(pdf: bytes, title: str) -> None:
    assert pdf.startswith(b"%PDF-")
    assert pdf.count(b"%%EOF") == 1  # written once, never updated incrementally
    assert _info(pdf) == [{"Title": title.encode()}]  # no author, producer, dates


# -- transmittal letter -----------------------------------------------------------------------


def test_letter_is_a_pdf_that_says_what_was_sent_and_what_to_do(tmp_path: Path) -> None:
    dest = tmp_path / "transmittal-letter.pdf"
    render_transmittal_letter(example_package(), ITEMS, dest, templates_dir=TEMPLATES)

    pdf = dest.read_bytes()
    _assert_one_clean_revision(pdf, "Transmittal letter PKG-2026-0001")
    text = _text(pdf)
    for expected in (
        "The Mechanism",
        "National War Crimes Unit (Netherlands)",
        "Re: your request NWU/2026/117-B (our reference RFA-2026-0007)",
        "package PKG-2026-0001",
        "7d0c6a52-0f4e-4b8e-9a55-3f7b8c1d2e90",
        "ITM-000001",
        "Witness statement no. 1 on the events at the northern checkpoint",
        "ITM-000002",
        "Witness statement no. 2",
        "Syrian Archive Collective",
        "Redacted (4 redactions)",
        "As is",
        ITEMS[0].sha256[:8],
        "ITM-000001: Use in criminal proceedings only; no disclosure to the media.",
        f"portal-verify PKG-2026-0001.tar.gpg --sender-fingerprint {SIGNER}",
        "gpg --verify PKG-2026-0001.tar.gpg.sig PKG-2026-0001.tar.gpg",
        "bagit.py --validate PKG-2026-0001",
        "Acknowledge receipt",
        "Do not share",
        "3B9A 7E2C 5D1F 4A6B 8C0E 2D4F 6A8B 0C2E 4F6A 8B0C",  # read aloud to compare
        "C0FF EE00 1122 3344 5566 7788 99AA BBCC DDEE FF00",
        "Aisha Legal-Officer",
        "Page 1 of 2",
    ):
        assert expected in text, expected
    assert ITEMS[0].sha256 not in text  # the letter shows the start; the manifest has it all
    assert PROTECTED_TERM not in text
    assert sorted(os.listdir(tmp_path)) == ["transmittal-letter.pdf"]  # no temporary left


def test_letter_shows_titles_as_text_never_as_markup() -> None:
    title = """<b>Bold</b> & "quoted" 'x' </td></tr></table><script>alert(1)</script>"""
    items = [example_item(title=title, provider="Smith & <Sons>")]
    html = transmittal_letter_html(example_package(), items, TEMPLATES)
    assert "<b>Bold</b>" not in html and "<script>" not in html
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &#34;quoted&#34;" in html
    text = _text(transmittal_letter_pdf(example_package(), items, TEMPLATES))
    squeezed = "".join(text.split())  # the title wraps in its table cell
    assert "".join(title.split()) in squeezed
    assert "Smith & <Sons>" in text


def test_letter_content_is_reproducible_and_bytes_are_with_source_date_epoch() -> None:
    first = transmittal_letter_pdf(example_package(), ITEMS, TEMPLATES)
    second = transmittal_letter_pdf(example_package(), ITEMS, TEMPLATES)
    assert _text(first) == _text(second)
    # Only the font subsets' timestamps differ between runs (fontTools); SOURCE_DATE_EPOCH
    # fixes them, as for any reproducible build.
    script = (
        "import hashlib, sys;"
        "from portal.packages.assembly.documents import transmittal_letter_pdf;"
        "from tests.support.package_facts import example_package, example_item;"
        f"pdf = transmittal_letter_pdf(example_package(), [example_item()], {str(TEMPLATES)!r});"
        "sys.stdout.write(hashlib.sha256(pdf).hexdigest())"
    )
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1772616615", "PYTHONPATH": str(REPO_ROOT)}
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        ).stdout
        for _ in range(2)
    }
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_characters_the_fonts_lack_become_replacement_characters() -> None:
    """A missing glyph would print as a box and makes pdfminer drop the whole table row,
    which would blind the leak check; the manifest keeps the exact title."""
    items = [example_item(title="Statement 北京 \x07bell", provider="Provider Name")]
    letter = _text(transmittal_letter_pdf(example_package(), items, TEMPLATES))
    assert "Statement \N{REPLACEMENT CHARACTER}\N{REPLACEMENT CHARACTER} bell" in letter
    assert "Provider Name" in letter
    log = _text(custody_log_pdf(example_package(), items))
    assert "Statement \N{REPLACEMENT CHARACTER}\N{REPLACEMENT CHARACTER} bell" in log
    manifest = build_manifest(example_package(), items, [], example_records())
    assert parse_manifest(manifest_bytes(manifest))["items"][0]["title"] == items[0].title


def test_letter_refuses_a_missing_template_and_keeps_the_old_file(tmp_path: Path) -> None:
    dest = tmp_path / "transmittal-letter.pdf"
    dest.write_bytes(b"previous letter")
    with pytest.raises(DocumentError, match=r"transmittal_letter\.html not found"):
        render_transmittal_letter(example_package(), ITEMS, dest, templates_dir=tmp_path)
    assert dest.read_bytes() == b"previous letter"
    assert sorted(os.listdir(tmp_path)) == ["transmittal-letter.pdf"]


def test_naive_times_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    package = example_package(decided_at=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(DocumentError, match=r"package\.decided_at must be timezone-aware"):
        render_transmittal_letter(package, ITEMS, tmp_path / "letter.pdf")
    custody = (dataclasses.replace(ITEMS[0].custody[0], at=datetime(2026, 1, 1)),)
    items = [ITEMS[0], dataclasses.replace(ITEMS[1], custody=custody)]
    with pytest.raises(DocumentError, match=r"items\[1\]\.custody\[0\]\.at must be"):
        render_custody_log(example_package(), items, tmp_path / "log.pdf")
    assert os.listdir(tmp_path) == []


# -- custody and redaction log ----------------------------------------------------------------


def test_log_lists_custody_and_redactions_but_never_the_redacted_text(tmp_path: Path) -> None:
    dest = tmp_path / "custody-and-redaction-log.pdf"
    render_custody_log(example_package(), ITEMS, dest)

    pdf = dest.read_bytes()
    _assert_one_clean_revision(pdf, "Custody and redaction log PKG-2026-0001")
    text = _text(pdf)
    for expected in (
        "Custody and redaction log \N{EM DASH} PKG-2026-0001",
        "National War Crimes Unit (Netherlands) (NWU-NL)",
        "ITM-000001 \N{EM DASH} Witness statement no. 1 on the events at the northern checkpoint",
        "ITM-000002 \N{EM DASH} Witness statement no. 2",
        "collected",
        "Field team Lima",
        "checksum verified",
        "2025-02-07 09:30 UTC",
        REDACTION_REASON,
        "Home address of a victim",
        "term",
        "text_span",
        "None: shared without redaction.",
        "CON-0001 (item), granted 2026-02-22 09:30 UTC, expires 2027-03-04 09:30 UTC",
        ITEMS[0].sha256,
        ITEMS[0].source_sha256,
        "data/items/ITM-000001/statement.pdf",
        "Page 1 of 2",
    ):
        assert expected in text, expected
    counts = [cell for cell in extract_text(io.BytesIO(pdf)).split("\n") if cell.strip() == "3"]
    assert counts, "the number of redactions is shown"
    assert PROTECTED_TERM not in text
    assert sorted(os.listdir(tmp_path)) == ["custody-and-redaction-log.pdf"]


def test_log_is_reproducible_byte_for_byte() -> None:
    assert custody_log_pdf(example_package(), ITEMS) == custody_log_pdf(example_package(), ITEMS)
    changed = custody_log_pdf(example_package(code="PKG-2026-0002"), ITEMS)
    assert changed != custody_log_pdf(example_package(), ITEMS)


def test_long_logs_number_their_pages() -> None:
    items = [example_item(number) for number in range(1, 13)]
    pdf = custody_log_pdf(example_package(), items)
    pages = _pages(pdf)
    assert pages >= 3
    text = _text(pdf)
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "ITM-000012" in text


def test_log_shows_markup_characters_as_text() -> None:
    items = [example_item(title="<b>not bold</b> & <font size=40>x</font>", provider="A & B")]
    text = _text(custody_log_pdf(example_package(), items))
    assert "<b>not bold</b> & <font size=40>x</font>" in text
    assert "A & B" in text


def _chars(pdf: bytes) -> list[tuple[str, str, float, float]]:
    """Every character of the PDF's first page: (text, font, x0, x1), in points."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTContainer

    found: list[tuple[str, str, float, float]] = []

    def walk(node: object) -> None:
        if isinstance(node, LTChar):
            found.append((node.get_text(), node.fontname, node.x0, node.x1))
        elif isinstance(node, LTContainer):
            for child in node:
                walk(child)

    walk(next(iter(extract_pages(io.BytesIO(pdf)))))
    return found


def test_log_cells_wrap_long_text_inside_their_column_and_keep_fonts() -> None:
    """Cells that fit are drawn as plain strings, the others as wrapping paragraphs: both
    must stay inside the page's text area, keep their words, and use the cell's font."""
    detail = "checksum verified against the provider's manifest " * 6
    first = example_item(1)
    custody = (dataclasses.replace(first.custody[0], details=detail.strip()),)
    item = dataclasses.replace(first, custody=custody)
    pdf = custody_log_pdf(example_package(), [item])
    assert " ".join(detail.split()) in _text(pdf)
    chars = _chars(pdf)
    left, right = 18 * 72 / 25.4, (210 - 18) * 72 / 25.4  # the log's margins, A4
    assert all(left - 1 <= x0 and x1 <= right + 1 for _text, _font, x0, x1 in chars)
    fonts = {char[1].split("+")[-1] for char in chars}
    assert any("Mono" in font for font in fonts)  # digests and paths in the monospace font
    assert any("Bold" in font for font in fonts)  # labels and column heads in bold
    text = extract_text(io.BytesIO(pdf))  # the short cells of the row, drawn as strings
    assert "collected" in text and "Field team Lima" in text


def test_log_cells_set_text_as_a_paragraph_would() -> None:
    """What a plain string cell would show differently from a Paragraph goes to a Paragraph:
    a soft hyphen stays invisible where the line does not break, and runs of spaces or a
    no-break space are set as before."""
    first = example_item(1)
    by = "Field\N{SOFT HYPHEN}team Lima"
    custody = (dataclasses.replace(first.custody[0], by=by, details="two  spaces\xa0here"),)
    item = dataclasses.replace(first, custody=custody, provider="Syr\N{SOFT HYPHEN}ian Archive")
    raw = extract_text(io.BytesIO(custody_log_pdf(example_package(), [item])))
    assert "\N{SOFT HYPHEN}" not in raw
    assert "Fieldteam Lima" in raw and "Syrian Archive" in raw
    assert "two spaces" in " ".join(raw.split())


# -- recall notice ----------------------------------------------------------------------------


def test_recall_notice_asks_for_return_or_destruction_and_acknowledgement() -> None:
    text = recall_notice_text(
        package_code="PKG-2026-0001",
        authority_name="National War Crimes Unit (Netherlands)",
        reason="The provider revoked its consent for item ITM-000001.\n\nSecond line.  ",
        issued_at=datetime(2026, 5, 6, 7, 8, tzinfo=UTC),
    )
    assert text.startswith("RECALL NOTICE\n")
    assert "Package:   PKG-2026-0001\n" in text
    assert "To:        National War Crimes Unit (Netherlands)\n" in text
    assert "From:      The Mechanism\n" in text
    assert "Issued:    2026-05-06 07:08 UTC\n" in text
    assert "  The provider revoked its consent for item ITM-000001.\n\n  Second line.\n" in text
    assert "Return the package, or destroy every copy" in text
    assert "Acknowledge this notice in the Sharing Portal" in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert all(line == line.rstrip() for line in text.split("\n"))


def test_an_item_level_recall_notice_names_each_withdrawn_item_and_what_stays() -> None:
    item = NoticeItem(
        code="ITM-000007",
        title="Statement of a fictional trader",
        path="data/items/ITM-000007.pdf",
        sha256="ab" * 32,
    )
    text = recall_notice_text(
        package_code="PKG-2026-0001",
        authority_name="Northland War Crimes Unit",
        reason="The provider withdrew its consent.",
        issued_at=datetime(2026, 5, 6, 7, 8, tzinfo=UTC),
        package_sha256="cd" * 32,
        items=[item],
        kept=6,
    )
    assert f"Package SHA-256: {'cd' * 32}\n" in text
    assert "withdraws 1 item of package PKG-2026-0001," in text
    assert (
        "Withdrawn item: ITM-000007\n"
        "  Title:   Statement of a fictional trader\n"
        "  Path:    data/items/ITM-000007.pdf\n"
        f"  SHA-256: {'ab' * 32}\n"
    ) in text
    assert "The other 6 items of the package remain shareable under\nthe conditions" in text
    assert "Return or destroy every copy of the withdrawn items" in text
    assert "Return the package" not in text


@pytest.mark.parametrize(
    ("reason", "issued_at", "message"),
    [
        ("   \n ", datetime(2026, 5, 6, tzinfo=UTC), "needs a reason"),
        ("Consent revoked", datetime(2026, 5, 6), "issued_at must be timezone-aware"),
    ],
)
def test_recall_notice_refuses_bad_input(reason: str, issued_at: datetime, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        recall_notice_text(
            package_code="PKG-2026-0001", authority_name="NWU", reason=reason, issued_at=issued_at
        )


def test_recall_notice_survives_clearsigning_unchanged() -> None:
    """Clearsigned with the example signing key and read back by gpg, the text is the same,
    even with lines gpg must dash-escape and control characters in the reason."""
    text = recall_notice_text(
        package_code="PKG-2026-0001",
        authority_name="Northland War Crimes Unit",
        reason="Consent revoked.\n-----BEGIN PGP SIGNATURE-----\nnot a signature\x1b[31m",
        issued_at=datetime(2026, 5, 6, 7, 8, tzinfo=UTC),
        mechanism_name="the Example Mechanism",
    )
    assert "\x1b" not in text
    keys = REPO_ROOT / "keys_example"
    passphrase = (keys / "mechanism-signing.passphrase").read_text().strip()
    with temporary_keyring() as gpg:
        imported = gpg.import_keys((keys / "mechanism-signing.sec.asc").read_text())
        fingerprint = imported.fingerprints[0]
        signed = gpg.sign(
            text,
            keyid=fingerprint,
            passphrase=passphrase,
            clearsign=True,
            extra_args=["--pinentry-mode", "loopback"],
        )
        assert signed.status == "signature created", signed.stderr
        verified = gpg.verify(str(signed))
        assert verified.valid and verified.fingerprint == fingerprint
        recovered = gpg.decrypt(str(signed))
    assert recovered.data.decode("utf-8").replace("\r\n", "\n") == text


# -- any titles and names ---------------------------------------------------------------------

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")),
    min_size=1,
    max_size=60,
).filter(lambda value: value.strip() != "")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=names, provider=names, reason=names, authority=names)
def test_any_printable_titles_and_names_round_trip_and_render(
    title: str, provider: str, reason: str, authority: str
) -> None:
    first = example_item(title=title, provider=provider)
    summary = dataclasses.replace(first.redactions[0], reason=reason)
    item = dataclasses.replace(first, redactions=(summary,))
    package = example_package(authority_name=authority)
    manifest = build_manifest(package, [item], example_documents(), example_records())
    raw = manifest_bytes(manifest)
    parsed = parse_manifest(raw)
    assert parsed == manifest
    assert parsed["items"][0]["title"] == title
    assert parsed["items"][0]["provider"] == provider
    assert parsed["authority"]["name"] == authority
    assert hashlib.sha256(manifest_bytes(parsed)).digest() == hashlib.sha256(raw).digest()
    letter = transmittal_letter_pdf(package, [item], TEMPLATES)
    assert letter.startswith(b"%PDF-") and _pages(letter) >= 1
    log = custody_log_pdf(package, [item])
    assert log.startswith(b"%PDF-") and _pages(log) >= 1


def test_log_shows_each_mark_and_who_proposed_and_confirmed_it(tmp_path: Path) -> None:
    """Issue 20: mark by mark (where, how often, the two officers), custody with the source
    of each time; never the redacted text."""
    marks = (
        AppliedMark("MRK-0001", "pdf_box", "Face of a witness", 1, 2, (0.1, 0.2, 0.3, 0.4),
                    (), "Ines Proposer", "Omar Confirmer"),
        AppliedMark("PID-2026-00012", "term", PROTECTED_IDENTIFIER_REASON, 3, pages=((1, 3),)),
    )  # fmt: skip
    item = example_item(1, marks=marks)
    dest = tmp_path / "log.pdf"
    render_custody_log(example_package(), [item], dest)
    text = _text(dest.read_bytes())
    for expected in (
        "Marks applied",
        "MRK-0001",
        "page 2; box 0.100, 0.200, 0.300, 0.400",
        "Ines Proposer",
        "Omar Confirmer",
        "PID-2026-00012",
        "pages 1 (3)",
        "register",
        "portal clock (NTP-synchronised host)",
    ):
        assert expected in text, expected
    assert PROTECTED_TERM not in text
