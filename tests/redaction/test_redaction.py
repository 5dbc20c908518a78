"""True redaction of text, PDFs and images: real files made here, real renderers, real
parsers reading the results (pdfminer.six, pypdfium2, Pillow)."""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import pypdfium2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdfminer.high_level import extract_text
from PIL import Image, ImageStat
from PIL.ExifTags import GPS, IFD, Base
from reportlab.pdfgen.canvas import Canvas

from portal.redaction.leakcheck import check_files
from portal.redaction.matcher import Matcher
from portal.redaction.renditions import CannotRedact, MarkSpec, RedactionOutcome, fold, redact

A4 = (595.0, 842.0)
NAME = "Anna Smith"


# --- makers (also used by tests/redaction/test_leakcheck.py) ---------------------------


def make_pdf(
    path: Path,
    pages: list[list[tuple[float, float, str]]],
    *,
    title: str = "",
    author: str = "",
    annotation: str | None = None,
    password: str | None = None,
    compress: bool = True,
) -> Path:
    """A ReportLab PDF; every page is a list of (x, y, text) drawn in Helvetica 14."""
    kwargs: dict[str, object] = {"pagesize": A4, "pageCompression": int(compress)}
    if password is not None:
        from reportlab.lib.pdfencrypt import StandardEncryption

        kwargs["encrypt"] = StandardEncryption(password, canPrint=1)
    canvas = Canvas(str(path), **kwargs)
    canvas.setTitle(title)
    canvas.setAuthor(author)
    for number, page in enumerate(pages):
        canvas.setFont("Helvetica", 14)
        for x, y, text in page:
            canvas.drawString(x, y, text)
        if annotation is not None and number == 0:
            canvas.textAnnotation(annotation, Rect=(300, 300, 400, 400))
        canvas.showPage()
    canvas.save()
    return path


