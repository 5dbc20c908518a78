"""The leak check: real files (ReportLab PDFs, Pillow images, raw bytes) searched for
protected terms; hits name the file and the mark, never the term."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from PIL import Image
from PIL.ExifTags import GPS, IFD
from PIL.PngImagePlugin import PngInfo

from portal.redaction.leakcheck import (
    CHUNK_SIZE,
    LeakFound,
    LeakHit,
    LeakReport,
    StreamingCheck,
    check_files,
)
from portal.redaction.renditions import MarkSpec, redact
from tests.redaction.test_redaction import NAME, make_pdf, make_photo

TERMS = [("T1", NAME), ("T2", "Olive Street")]


def hits(report: LeakReport) -> set[tuple[str, str, str]]:
    return {(hit.path, hit.mark_code, hit.where) for hit in report.hits}


def test_term_in_compressed_pdf_text_is_found_by_text_extraction(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", [[(72, 700, "The witness ANNA  SMITH spoke.")]])
    assert b"SMITH" not in pdf.read_bytes()  # compressed: invisible to a raw search
    report = check_files([("data/items/ITM-1/a.pdf", pdf)], TERMS)
    assert ("data/items/ITM-1/a.pdf", "T1", "text") in hits(report)
    assert not report.clean


def test_a_box_drawn_over_text_is_caught(tmp_path: Path) -> None:
    from reportlab.pdfgen.canvas import Canvas

    leaky = tmp_path / "leaky.pdf"
    canvas = Canvas(str(leaky))
    canvas.drawString(72, 700, f"Witness: {NAME}")
    canvas.rect(60, 690, 300, 25, fill=1)  # "redacted" by drawing over it
    canvas.save()
    report = check_files([("data/leaky.pdf", leaky)], TERMS)
    assert ("data/leaky.pdf", "T1", "text") in hits(report)


def test_term_in_pdf_metadata_only(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "m.pdf", [[(72, 700, "nothing here")]], author=NAME)
    report = check_files([("m.pdf", pdf)], TERMS)
    assert ("m.pdf", "T1", "metadata") in hits(report)
    assert {hit.where for hit in report.hits} <= {"metadata", "bytes"}


def test_term_in_a_pdf_annotation_inside_a_compressed_stream(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "n.pdf", [[(72, 700, "nothing here")]], annotation=f"{NAME} phoned")
    report = check_files([("n.pdf", pdf)], TERMS)
    assert ("n.pdf", "T1", "bytes") in hits(report)


def test_term_in_image_exif_and_comments(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    report = check_files([("p.jpg", photo)], TERMS)
    assert ("p.jpg", "T1", "metadata") in hits(report)


def test_term_in_exif_as_utf16_xp_tag_and_gps_ifd(tmp_path: Path) -> None:
    image = Image.new("RGB", (20, 20), "white")
    exif = Image.Exif()
    exif[0x9C9C] = "Olive Street".encode("utf-16-le")  # XPComment
    exif.get_ifd(IFD.GPSInfo)[GPS.GPSAreaInformation] = b"ASCII\0\0\0" + NAME.encode()
    path = tmp_path / "xp.jpg"
    image.save(path, format="JPEG", exif=exif)
    report = check_files([("xp.jpg", path)], TERMS)
    assert {("xp.jpg", "T1", "metadata"), ("xp.jpg", "T2", "metadata")} <= hits(report)


def test_term_in_compressed_png_text_chunk(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("Description", f"photo of {NAME}", zip=True)
    path = tmp_path / "z.png"
    Image.new("RGB", (30, 30), "white").save(path, format="PNG", pnginfo=info)
    assert NAME.encode() not in path.read_bytes()
    report = check_files([("z.png", path)], TERMS)
    assert hits(report) == {("z.png", "T1", "metadata")}


def test_raw_bytes_of_an_unknown_file_with_other_case_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x00\x01binary OLIVE \r\n\t STREET\xff\xfe" + bytes(range(256)))
    report = check_files([("data/notes.bin", path)], TERMS)
    assert hits(report) == {("data/notes.bin", "T2", "bytes")}


def test_raw_bytes_in_utf16_and_cp1252(tmp_path: Path) -> None:
    wide = tmp_path / "wide.txt"
    wide.write_bytes("Zeuge: anna smith\n".encode("utf-16"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Zeugin ZOË ÄRGER".encode("cp1252"))
    report = check_files([("wide", wide), ("latin", latin)], [*TERMS, ("T3", "Zoë Ärger")])
    assert hits(report) == {("wide", "T1", "bytes"), ("latin", "T3", "bytes")}


@pytest.mark.parametrize("offset", [1, 3, 5, 9])
def test_term_across_a_chunk_boundary(tmp_path: Path, offset: int) -> None:
    path = tmp_path / "big.dat"
    text = b"Anna \n  Smith"
    filler = b"\x00" * (CHUNK_SIZE - offset)
    path.write_bytes(filler + text + b"\x00" * 100)
    report = check_files([("big.dat", path)], TERMS)
    assert hits(report) == {("big.dat", "T1", "bytes")}


def test_clean_renditions_pass(tmp_path: Path) -> None:
    text = tmp_path / "s.txt"
    text.write_text(f"{NAME} lives at 12 Olive Street.\n", encoding="utf-8")
    pdf = make_pdf(
        tmp_path / "s.pdf",
        [[(72, 700, f"{NAME} and Olive Street")]],
        title=NAME,
        annotation=NAME,
    )
    photo = make_photo(tmp_path / "p.jpg")
    marks = [
        MarkSpec("T1", "term", "witness", term=NAME),
        MarkSpec("T2", "term", "address", term="Olive Street"),
    ]
    out = tmp_path / "bag"
    redact(text, "text/plain", marks, out / "s.pdf")
    redact(pdf, "application/pdf", marks, out / "p.pdf")
    redact(
        photo, "image/jpeg", [MarkSpec("B", "image_box", "face", box=(0, 0, 1, 0.1))], out / "p.jpg"
    )
    files = [(f"data/{path.name}", path) for path in sorted(out.iterdir())]
    report = check_files(files, TERMS)
    assert report.clean, report.to_json()
    assert (report.files_checked, report.terms_checked) == (3, 2)
    # ... and the sources would not have passed.
    sources = check_files([("s.txt", text), ("s.pdf", pdf), ("p.jpg", photo)], TERMS)
    assert {hit.path for hit in sources.hits} == {"s.txt", "s.pdf", "p.jpg"}


def test_report_json_never_contains_a_term(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text(f"{NAME} at Olive Street", encoding="utf-8")
    report = check_files([("data/x.txt", path)], TERMS)
    assert report.hits == (
        LeakHit("data/x.txt", "T1", "bytes"),
        LeakHit("data/x.txt", "T2", "bytes"),
    )
    dumped = json.dumps(report.to_json())
    assert "Anna" not in dumped and "Olive" not in dumped
    assert report.to_json()["clean"] is False
    assert "Anna" not in repr(report)


@pytest.mark.parametrize("short", ["ab", "A  b", "\u200bx\u200b"])
def test_terms_too_short_to_search_are_refused(tmp_path: Path, short: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text("abc", encoding="utf-8")
    with pytest.raises(ValueError, match="mark T9") as refused:
        check_files([("x", path)], [("T1", NAME), ("T9", short)])
    assert short not in str(refused.value)


def test_damaged_or_missing_files_are_unchecked_not_clean(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", [[(72, 700, "hello")]])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(good.read_bytes()[:400])
    image = tmp_path / "broken.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    files = [
        ("broken.pdf", broken),
        ("broken.png", image),
        ("missing", tmp_path / "nope"),
        ("empty", empty),
    ]
    report = check_files(files, TERMS)
    assert not report.hits
    assert [path for path, _reason in report.unchecked] == ["broken.pdf", "broken.png", "missing"]
    assert not report.clean and report.files_checked == 4


def test_pixel_data_is_not_searched_as_text_but_trailing_bytes_are(tmp_path: Path) -> None:
    # A noisy photo whose compressed pixels happen to be random bytes: only the metadata
    # and whatever follows the image are searched, so short terms do not block everything.
    noisy = tmp_path / "noise.jpg"
    Image.effect_noise((1200, 1200), 120).convert("RGB").save(noisy, quality=95)
    report = check_files([("noise.jpg", noisy)], [("T1", "abc"), ("T2", "xyz")])
    assert report.clean
    with noisy.open("ab") as handle:
        handle.write(b"appended: " + NAME.encode())
    assert hits(check_files([("noise.jpg", noisy)], TERMS)) == {("noise.jpg", "T1", "bytes")}


def test_image_only_pdf_streams_are_not_searched_as_raw_bytes(tmp_path: Path) -> None:
    from portal.redaction.pdf import ImagePdfWriter

    path = tmp_path / "noise.pdf"
    with path.open("wb") as out:
        writer = ImagePdfWriter(out)
        for seed in (100, 120):
            writer.add_page(Image.effect_noise((1000, 1400), seed).convert("RGB"), 595, 842)
        writer.finish()
    short = [("T1", "abc"), ("T2", "xyz"), ("T3", "qrs"), ("T4", "def")]
    assert check_files([("noise.pdf", path)], short).clean
    with path.open("ab") as handle:  # something hidden after the end is still found
        handle.write(b"\n% Olive Street\n")
    report = check_files([("noise.pdf", path)], TERMS)
    assert hits(report) == {("noise.pdf", "T2", "bytes")}


def test_pdf_syntax_does_not_match_short_names(tmp_path: Path) -> None:
    # "/Annots", "/Type /Annot", "endobj", "startxref": PDF words, not a witness's name.
    pdf = make_pdf(tmp_path / "a.pdf", [[(72, 700, "hello")]], annotation="hello", compress=False)
    data = pdf.read_bytes()
    assert b"/Annots" in data and b"endobj" in data
    assert check_files([("a.pdf", pdf)], [("T1", "Ann"), ("T2", "Dobj"), ("T3", "tartx")]).clean
    leaky = make_pdf(tmp_path / "b.pdf", [[(72, 700, "Ann was here")]], compress=False)
    assert b"(Ann was here)" in leaky.read_bytes()
    assert hits(check_files([("b.pdf", leaky)], [("T1", "Ann")])) == {
        ("b.pdf", "T1", "bytes"),
        ("b.pdf", "T1", "text"),
    }


# --- the streaming form: prepared beforehand, raw bytes fed by the writer --------------------


def _stream(check: StreamingCheck, name: str, path: Path, chunk: int) -> None:
    """Feed the file as a writer would, in chunks of ``chunk`` bytes."""
    observer = check.observe(name)
    assert observer is not None
    data = path.read_bytes()
    for start in range(0, len(data), chunk):
        observer.feed(data[start : start + chunk])
    observer.close()


def _streamed(
    files: list[tuple[str, Path]], terms: list[tuple[str, str]], chunk: int
) -> LeakReport:
    check = StreamingCheck(terms)
    for name, path in files:
        check.prepare(name, path)
    for name, path in files:
        with contextlib.suppress(LeakFound):
            _stream(check, name, path, chunk)
    return check.report()


@pytest.mark.parametrize("chunk", [7, 4096, CHUNK_SIZE])
def test_streaming_finds_what_check_files_finds(tmp_path: Path, chunk: int) -> None:
    noisy = tmp_path / "noise.jpg"  # pixels skipped, the appended name found
    Image.effect_noise((600, 600), 120).convert("RGB").save(noisy, quality=95)
    with noisy.open("ab") as handle:
        handle.write(b"appended: " + NAME.encode())
    big = tmp_path / "big.dat"  # a name across a 1 MiB boundary
    big.write_bytes(b"\x00" * (CHUNK_SIZE - 3) + b"Olive \n Street" + b"\x00" * 10)
    files = [
        ("data/a.pdf", make_pdf(tmp_path / "a.pdf", [[(72, 700, f"The witness {NAME}")]])),
        ("data/noise.jpg", noisy),
        ("data/big.dat", big),
        ("data/clean.txt", _write(tmp_path / "clean.txt", b"nothing to see " * 1000)),
        ("data/b.pdf", make_pdf(tmp_path / "b.pdf", [[(72, 700, "Ann was here")]], compress=False)),
    ]
    terms = [*TERMS, ("T3", "Ann")]
    streamed = _streamed(files, terms, chunk)
    whole = check_files(files, terms)
    assert set(streamed.hits) == set(whole.hits)
    assert hits(streamed) >= {
        ("data/a.pdf", "T1", "text"),
        ("data/noise.jpg", "T1", "bytes"),
        ("data/big.dat", "T2", "bytes"),
        ("data/b.pdf", "T3", "bytes"),
    }
    assert (streamed.files_checked, streamed.terms_checked) == (5, 3)


def test_a_streamed_hit_stops_the_writer_at_the_end_of_that_file(tmp_path: Path) -> None:
    leaky = _write(tmp_path / "v.mp4", b"ftyp caption: " + NAME.upper().encode())
    check = StreamingCheck(TERMS)
    check.prepare("data/v.mp4", leaky)
    assert check.report().clean  # nothing found before the bytes are seen
    with pytest.raises(LeakFound) as found:
        _stream(check, "data/v.mp4", leaky, 5)
    assert found.value.path == "data/v.mp4"
    assert NAME.lower() not in str(found.value).lower()
    assert hits(check.report()) == {("data/v.mp4", "T1", "bytes")}


def test_streaming_without_terms_checks_nothing_and_says_so(tmp_path: Path) -> None:
    check = StreamingCheck([])
    check.prepare("data/x.bin", _write(tmp_path / "x.bin", NAME.encode()))
    assert check.observe("data/x.bin") is None
    report = check.report()
    assert report.clean and (report.files_checked, report.terms_checked) == (0, 0)


def test_streaming_refuses_what_was_not_prepared_and_lists_unreadable_files(
    tmp_path: Path,
) -> None:
    broken = _write(tmp_path / "broken.pdf", b"%PDF-1.7\n" + b"garbage " * 50)
    check = StreamingCheck(TERMS)
    check.prepare("data/broken.pdf", broken)
    report = check.report()
    assert not report.clean and [path for path, _ in report.unchecked] == ["data/broken.pdf"]
    with pytest.raises(ValueError, match="not prepared"):
        check.observe("data/other.bin")
    with pytest.raises(ValueError, match="T9"):
        StreamingCheck([("T9", "a b")])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
