"""Names in pixels, with real Tesseract: scanned PDF pages and photos whose names exist only
as pixels (Latin, Arabic; Burmese measured) are found with OCR, burnt black, and read again
by the leak check's ``pixels`` layer; OCR that cannot read or cannot be trusted never passes
silently; readings are cached, sealed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from portal.redaction.leakcheck import PixelReading, check_files
from portal.redaction.matcher import Matcher
from portal.redaction.ocr import OcrCache, OcrFailed, Reading, Word, read_image, scripts_of
from portal.redaction.renditions import CannotRedact, MarkSpec, redact
from portal.sealing import Sealer

NOTO = Path("/usr/share/fonts/truetype/noto")
LATIN = "Mya Sandar Oo"
ARABIC = "علي حسن"
BURMESE = "မြသန္တာဦး"
Box = tuple[int, int, int, int]


def _font(script: str, size: int = 40) -> ImageFont.FreeTypeFont:
    name = {
        "latin": "NotoSans-Regular.ttf",
        "arabic": "NotoNaskhArabic-Regular.ttf",
        "burmese": "NotoSansMyanmar-Regular.ttf",
    }[script]
    return ImageFont.truetype(str(NOTO / name), size)


def scan(
    lines: list[tuple[str, str]], size: tuple[int, int] = (1400, 900)
) -> tuple[Image.Image, dict[str, Box]]:
    """A page image with one (script, text) per line, as a scanner would give it; the box of
    each line's last words, by the text drawn."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    boxes: dict[str, Box] = {}
    y = 80
    for script, text in lines:
        font = _font(script)
        if script == "arabic":
            draw.text((size[0] - 80, y), text, font=font, fill=0, anchor="ra")
            box = draw.textbbox((size[0] - 80, y), text, font=font, anchor="ra")
        else:
            draw.text((80, y), text, font=font, fill=0)
            box = draw.textbbox((80, y), text, font=font)
        boxes[text] = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
        y += 90
    return image, boxes


def _name_box(image: Image.Image, line: str, name: str, script: str) -> Box:
    """Where ``name`` is drawn within ``line`` (a Latin line starting at x = 80)."""
    draw = ImageDraw.Draw(image)
    font = _font(script)
    start = line.index(name)
    left = 80 + int(draw.textlength(line[:start], font=font))
    right = 80 + int(draw.textlength(line[: start + len(name)], font=font))
    return left, 0, right, 0


def _dark(image: Image.Image, box: Box) -> bool:
    """Whether the area is burnt: at least 70% black (the white label takes the rest)."""
    area = image.convert("L").crop(box)
    black = sum(area.histogram()[:60])
    return black >= 0.7 * area.width * area.height


def _term(code: str, text: str) -> MarkSpec:
    return MarkSpec(code, "term", "Identifies a witness", term=text)


def _ocr_text(image: Image.Image, terms: list[str]) -> str:
    return read_image(image, scripts_of(terms)).text


def _pdf_pages(path: Path) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(str(path))
    try:
        return [
            document[i].render(scale=200 / 72).to_pil().convert("L") for i in range(len(document))
        ]
    finally:
        document.close()


STATEMENT = [
    ("latin", "Statement taken on 3 March by the team."),
    ("latin", f"The witness {LATIN} saw the convoy."),
    ("arabic", f"قال الشاهد {ARABIC} إنه رأى القافلة"),
    ("latin", "Nothing else was said."),
]


def test_a_scanned_statement_is_found_burnt_and_read_again(tmp_path: Path) -> None:
    page, boxes = scan(STATEMENT)
    source = tmp_path / "scan.pdf"
    page.save(source, format="PDF", resolution=200)  # an image-only page, no text layer
    dest = tmp_path / "out.pdf"
    outcome = redact(source, "application/pdf", [_term("T1", LATIN), _term("T2", ARABIC)], dest)
    applied = {mark.code: (mark.occurrences, mark.pages) for mark in outcome.applied}
    assert applied == {"T1": (1, ((1, 1),)), "T2": (1, ((1, 1),))}
    [shown] = _pdf_pages(dest)
    text = _ocr_text(shown, [LATIN, ARABIC])
    assert not Matcher([("T1", LATIN), ("T2", ARABIC)]).codes_in_text(text)
    assert "convoy" in text  # the rest stays readable
    scale = shown.width / page.width
    line = STATEMENT[1][1]
    left, _, right, _ = _name_box(page, line, LATIN, "latin")
    top, bottom = boxes[line][1], boxes[line][3]
    burnt = tuple(round(v * scale) for v in (left + 4, top + 4, right - 4, bottom - 4))
    assert _dark(shown, burnt)  # type: ignore[arg-type]
    # The leak check reads the pixels again: the source is caught, the rendition is clean.
    terms = [("T1", LATIN), ("T2", ARABIC)]
    caught = check_files([("scan.pdf", source)], terms, pixels=PixelReading())
    assert {(hit.mark_code, hit.where) for hit in caught.hits} == {
        ("T1", "pixels, page 1"),
        ("T2", "pixels, page 1"),
    }
    assert check_files([("out.pdf", dest)], terms, pixels=PixelReading()).clean
    # Without the pixels layer the scan looks clean: that layer is what finds it.
    assert check_files([("scan.pdf", source)], terms).clean


