"""Readable in every script: text renditions and portal documents in Arabic and Burmese,
typeset by the real WeasyPrint in the fonts of portal.documents.fonts, then read back
with pdfminer.six (text, layout, every glyph drawn) and fontTools. Fictional text only.

"No glyph is missing" is checked two ways: WeasyPrint reports no ``.notdef`` glyph while
rendering, and the installed font files of the faces embedded in the PDF have every
character shown. (The embedded subsets' own cmaps cannot tell: a joined Arabic letter is
drawn with a contextual glyph that no cmap entry names.)
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from fontTools.ttLib import TTFont
from pdfminer.converter import PDFPageAggregator
from pdfminer.high_level import extract_pages, extract_text
from pdfminer.layout import LAParams, LTTextLine
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage

from portal.db import utcnow
from portal.documents.fonts import (
    MONO,
    PDF_FONTS,
    SANS,
    FontsMissing,
    FontStack,
    PdfFonts,
    coverage,
    locate,
    reportlab_fonts,
)
from portal.documents.text_layer import FONT_NAME
from portal.packages.assembly.documents import transmittal_letter_html, transmittal_letter_pdf
from portal.redaction import typeset
from portal.redaction.leakcheck import check_files
from portal.redaction.normalise import to_zawgyi, zawgyi_as_unicode
from portal.redaction.renditions import CannotRedact, MarkSpec, RedactionOutcome, fold, redact
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import csrf_token, login, make_user
from tests.support.package_facts import example_item, example_package

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

ARABIC_NAME = "سلمى يوسف النجار"
ARABIC = (
    "إفادة الشاهدة رقم ٤\n"
    "في صباح يوم الثلاثاء وصلت سيارتان إلى نقطة التفتيش قرب السوق.\n"
    "قال الضابط إن الطريق مغلق حتى المساء.\n"
    "\n"
    "كَتَبَتِ الشَّاهِدَةُ هٰذِهِ الجُمْلَةَ بِالحَرَكَاتِ، ثم وقّعت في ١٢:٣٠.\n"
    f"رأت الشاهدة {ARABIC_NAME} عند باب المخبز.\n"
)
BURMESE_NAME = "ခင်မြင့်ထွေး"
BURMESE = (
    "သက်သေထွက်ဆိုချက် အမှတ် ၇\n"
    "အင်္ဂါနေ့ နံနက်တွင် ကားနှစ်စီး စစ်ဆေးရေးဂိတ်သို့ ရောက်ရှိလာသည်။\n"
    f"ဒေါ်{BURMESE_NAME} သည် ဈေးအနီးတွင် ရှိနေသည်။\n"
    "ညနေအထိ လမ်းပိတ်ထားသည်ဟု အရာရှိက ပြောသည်။\n"
)
BURMESE_REFERENCE = "စုံစမ်းရေး-၂၀၂၆/၁၁၇"  # a request reference written in Burmese
A4_WIDTH, MARGIN = 595.2756, 50.0


# --- reading PDFs back ---------------------------------------------------------------------


@dataclass(frozen=True)
class Glyph:
    family: str  # the embedded face's family, e.g. "Noto Naskh Arabic"
    gid: int  # glyph id (WeasyPrint keeps the font file's ids in its subsets)
    x: float  # origin on the baseline, in PDF points
    y: float


def _family(fontname: Any) -> str:
    """ "ABCDEF+Noto-Naskh-Arabic-Bold" -> "Noto Naskh Arabic" (the regular face's name)."""
    name = fontname.decode() if isinstance(fontname, bytes) else str(fontname)
    words = name.split("+", 1)[-1].split("-")
    while words[-1] in ("Bold", "Italic", "Oblique", "BoldItalic", "BoldOblique"):
        words.pop()
    return " ".join(words)


class _GlyphRecorder(PDFPageAggregator):
    def __init__(self, resources: PDFResourceManager) -> None:
        super().__init__(resources, laparams=LAParams())
        self.glyphs: list[Glyph] = []

    def render_char(self, matrix: Any, font: Any, fontsize: float, *args: Any) -> float:
        self.glyphs.append(Glyph(_family(font.fontname), args[2], matrix[4], matrix[5]))
        width: float = super().render_char(matrix, font, fontsize, *args)
        return width


def drawn_glyphs(pdf: bytes) -> list[Glyph]:
    """Every glyph the pages draw, the invisible text layer left out."""
    resources = PDFResourceManager()
    recorder = _GlyphRecorder(resources)
    interpreter = PDFPageInterpreter(resources, recorder)
    for page in PDFPage.get_pages(io.BytesIO(pdf)):
        interpreter.process_page(page)
    return [glyph for glyph in recorder.glyphs if glyph.family != FONT_NAME]


def shown_characters(text: str) -> set[str]:
    return {char for char in text if not char.isspace() and char.isprintable()}


def assert_every_character_has_a_glyph(pdf: bytes, text: str, caplog: Any) -> None:
    """No .notdef was drawn, and the embedded faces' font files have every character."""
    notdef = [record for record in caplog.records if ".notdef" in record.getMessage()]
    assert not notdef, [record.getMessage() for record in notdef]
    families = {glyph.family for glyph in drawn_glyphs(pdf)}
    faces = tuple(face for face in {*SANS.faces, *MONO.faces} if face.family in families)
    assert {face.family for face in faces} == families  # every face is one of ours
    covered = coverage(FontStack(faces, "sans-serif"))
    missing = {char for char in shown_characters(text) if ord(char) not in covered}
    assert not missing, sorted(missing)


def squeezed(text: str) -> str:
    return "".join(text.split())


def inflated(data: bytes) -> bytes:
    parts = [data]
    for match in re.finditer(rb"stream\r?\n", data):
        try:
            parts.append(zlib.decompressobj().decompress(data[match.end() :]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def text_lines(pdf: Path) -> Iterator[LTTextLine]:
    def walk(item: Any) -> Iterator[LTTextLine]:
        if isinstance(item, LTTextLine):
            yield item
        elif hasattr(item, "__iter__"):
            for child in item:
                yield from walk(child)

    for page in extract_pages(str(pdf)):
        yield from walk(page)


def rendition(
    tmp_path: Path, text: str, marks: list[MarkSpec], caplog: Any
) -> tuple[Path, RedactionOutcome]:
    source = tmp_path / "statement.txt"
    source.write_text(text, encoding="utf-8")
    dest = tmp_path / "statement.pdf"
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        outcome = redact(source, "text/plain", marks, dest)
    return dest, outcome


def term(code: str, text: str) -> MarkSpec:
    return MarkSpec(code=code, kind="term", reason="protects a witness", term=text)


# --- text renditions ---------------------------------------------------------------------


@pytest.mark.parametrize("text", [ARABIC, BURMESE], ids=["arabic", "burmese"])
def test_every_character_of_the_statement_shows_and_reads_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    dest, outcome = rendition(tmp_path, text, [], caplog)
    assert outcome.media_type == "application/pdf"
    assert squeezed(extract_text(str(dest))) == squeezed(text)  # logical order, all of it
    assert_every_character_has_a_glyph(dest.read_bytes(), text, caplog)
    data = dest.read_bytes()
    assert data.count(b"%%EOF") == 1 and b"/Prev" not in data
    for forbidden in (b"/Info", b"/Metadata", b"/Annots", b"/Title", b"/Producer"):
        assert forbidden not in inflated(data), forbidden


def test_a_zawgyi_statement_is_shown_in_unicode_and_its_name_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    zawgyi = to_zawgyi(BURMESE)
    assert zawgyi is not None and zawgyi != BURMESE
    dest, outcome = rendition(tmp_path, zawgyi, [term("T1", BURMESE_NAME)], caplog)
    assert [(m.code, m.occurrences) for m in outcome.applied] == [("T1", 1)]
    # What the reader sees is the converter's Unicode (its round trip is not always exact
    # letter for letter), never the Zawgyi code points, and the name is gone.
    shown_text = zawgyi_as_unicode(zawgyi)
    assert shown_text != zawgyi and "REDACTED" in extract_text(str(dest))
    kept = squeezed(extract_text(str(dest))).split("REDACTED")
    assert len(kept) == 2 and all(part and part in squeezed(shown_text) for part in kept)
    assert_every_character_has_a_glyph(dest.read_bytes(), "".join(kept), caplog)
    assert check_files([("data/statement.pdf", dest)], outcome.protected_terms).clean


def test_arabic_runs_right_to_left_and_burmese_stays_left_to_right(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest, _ = rendition(tmp_path, ARABIC + "Latin line.\n" + BURMESE, [], caplog)
    baselines: dict[float, list[float]] = {}
    for glyph in drawn_glyphs(dest.read_bytes()):
        baselines.setdefault(round(glyph.y, 1), []).append(glyph.x)
    lines = [baselines[y] for y in sorted(baselines, reverse=True)]  # top to bottom
    assert len(lines) == 5 + 1 + 4
    title, latin, burmese = lines[0], lines[5], lines[6]  # "إفادة الشاهدة رقم ٤" is short
    assert min(title) > MARGIN + 300 and max(title) > A4_WIDTH - MARGIN - 15  # at the right
    assert min(latin) == pytest.approx(MARGIN, abs=0.5)
    assert min(burmese) == pytest.approx(MARGIN, abs=0.5)


def _nominal(family: str, char: str) -> int:
    """The glyph id the face's cmap gives ``char`` (before any shaping)."""
    face = next(face for face in SANS.faces if face.family == family)
    font = TTFont(str(locate([face])[face]))
    return int(font.getGlyphID(font.getBestCmap()[ord(char)]))


def test_arabic_letters_join_and_burmese_vowels_are_reordered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest, _ = rendition(tmp_path, "بببب لا\nကေ\n", [], caplog)
    glyphs = drawn_glyphs(dest.read_bytes())
    naskh = "Noto Naskh Arabic"
    space = _nominal(naskh, " ")
    arabic = sorted((g for g in glyphs if g.family == naskh and g.gid != space), key=lambda g: g.x)
    lam_alef = arabic[:-4]
    beh_word = arabic[-4:]  # right to left: the first word is drawn rightmost
    # Four behs joined: initial, medial and final forms, none isolated.
    assert len({glyph.gid for glyph in beh_word}) >= 3
    assert _nominal(naskh, "\u0628") not in {glyph.gid for glyph in beh_word}
    # Lam and alef in their required ligature forms, not their own.
    assert len(lam_alef) in (1, 2)
    assert {g.gid for g in lam_alef}.isdisjoint({_nominal(naskh, c) for c in "\u0644\u0627"})
    burmese = [g for g in glyphs if g.family == "Noto Sans Myanmar"]
    ka = next(g for g in burmese if g.gid == _nominal("Noto Sans Myanmar", "\u1000"))
    vowel_e = next(g for g in burmese if g.gid != ka.gid)
    assert vowel_e.x < ka.x  # typed after the consonant, shown before it


@pytest.mark.parametrize(
    ("text", "name"), [(ARABIC, ARABIC_NAME), (BURMESE, BURMESE_NAME)], ids=["arabic", "burmese"]
)
def test_a_protected_name_inside_arabic_or_burmese_text_is_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, name: str
) -> None:
    dest, outcome = rendition(tmp_path, text, [term("T1", name)], caplog)
    assert [(m.code, m.occurrences) for m in outcome.applied] == [("T1", 1)]
    extracted = extract_text(str(dest))
    assert fold(name) not in fold(extracted)
    assert extracted.count("REDACTED") == 1
    assert squeezed(extracted) == squeezed(text.replace(name, "REDACTED"))
    data = inflated(dest.read_bytes())
    for encoded in (name.encode("utf-8"), name.encode("utf-16-be"), name.encode("utf-16-le")):
        assert encoded not in data
    assert check_files([("data/statement.pdf", dest)], outcome.protected_terms).clean
    kept = text.replace(name, "")
    assert_every_character_has_a_glyph(dest.read_bytes(), kept, caplog)


def test_every_box_has_the_same_width_whatever_it_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "Ann met Maximiliana Montgomery-Wolfenstein and سلمى يوسف النجار.\n"
    marks = [term("T1", "Ann"), term("T2", "Maximiliana Montgomery-Wolfenstein")]
    dest, _ = rendition(tmp_path, text, [*marks, term("T3", ARABIC_NAME)], caplog)
    pages = list(extract_pages(str(dest)))
    boxes = [item for item in pages[0] if type(item).__name__ in ("LTRect", "LTCurve")]
    assert len(boxes) == 3
    assert max(box.width for box in boxes) - min(box.width for box in boxes) < 0.01


def test_a_character_no_installed_font_has_is_refused_with_its_name(tmp_path: Path) -> None:
    source = tmp_path / "s.txt"
    source.write_text("Statement of the witness 北 in the village.\n", encoding="utf-8")
    with pytest.raises(CannotRedact, match=r"U\+5317 CJK UNIFIED IDEOGRAPH-5317"):
        redact(source, "text/plain", [], tmp_path / "s.pdf")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.txt"]


def test_a_character_only_in_a_removed_name_does_not_refuse_the_text(tmp_path: Path) -> None:
    source = tmp_path / "s.txt"
    source.write_text("The witness Li 北京 was there.\n", encoding="utf-8")
    outcome = redact(source, "text/plain", [term("T1", "Li 北京")], tmp_path / "s.pdf")
    assert outcome.applied[0].occurrences == 1


def test_a_long_text_is_typeset_in_parts_and_joined_into_one_pdf(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(typeset, "CHUNK_CHARACTERS", 400)
    lines = [
        f"{n:03d} " + (BURMESE.splitlines()[1] if n % 2 else "Line of Anna Smith")
        for n in range(40)
    ]
    text = "\n".join(lines) + "\n"
    dest, outcome = rendition(tmp_path, text, [term("T1", "Anna Smith")], caplog)
    assert outcome.applied[0].occurrences == 20
    data = dest.read_bytes()
    assert data.count(b"%%EOF") == 1 and b"/Prev" not in data
    for forbidden in (b"/Info", b"/Metadata", b"/Annots", b"/Producer"):
        assert forbidden not in inflated(data), forbidden
    assert len(list(PDFPage.get_pages(io.BytesIO(data)))) >= 4  # a page per part at least
    assert squeezed(extract_text(str(dest))) == squeezed(text.replace("Anna Smith", "REDACTED"))


# --- the fonts module ----------------------------------------------------------------------


def test_missing_fonts_are_an_error_naming_the_debian_packages(tmp_path: Path) -> None:
    with pytest.raises(FontsMissing, match="fonts-dejavu-core fonts-noto-core") as raised:
        locate(SANS.faces, [tmp_path])
    assert "Noto Sans Myanmar (NotoSansMyanmar-Regular.ttf)" in str(raised.value)
    with pytest.raises(FontsMissing, match="fonts-noto-core"):
        _ = PdfFonts([tmp_path]).sans
    with pytest.raises(FontsMissing, match=r"^fonts missing .* fonts-dejavu-core \("):
        reportlab_fonts([tmp_path])


def test_the_stacks_put_each_script_in_its_face() -> None:
    css = str(PDF_FONTS.sans)
    order = [css.index(f'"{family}"') for family in ("Noto Sans", "Noto Naskh Arabic")]
    assert order == sorted(order) and css.endswith("sans-serif")
    # DejaVu has part of Arabic: it comes after the Arabic faces, or letters would mix fonts.
    assert css.index('"DejaVu Sans"') > css.index('"Noto Sans Arabic"')
    assert str(PDF_FONTS.mono).startswith('"DejaVu Sans Mono"')


# --- portal documents ------------------------------------------------------------------------


def test_the_letter_shows_a_burmese_request_reference(caplog: pytest.LogCaptureFixture) -> None:
    package = example_package(authority_reference=BURMESE_REFERENCE)
    items = [example_item(title=f"ထွက်ဆိုချက် {ARABIC_NAME[:4]} statement")]
    html = transmittal_letter_html(package, items, Path("templates"))
    assert BURMESE_REFERENCE in html and "\N{REPLACEMENT CHARACTER}" not in html
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = transmittal_letter_pdf(package, items, Path("templates"))
    assert_every_character_has_a_glyph(pdf, BURMESE_REFERENCE + items[0].title, caplog)
    assert "Noto Sans Myanmar" in {glyph.family for glyph in drawn_glyphs(pdf)}


def test_the_decision_pdf_shows_a_burmese_authority_name(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    name = "စုံစမ်းစစ်ဆေးရေးဌာန"  # fictional authority
    with portal_state(app).sessions() as session:
        authority = make.authority(session, "MMR-T", name=name)
        make.assessments(session, authority, now=utcnow())
        provider = make.provider(session, "PRV-M", name="Provider M", public_name="NGO M")
        item = make.item(session, provider)
        make.consent(session, provider, authority, item=item, at=utcnow() - timedelta(days=30))
        rfa = make.rfa(session, authority, status="in_review", items=[item])
        session.commit()
        rfa_id = rfa.id
        officer = make_user(session, "legal_officer")
    client = app.test_client()
    login(client, officer)
    page = client.get(f"/eligibility/requests/{rfa_id}")
    response = client.post(
        f"/eligibility/requests/{rfa_id}/check", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 303
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = client.get(response.headers["Location"] + ".pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert_every_character_has_a_glyph(pdf.get_data(), name, caplog)
    assert "Noto Sans Myanmar" in {glyph.family for glyph in drawn_glyphs(pdf.get_data())}


def test_the_acknowledgement_shows_a_burmese_request_reference(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with portal_state(app).sessions() as session:
        authority = make.authority(session, "MMR-R")
        rfa = make.rfa(session, authority, their_reference=BURMESE_REFERENCE)
        session.commit()
        code = rfa.code
        requester = make_user(session, "requester", authority_code="MMR-R")
    client = app.test_client()
    login(client, requester)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        response = client.get(f"/requests/{code}/acknowledgement.pdf")
    assert response.status_code == 200
    assert_every_character_has_a_glyph(response.get_data(), BURMESE_REFERENCE, caplog)
    assert "Noto Sans Myanmar" in {glyph.family for glyph in drawn_glyphs(response.get_data())}