def text_box(x: float, y: float, text: str) -> tuple[float, float, float, float]:
    """The box (PDF points, origin bottom left) of Helvetica 14 text drawn at x, y."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return x, y - 3, x + stringWidth(text, "Helvetica", 14), y + 10


def render(pdf: Path, page: int = 0, dpi: int = 72) -> Image.Image:
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        return document[page].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        document.close()


def _region(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    left, bottom, right, top = box
    height = image.height
    return image.crop((int(left), int(height - top), int(right), int(height - bottom)))


def darkness(image: Image.Image, box: tuple[float, float, float, float]) -> float:
    """Mean grey level (0 black .. 255 white) inside a box given in points (bottom left
    origin) on an image rendered at 72 dpi."""
    return float(ImageStat.Stat(_region(image, box)).mean[0])


def blacked_out(image: Image.Image, box: tuple[float, float, float, float]) -> bool:
    """At least 85 % of the box is black (a white one-letter label covers the rest)."""
    histogram = _region(image, box).histogram()
    return sum(histogram[:60]) >= 0.85 * sum(histogram)


def inflated(data: bytes) -> bytes:
    """The file's bytes with every Flate stream decompressed (where the text would be)."""
    parts = [data]
    for match in re.finditer(rb"stream\r?\n", data):
        try:
            parts.append(zlib.decompressobj().decompress(data[match.end() :]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def assert_single_revision_image_pdf(pdf: Path) -> None:
    data = pdf.read_bytes()
    assert data.count(b"%%EOF") == 1
    for forbidden in (
        b"/Info",
        b"/Prev",
        b"/Metadata",
        b"/Annots",
        b"/JavaScript",
        b"/JS",
        b"/EmbeddedFile",
        b"/OpenAction",
        b"/AcroForm",
        b"/Font",
    ):
        assert forbidden not in data, forbidden
    assert extract_text(str(pdf)).strip() == ""
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        for page in document:
            assert page.get_textpage().count_chars() == 0
        assert not any(document.get_metadata_dict().values())
    finally:
        document.close()


def make_photo(path: Path, *, orientation: int = 6, gps: bool = True) -> Path:
    """A 200 x 100 JPEG (as stored): left half red, right half blue, with EXIF orientation,
    camera owner and GPS position. Orientation 6 shows it rotated 90 degrees clockwise:
    100 wide, 200 high, red on top."""
    image = Image.new("RGB", (200, 100), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[Base.Orientation] = orientation
    exif[Base.Artist] = NAME
    if gps:
        exif.get_ifd(IFD.GPSInfo).update(
            {
                GPS.GPSLatitudeRef: "N",
                GPS.GPSLatitude: (33.0, 30.0, 0.0),
                GPS.GPSLongitudeRef: "E",
                GPS.GPSLongitude: (36.0, 18.0, 0.0),
            }
        )
    image.save(path, format="JPEG", quality=95, exif=exif, comment=NAME.encode())
    return path


def term(code: str, text: str) -> MarkSpec:
    return MarkSpec(code=code, kind="term", reason="protects a witness", term=text)


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- plain text --------------------------------------------------------------------------------


def test_text_terms_are_removed_everywhere_before_rendering(tmp_path: Path) -> None:
    source = tmp_path / "statement.txt"
    source.write_text(
        "Statement of Anna Smith.\n"
        "ANNA   SMITH was at the market; anna\nsmith then left.\n"
        "Her brother (not protected) stayed with annasmith's cousin.\n",
        encoding="utf-8",
    )
    dest = tmp_path / "out" / "statement.pdf"
    outcome = redact(source, "text/plain", [term("T1", NAME)], dest)

    assert outcome.media_type == "application/pdf" and outcome.suffix == ".pdf"
    assert [(m.code, m.occurrences) for m in outcome.applied] == [("T1", 4)]
    assert outcome.protected_terms == (("T1", NAME),)
    text = extract_text(str(dest))
    assert "annasmith" not in fold(text)
    assert text.count("REDACTED") == 4
    assert "Her brother (not protected) stayed with" in text
    assert b"smith" not in inflated(dest.read_bytes()).lower()
    assert check_files([("data/statement.pdf", dest)], outcome.protected_terms).clean


def test_text_rendition_names_nothing_and_has_one_revision(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("Nothing to hide here.\n", encoding="utf-8")
    dest = tmp_path / "a.pdf"
    redact(source, "text/plain", [], dest)
    data = dest.read_bytes()
    assert data.count(b"%%EOF") == 1 and b"/Prev" not in data
    document = pypdfium2.PdfDocument(str(dest))
    try:
        assert not any(document.get_metadata_dict().values())
    finally:
        document.close()
    # No document information dictionary at all (nor XMP), in any object or stream.
    assert b"/Info" not in inflated(data) and b"/Metadata" not in inflated(data)
    assert "Nothing to hide here." in extract_text(str(dest))


def test_text_spans_are_removed_and_become_protected_terms(tmp_path: Path) -> None:
    text = "The witness lives at 12 Olive Street, Aleppo. Age: 34.\n"
    source = tmp_path / "s.txt"
    source.write_text(text, encoding="utf-8")
    street = (text.index("12 Olive"), text.index(", Aleppo"))
    age = (text.index("34"), text.index("34") + 2)
    marks = [
        MarkSpec("S1", "text_span", "address", span=street),
        MarkSpec("S2", "text_span", "age", span=age),
    ]
    dest = tmp_path / "s.pdf"
    outcome = redact(source, "text/plain", marks, dest)
    extracted = extract_text(str(dest))
    assert "Olive" not in extracted and "34" not in extracted
    assert "Aleppo" in extracted
    # The age is too short to search for (it would match everywhere): removed, not listed.
    assert outcome.protected_terms == (("S1", "12 Olive Street"),)
    assert [m.occurrences for m in outcome.applied] == [1, 1]


def test_unicode_terms_match_composed_decomposed_and_other_case(tmp_path: Path) -> None:
    source = tmp_path / "u.txt"
    # "Zoë Ärger" written decomposed and upper case, and once with a zero-width space.
    source.write_text(
        "Zeugin: ZOE\u0308 A\u0308RGER.\nNochmals Zoë\u200b Ärger.\nStraße bleibt.\n",
        encoding="utf-8",
    )
    dest = tmp_path / "u.pdf"
    outcome = redact(source, "text/plain", [term("T1", "Zoë Ärger")], dest)
    assert outcome.applied[0].occurrences == 2
    extracted = extract_text(str(dest))
    assert "rger" not in extracted.lower()
    assert "Straße bleibt." in extracted


def test_long_lines_wrap_and_long_texts_get_many_pages(tmp_path: Path) -> None:
    words = " ".join(f"word{i}" for i in range(400))
    unbroken = "x" * 500
    lines = [f"line {i}: {NAME} said something" for i in range(300)]
    source = tmp_path / "long.txt"
    source.write_text("\n".join([words, unbroken, *lines]) + "\n", encoding="utf-8")
    dest = tmp_path / "long.pdf"
    outcome = redact(source, "text/plain", [term("T1", NAME)], dest)
    assert outcome.applied[0].occurrences == 300
    document = pypdfium2.PdfDocument(str(dest))
    try:
        assert len(document) >= 5
        for page in document:
            width, _height = page.get_size()
            textpage = page.get_textpage()
            for index in range(textpage.count_chars()):
                left, _bottom, right, _top = textpage.get_charbox(index)
                assert left >= 0 and right <= width  # nothing runs off the page
    finally:
        document.close()
    extracted = fold(extract_text(str(dest)))
    assert all(f"word{i}" in extracted for i in (0, 199, 399))
    assert "x" * 500 in extracted
    assert "line299" in extracted and "annasmith" not in extracted


def test_a_term_formed_anew_next_to_a_label_is_removed_too(tmp_path: Path) -> None:
    # Removing "Anna" leaves "REDACTED" + "xyz": that would show the term "dxyz".
    source = tmp_path / "t.txt"
    source.write_text("Annaxyz met someone.\n", encoding="utf-8")
    dest = tmp_path / "t.pdf"
    redact(source, "text/plain", [term("T1", "Anna"), term("T2", "dxyz")], dest)
    extracted = fold(extract_text(str(dest)))
    assert "dxyz" not in extracted and "xyz" not in extracted
    assert "metsomeone" in extracted


def test_a_term_inside_the_label_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "t.txt"
    source.write_text("Anna was redacted.\n", encoding="utf-8")
    with pytest.raises(CannotRedact, match="T2"):
        redact(source, "text/plain", [term("T1", "Anna"), term("T2", "dacte")], tmp_path / "o.pdf")
    assert leftovers(tmp_path) == ["t.txt"]


@pytest.mark.parametrize(
    ("content", "marks", "reason"),
    [
        ("Anna Smith".encode("utf-16"), [], "not valid UTF-8"),
        (b"caf\xe9 Anna", [], "not valid UTF-8"),
        (b"", [], "empty"),
        (b"Anna", [term("T1", "An")], "at least 3"),
        (b"Anna", [term("T1", " \n ")], "at least 3"),
        (b"Anna", [MarkSpec("S1", "text_span", "r", span=(2, 9))], "not inside the text"),
        (b"Anna", [MarkSpec("S1", "text_span", "r", span=(3, 3))], "not inside the text"),
        (b"Anna", [MarkSpec("B1", "pdf_box", "r", page=1, box=(0, 0, 1, 1))], "pdf box"),
        (b"Anna", [MarkSpec("B1", "image_box", "r", box=(0, 0, 1, 1))], "image box"),
        (b"Anna", [term("T1", "Anna"), term("T1", "Smith")], "share one code"),
    ],
)
def test_bad_text_input_is_refused_and_leaves_nothing(
    tmp_path: Path, content: bytes, marks: list[MarkSpec], reason: str
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(content)
    dest = tmp_path / "out.pdf"
    with pytest.raises(CannotRedact, match=reason):
        redact(source, "text/plain", marks, dest)
    assert leftovers(tmp_path) == ["in.txt"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x17F), max_size=80),
    after=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x17F), max_size=80),
    name=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x17F), min_size=3, max_size=12
    ).filter(lambda value: len(fold(value)) >= 3),
    newline=st.booleans(),
)
def test_property_the_term_never_survives_in_the_text(
    tmp_path_factory: pytest.TempPathFactory, before: str, after: str, name: str, newline: bool
) -> None:
    directory = tmp_path_factory.mktemp("prop")
    middle = name[: len(name) // 2] + ("\n" if newline else " ") + name[len(name) // 2 :]
    source = directory / "p.txt"
    source.write_text(before + middle.upper() + after, encoding="utf-8")
    dest = directory / "p.pdf"
    try:
        redact(source, "text/plain", [term("T1", name)], dest)
    except CannotRedact as refused:
        # Only possible when the term is part of the label itself, as the matcher reads it
        # (it folds accents and drops control characters: "\x7fÀC" is in "REDACTED").
        assert Matcher([("T1", name)]).codes_in_text("REDACTED" * 2), refused.reason
        return
    assert fold(name) not in fold(extract_text(str(dest)))


# --- PDFs ---------------------------------------------------------------------------------------


def test_pdf_terms_are_burnt_in_and_no_text_layer_is_left(tmp_path: Path) -> None:
    line = f"The witness {NAME} saw it."
    source = make_pdf(
        tmp_path / "src.pdf",
        [[(72, 700, line), (72, 600, "ANNA"), (72, 582, "smith, again")]],
        title=f"Interview with {NAME}",
        author=NAME,
        annotation=f"Note: call {NAME}",
    )
    dest = tmp_path / "red.pdf"
    # A one-letter label keeps the box almost all black, so pixels can be tested.
    outcome = redact(source, "application/pdf", [term("T1", "anna  smith")], dest, label="X")

    assert outcome.media_type == "application/pdf"
    assert [(m.code, m.occurrences) for m in outcome.applied] == [("T1", 2)]
    assert_single_revision_image_pdf(dest)
    image = render(dest)
    from reportlab.pdfbase.pdfmetrics import stringWidth

    name_x = 72 + stringWidth("The witness ", "Helvetica", 14)
    name_box = (name_x + 1, 699, name_x + stringWidth(NAME, "Helvetica", 14) - 1, 709)
    assert blacked_out(image, name_box)
    # Across the line break too ("ANNA" / "smith"), and not the words around it.
    anna = stringWidth("ANNA", "Helvetica", 14)
    smith = stringWidth("smith", "Helvetica", 14)
    assert blacked_out(image, (73, 600, 72 + anna - 1, 609))
    assert blacked_out(image, (73, 582, 72 + smith - 1, 591))
    assert not blacked_out(image, (73, 699, 72 + stringWidth("The", "Helvetica", 14), 709))
    assert check_files([("data/red.pdf", dest)], outcome.protected_terms).clean


def test_pdf_box_on_page_two_blacks_out_only_that_region(tmp_path: Path) -> None:
    pages = [[(72, 700, f"page {n}")] for n in (1, 2, 3)]
    source = make_pdf(tmp_path / "three.pdf", pages)
    box = (0.5, 0.25, 0.9, 0.5)  # fractions, origin top left
    mark = MarkSpec("B1", "pdf_box", "face of a witness", page=2, box=box)
    dest = tmp_path / "three-red.pdf"
    outcome = redact(source, "application/pdf", [mark], dest)
    assert [m.occurrences for m in outcome.applied] == [1]
    assert_single_revision_image_pdf(dest)
    # (0.5 .. 0.9) x (0.25 .. 0.5) from the top = points 297.5..535.5 x 421..631.5
    inside = (300, 425, 530, 628)
    for page, expected_dark in ((0, False), (1, True), (2, False)):
        level = darkness(render(dest, page), inside)
        assert (level < 20) is expected_dark, (page, level)
    outside = (60, 690, 200, 720)
    assert darkness(render(dest, 1), outside) > 150  # the page's own text is still there
    assert darkness(render(dest, 1), (60, 100, 290, 400)) > 250


def test_pdf_resolution_is_configurable(tmp_path: Path) -> None:
    from portal.redaction.pdf import redact_pdf

    source = make_pdf(tmp_path / "s.pdf", [[(72, 700, "hello")]])
    redact_pdf(source, [], tmp_path / "72.pdf", "REDACTED", dpi=72)
    redact_pdf(source, [], tmp_path / "200.pdf", "REDACTED", dpi=200)
    sizes = {}
    for name in ("72", "200"):
        match = re.search(rb"/Width (\d+) /Height (\d+)", (tmp_path / f"{name}.pdf").read_bytes())
        assert match is not None
        sizes[name] = (int(match[1]), int(match[2]))
    assert sizes == {"72": (595, 842), "200": (1653, 2339)}
    document = pypdfium2.PdfDocument(str(tmp_path / "200.pdf"))
    try:
        assert document[0].get_size() == pytest.approx(A4, abs=0.5)
    finally:
        document.close()


def test_pdf_rotated_page_gets_the_box_where_the_term_is_shown(tmp_path: Path) -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    source = make_pdf(tmp_path / "r.pdf", [[(72, 700, f"Witness {NAME}")]])
    document = pypdfium2.PdfDocument(str(source))
    document[0].set_rotation(90)
    document.save(str(tmp_path / "rotated.pdf"))
    document.close()
    dest = tmp_path / "rotated-red.pdf"
    redact(tmp_path / "rotated.pdf", "application/pdf", [term("T1", NAME)], dest, label="X")
    shown = render(tmp_path / "rotated.pdf")
    redacted = render(dest)
    assert redacted.size == shown.size == (842, 595)
    # Rotated 90 degrees clockwise, a point (x, y) of the page is shown at (y, x) from the
    # top left; the name runs downwards from x = 72 + width("Witness ").
    start = 72 + stringWidth("Witness ", "Helvetica", 14)
    end = start + stringWidth(NAME, "Helvetica", 14)
    name_region = (700, 595 - end + 1, 709, 595 - start - 1)  # (left, bottom, right, top)
    word_region = (700, 595 - start + 8, 709, 595 - 73)
    assert darkness(shown, name_region) > 150  # glyphs on white in the source
    assert blacked_out(redacted, name_region)
    assert not blacked_out(redacted, word_region)


@pytest.mark.parametrize(
    ("make", "marks", "reason"),
    [
        ("truncated", [], "not a PDF or is damaged"),
        ("garbage", [], "not a PDF or is damaged"),
        ("empty", [], "empty"),
        ("encrypted", [], "password"),
        ("good", [MarkSpec("S1", "text_span", "r", span=(0, 4))], "text span"),
        ("good", [MarkSpec("B1", "image_box", "r", box=(0, 0, 1, 1))], "image box"),
        ("good", [MarkSpec("B1", "pdf_box", "r", page=4, box=(0, 0, 1, 1))], "page 4"),
        ("good", [MarkSpec("B1", "pdf_box", "r", page=1, box=(0.5, 0, 0.2, 1))], "box"),
        ("good", [term("T1", "ab")], "at least 3"),
    ],
)
def test_hostile_or_wrong_pdf_input_is_refused_and_leaves_nothing(
    tmp_path: Path, make: str, marks: list[MarkSpec], reason: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "in.pdf"
    good = make_pdf(tmp_path / "good.pdf", [[(72, 700, NAME)]] * 3)
    if make == "truncated":
        source.write_bytes(good.read_bytes()[:900])
    elif make == "garbage":
        source.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    elif make == "empty":
        source.write_bytes(b"")
    elif make == "encrypted":
        make_pdf(source, [[(72, 700, NAME)]], password="s3cret")
    else:
        source.write_bytes(good.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CannotRedact, match=reason):
        redact(source, "application/pdf", marks, out / "red.pdf")
    assert leftovers(out) == []


# --- images -------------------------------------------------------------------------------------


def test_exif_rotated_jpeg_gets_the_box_in_place_and_loses_exif_and_gps(tmp_path: Path) -> None:
    source = make_photo(tmp_path / "photo.jpg")
    with Image.open(source) as original:
        assert original.getexif()[Base.Orientation] == 6
        assert original.size == (200, 100)
    # Shown upright the photo is 100 x 200, red on top; black out the top-left quarter.
    mark = MarkSpec("B1", "image_box", "face", box=(0.0, 0.0, 0.5, 0.25))
    dest = tmp_path / "photo-red.jpg"
    outcome = redact(source, "image/jpeg", [mark], dest)
    assert (outcome.media_type, outcome.suffix) == ("image/jpeg", ".jpg")
    assert outcome.protected_terms == ()
    with Image.open(dest) as result:
        assert result.format == "JPEG"
        assert result.size == (100, 200)
        assert not result.getexif()
        assert {"exif", "comment", "icc_profile", "xmp"}.isdisjoint(result.info)
        pixels = result.convert("RGB")
        assert max(pixels.getpixel((20, 20))) < 30  # in the box: black
        red = pixels.getpixel((80, 80))  # top half, outside the box: still red
        assert red[0] > 200 and red[2] < 60
        blue = pixels.getpixel((50, 180))  # bottom half: blue
        assert blue[2] > 200 and blue[0] < 60
    data = dest.read_bytes()
    assert b"Exif" not in data and NAME.encode() not in data
    assert check_files([("data/photo.jpg", dest)], [("T1", NAME)]).clean


def test_png_loses_text_chunks_and_hidden_colours(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGBA", (50, 40), (10, 200, 10, 255))
    image.putpixel((49, 39), (255, 0, 0, 0))  # invisible, but red underneath
    info = PngInfo()
    info.add_text("Author", NAME)
    info.add_text("Comment", f"witness {NAME}", zip=True)
    source = tmp_path / "p.png"
    image.save(source, format="PNG", pnginfo=info)
    dest = tmp_path / "p-red.png"
    mark = MarkSpec("B1", "image_box", "tattoo", box=(0.0, 0.0, 0.2, 0.25))
    outcome = redact(source, "image/png", [mark], dest)
    assert (outcome.media_type, outcome.suffix) == ("image/png", ".png")
    with Image.open(dest) as result:
        result.load()
        assert result.format == "PNG" and result.mode == "RGBA"
        assert not result.text and not result.getexif()
        assert result.getpixel((2, 2)) == (0, 0, 0, 255)
        assert result.getpixel((30, 30)) == (10, 200, 10, 255)
        assert result.getpixel((49, 39)) == (0, 0, 0, 0)
    assert check_files([("data/p.png", dest)], [("T1", NAME)]).clean


@pytest.mark.parametrize(
    ("media_type", "make", "marks", "reason"),
    [
        ("image/png", "png", [MarkSpec("S1", "text_span", "r", span=(0, 3))], "text span"),
        ("image/jpeg", "photo", [MarkSpec("B1", "pdf_box", "r", page=1, box=(0, 0, 1, 1))], "pdf"),
        ("image/jpeg", "text", [], "cannot be read"),
        ("image/png", "truncated-png", [], "cannot be read"),
        ("image/jpeg", "truncated-jpeg", [], "cannot be read"),
        ("image/jpeg", "png", [], "PNG, not image/jpeg"),
        ("image/png", "empty", [], "empty"),
        ("image/png", "huge", [], "pixels"),
        ("video/mp4", "photo", [], "cannot redact video/mp4"),
        ("application/zip", "photo", [], "withhold the item"),
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # refused anyway
def test_hostile_or_wrong_image_input_is_refused_and_leaves_nothing(
    tmp_path: Path, media_type: str, make: str, marks: list[MarkSpec], reason: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = folder / "source"
    if make == "photo":
        make_photo(source)
    elif make == "text":
        source.write_text("not an image at all", encoding="utf-8")
    elif make in ("png", "truncated-png"):
        buffer = io.BytesIO()
        Image.effect_noise((300, 300), 50).save(buffer, format="PNG")
        data = buffer.getvalue()
        source.write_bytes(data if make == "png" else data[: len(data) // 2])
    elif make == "truncated-jpeg":
        source.write_bytes(make_photo(tmp_path / "full.jpg").read_bytes()[:1500])
    elif make == "empty":
        source.write_bytes(b"")
    elif make == "huge":  # 100 megapixels, a few kilobytes on disk
        Image.new("1", (10_000, 10_000)).save(source, format="PNG")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CannotRedact, match=reason):
        redact(source, media_type, marks, out / "r")
    assert leftovers(out) == []


def test_outcome_lists_every_mark_even_those_that_found_nothing(tmp_path: Path) -> None:
    source = make_pdf(tmp_path / "s.pdf", [[(72, 700, "nothing relevant")]])
    outcome = redact(
        source,
        "application/pdf",
        [term("T1", NAME), MarkSpec("B1", "pdf_box", "r", page=1, box=(0, 0, 0.1, 0.1))],
        tmp_path / "o.pdf",
    )
    assert isinstance(outcome, RedactionOutcome)
    assert [(m.code, m.kind, m.occurrences) for m in outcome.applied] == [
        ("T1", "term", 0),
        ("B1", "pdf_box", 1),
    ]


def test_a_failed_redaction_leaves_no_stale_rendition_either(tmp_path: Path) -> None:
    source = tmp_path / "s.txt"
    source.write_bytes(b"\xff\xfe not utf-8")
    dest = tmp_path / "out.pdf"
    dest.write_bytes(b"an earlier, unrelated rendition")
    with pytest.raises(CannotRedact):
        redact(source, "text/plain", [], dest)
    assert leftovers(tmp_path) == ["s.txt"]


@pytest.mark.parametrize(
    ("mode", "fmt", "media_type"),
    [
        ("CMYK", "JPEG", "image/jpeg"),
        ("L", "JPEG", "image/jpeg"),
        ("I;16", "PNG", "image/png"),
        ("P", "PNG", "image/png"),
        ("1", "PNG", "image/png"),
        ("LA", "PNG", "image/png"),
    ],
)
def test_image_modes_are_kept_plain_and_boxes_black(
    tmp_path: Path, mode: str, fmt: str, media_type: str
) -> None:
    source = tmp_path / "in"
    light = {"I;16": 50_000, "1": 1, "CMYK": (0, 0, 0, 40), "P": 7, "LA": (200, 255)}
    image = Image.new(mode, (40, 40), light.get(mode, 200))
    if mode == "P":
        image.putpalette([200, 200, 200] * 256)
    image.save(source, format=fmt)
    dest = tmp_path / "out"
    mark = MarkSpec("B1", "image_box", "r", box=(0.0, 0.0, 0.5, 0.5))
    redact(source, media_type, [mark], dest)
    with Image.open(dest) as result:
        assert result.format == fmt
        assert result.mode in ("L", "RGB", "RGBA")
        grey = result.convert("L")
        assert grey.getpixel((5, 5)) < 30
        assert grey.getpixel((35, 35)) > 150


def test_media_type_parameters_are_ignored_and_the_label_shows_in_big_boxes(
    tmp_path: Path,
) -> None:
    source = tmp_path / "p.png"
    Image.new("RGB", (400, 200), "white").save(source)
    dest = tmp_path / "r.png"
    redact(
        source,
        "IMAGE/PNG; foo=bar",
        [MarkSpec("B1", "image_box", "r", box=(0.1, 0.1, 0.9, 0.9))],
        dest,
    )
    with Image.open(dest) as result:
        grey = result.convert("L")
        inside = grey.crop((45, 25, 355, 175))
        histogram = inside.histogram()
        assert sum(histogram[200:]) > 0  # white label letters
        assert sum(histogram[:30]) > 0.6 * sum(histogram)


def test_scanned_page_with_invisible_ocr_text_is_blacked_out_where_the_scan_shows_it(
    tmp_path: Path,
) -> None:
    from PIL import ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase.pdfmetrics import stringWidth

    # The "scan": a page-sized picture with the name as pixels at (72, 700) in points.
    scan = Image.new("L", (595, 842), 255)
    width = stringWidth(NAME, "Helvetica", 14)
    ImageDraw.Draw(scan).rectangle((72, 842 - 712, 72 + width, 842 - 698), fill=90)
    source = tmp_path / "scan.pdf"
    canvas = Canvas(str(source), pagesize=A4)
    canvas.drawImage(ImageReader(scan), 0, 0, width=595, height=842)
    ocr = canvas.beginText(72, 700)
    ocr.setTextRenderMode(3)  # invisible, as OCR layers are
    ocr.setFont("Helvetica", 14)
    ocr.textLine(NAME)
    canvas.drawText(ocr)
    canvas.showPage()
    canvas.save()
    assert darkness(render(source), (73, 699, 72 + width - 1, 711)) < 120  # the scan shows it

    dest = tmp_path / "scan-red.pdf"
    outcome = redact(source, "application/pdf", [term("T1", NAME)], dest, label="X")
    assert outcome.applied[0].occurrences == 1
    assert blacked_out(render(dest), (73, 699, 72 + width - 1, 711))
    assert_single_revision_image_pdf(dest)


def test_a_truncated_image_is_refused_even_after_weasyprint_allowed_truncated_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES process-wide when imported."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    buffer = io.BytesIO()
    Image.effect_noise((300, 300), 50).save(buffer, format="PNG")
    source = tmp_path / "truncated.png"
    source.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    dest = tmp_path / "out.png"
    with pytest.raises(CannotRedact, match="cannot be read"):
        redact(source, "image/png", [], dest)
    assert not dest.exists()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the setting is left as it was