def test_a_photo_of_a_sign_with_a_term_mark_is_burnt(tmp_path: Path) -> None:
    photo = Image.new("RGB", (1000, 400), (90, 120, 160))
    sign = ImageDraw.Draw(photo)
    sign.rectangle((60, 100, 940, 300), fill=(245, 245, 235))
    line = f"Shop of {LATIN}"
    sign.text((80, 170), line, font=_font("latin", 48), fill=(20, 20, 20))
    source = tmp_path / "sign.jpg"
    photo.save(source, format="JPEG", quality=92)
    dest = tmp_path / "out.jpg"
    outcome = redact(source, "image/jpeg", [_term("T1", LATIN)], dest)
    assert [(mark.code, mark.occurrences) for mark in outcome.applied] == [("T1", 1)]
    assert outcome.protected_terms == (("T1", LATIN),)
    with Image.open(dest) as shown:
        text = _ocr_text(shown, [LATIN])
        assert "Shop" in text
        assert not Matcher([("T1", LATIN)]).codes_in_text(text)
        draw = ImageDraw.Draw(shown)
        font = _font("latin", 48)
        left = 80 + int(draw.textlength("Shop of ", font=font))
        right = 80 + int(draw.textlength(line, font=font))
        assert _dark(shown, (left + 4, 180, right - 4, 215))
    report = check_files(
        [("sign.jpg", source), ("out.jpg", dest)], [("T1", LATIN)], pixels=PixelReading()
    )
    assert [(hit.path, hit.where) for hit in report.hits] == [("sign.jpg", "pixels")]


def test_pages_without_images_are_not_read_with_ocr(tmp_path: Path) -> None:
    """A page of text only is searched in its text layer; OCR reads pages showing images."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "mixed.pdf"
    page, _ = scan([("latin", f"Seen by {LATIN}.")], size=(1200, 300))
    picture = tmp_path / "p.png"
    page.save(picture)
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 700, "A typed page with nothing to hide.")
    pdf.showPage()
    pdf.drawString(72, 750, "Page two shows a scanned note:")
    pdf.drawImage(str(picture), 72, 500, width=432, height=108)
    pdf.showPage()
    pdf.save()
    report = check_files([("mixed.pdf", path)], [("T1", LATIN)], pixels=PixelReading())
    assert [(hit.mark_code, hit.where) for hit in report.hits] == [("T1", "pixels, page 2")]


def test_burmese_in_pixels_is_found_or_flagged_never_passed_silently(tmp_path: Path) -> None:
    """Burmese is read line by line. A clear line is found; a line Tesseract is not sure of
    makes the file unchecked (a person reads it), whatever the result."""
    page, _ = scan([("burmese", f"ဒေါ် {BURMESE} ပြောသည်")], size=(1200, 250))
    path = tmp_path / "burmese.png"
    page.save(path)
    report = check_files([("burmese.png", path)], [("T1", BURMESE)], pixels=PixelReading())
    assert not report.clean
    assert report.hits or "OCR cannot be trusted" in report.unchecked[0][1]


def test_a_doubtful_reading_makes_the_file_unchecked(tmp_path: Path) -> None:
    """Tiny, faint Burmese: Tesseract reads it with low confidence, if at all."""
    page = Image.new("L", (900, 120), 255)
    ImageDraw.Draw(page).text((10, 40), f"{BURMESE} {BURMESE}", font=_font("burmese", 14), fill=150)
    path = tmp_path / "faint.png"
    page.save(path)
    report = check_files([("faint.png", path)], [("T1", BURMESE)], pixels=PixelReading())
    assert not report.clean


def test_english_writing_is_not_doubtful_burmese() -> None:
    """The Myanmar model reads an English line as low-confidence Burmese-looking letters; a
    line the English pass read confidently is not doubtful. Blurred Burmese writing is."""
    title = [("latin", "Medical certificate concerning Witness V-07")]
    page, _ = scan([*title, ("latin", "Examined on 21 September 2023 by the duty physician.")])
    assert not read_image(page, scripts_of([BURMESE])).doubtful
    blurred = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(blurred).text((10, 50), "ရန်ကုန်မြို့တွင် မိုးရွာသည်", font=_font("burmese", 30), fill=0)
    assert read_image(blurred.filter(ImageFilter.GaussianBlur(3)), scripts_of([BURMESE])).doubtful


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_images_beyond_the_limits_are_refused_with_the_reason(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    Image.new("1", (20_000, 20_000), 1).save(huge)  # 400 megapixels, a few kilobytes
    broken = tmp_path / "broken.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buffer, format="JPEG")
    broken.write_bytes(buffer.getvalue()[:600])
    report = check_files(
        [("huge.png", huge), ("broken.jpg", broken)], [("T1", LATIN)], pixels=PixelReading()
    )
    reasons = dict(report.unchecked)
    assert "huge.png" in reasons  # refused before any decoding (metadata or pixels)
    assert "broken.jpg" in reasons
    with pytest.raises(OcrFailed, match="pixels"):
        read_image(Image.new("1", (10_000, 10_000)), scripts_of([LATIN]))


def test_readings_are_cached_sealed(tmp_path: Path) -> None:
    """A whole scanned page (a reading far longer than one sealed value) is cached sealed, in
    pieces bound to their place: served from the cache, not read again; a damaged or reordered
    entry is read again."""
    page, _ = scan(
        [("latin", f"Line {n}: the witness {LATIN} spoke of the convoy.") for n in range(9)],
        size=(1400, 900),
    )
    sealer = Sealer.random()
    cache = OcrCache(tmp_path / "cache", sealer)
    first = read_image(page, scripts_of([LATIN]), cache=cache)
    [entry] = (tmp_path / "cache").rglob("*.json")
    stored = entry.read_text()
    assert len(first.text) > 400 and "Sandar" not in stored  # no word of evidence in the clear
    pieces = json.loads(stored)
    assert len(pieces) > 1  # longer than one sealed value
    cached = read_image(page, scripts_of([LATIN]), cache=cache)
    assert cached.text == first.text
    fake = '{"words": [["cached", [0, 0, 1, 1], 99, [1, 1, 1]]], "doubtful": []}'
    entry.write_text(json.dumps([sealer.seal(fake, f"ocr:{entry.stem}:0/1")]))
    assert read_image(page, scripts_of([LATIN]), cache=cache).text == "cached"  # not read again
    entry.write_text(json.dumps(list(reversed(pieces))))  # pieces out of place do not open
    assert read_image(page, scripts_of([LATIN]), cache=cache).text == first.text
    entry.write_text("damaged")
    assert read_image(page, scripts_of([LATIN]), cache=cache).text == first.text


def test_every_word_a_hit_touches_is_burnt_whole() -> None:
    """OCR may split or join a name's words; the hit's words are covered, per line, padded."""
    words = (
        Word("Mya", (10, 10, 60, 40), 90, (1, 1, 1)),
        Word("Sandar", (70, 10, 160, 40), 90, (1, 1, 1)),
        Word("Oo,", (10, 60, 50, 90), 90, (1, 1, 2)),
        Word("spoke", (60, 60, 140, 90), 90, (1, 1, 2)),
    )
    reading = Reading(words)
    assert reading.text == "Mya Sandar\nOo, spoke"
    from portal.redaction.ocr import boxes_of_hits

    boxes = boxes_of_hits(reading, Matcher([("T1", LATIN)]).locate)
    assert boxes == [("T1", (3, 3, 167, 47)), ("T1", (3, 53, 57, 97))]  # padded by 30 // 4


def test_ocr_of_one_item_has_a_time_budget(tmp_path: Path) -> None:
    """A scan that would keep a worker busy past the item's OCR budget is refused with the
    reason, by redaction and by the leak check (a budget of 0 s: spent before page 1)."""
    from portal.redaction.pdf import redact_pdf

    page, _ = scan([("latin", f"The witness {LATIN} spoke.")], size=(1200, 300))
    source = tmp_path / "scan.pdf"
    page.save(source, format="PDF", resolution=200)
    dest = tmp_path / "out.pdf"
    with pytest.raises(CannotRedact, match="more than 0 minutes before page 1"):
        redact_pdf(source, [_term("T1", LATIN)], dest, "REDACTED", ocr_seconds=0)
    assert not dest.exists()
    report = check_files(
        [("scan.pdf", source)], [("T1", LATIN)], pixels=PixelReading(item_seconds=0)
    )
    assert "more than 0 minutes" in dict(report.unchecked)["scan.pdf"]
    assert check_files([("scan.pdf", source)], [("T1", LATIN)], pixels=PixelReading()).hits


def test_a_photo_of_a_street_is_not_doubtful_for_burmese(tmp_path: Path) -> None:
    """Textures (walls, figures, a street) read as Burmese give short fragments of low
    confidence; they are not writing, so they make no page doubtful (every photo would wait
    for a person whenever a Burmese identifier is withheld)."""
    from datetime import UTC, datetime

    from portal.demo.files import PhotoSpec, jpeg_photo

    taken = datetime(2024, 3, 1, tzinfo=UTC)
    for seed in range(3):
        photo = jpeg_photo(PhotoSpec("Street", seed, 16.8, 96.1, taken))
        path = tmp_path / f"street-{seed}.jpg"
        path.write_bytes(photo.data)
        report = check_files([(path.name, path)], [("T1", BURMESE)], pixels=PixelReading())
        assert report.clean, report.unchecked
