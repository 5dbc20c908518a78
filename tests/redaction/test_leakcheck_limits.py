"""The leak check never passes what it could not look at: text in an encoding it cannot
read, the parts of ZIP containers (DOCX, ODT) beyond their limits, PDF streams that
decompress beyond theirs. Names are fictional."""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from portal.redaction.leakcheck import LeakFound, LeakReport, StreamingCheck, check_files
from tests.redaction.test_matching_in_files import ARABIC
from tests.redaction.test_redaction import NAME

TERMS = [("T1", NAME), ("T2", ARABIC)]


def _hits(report: LeakReport) -> set[tuple[str, str]]:
    return {(hit.path, hit.mark_code) for hit in report.hits}


def _streamed(name: str, path: Path) -> LeakReport:
    check = StreamingCheck(TERMS)
    check.prepare(name, path)
    observer = check.observe(name)
    assert observer is not None
    with contextlib.suppress(LeakFound):
        observer.feed(path.read_bytes())
        observer.close()
    return check.report()


def _assert_unchecked(report: LeakReport, name: str, reason: str) -> None:
    assert not report.clean
    assert [path for path, _ in report.unchecked] == [name]
    assert reason in report.unchecked[0][1]
    assert NAME not in str(report.to_json()) and ARABIC not in str(report.to_json())


# --- 1. text the portal cannot decode -----------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp1256", "iso8859_6"])
def test_text_in_an_encoding_the_portal_cannot_read_is_not_clean(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "statement.txt"
    path.write_bytes(f"Statement of {ARABIC}, witness.\n".encode(encoding))
    for report in (check_files([("data/s.txt", path)], TERMS), _streamed("data/s.txt", path)):
        _assert_unchecked(report, "data/s.txt", "text in an encoding the portal cannot read")


def test_readable_text_and_binary_files_are_checked_as_before(tmp_path: Path) -> None:
    utf8 = tmp_path / "a.txt"
    utf8.write_bytes(f"Statement of {ARABIC}.\n".encode())
    utf16 = tmp_path / "b.txt"
    utf16.write_bytes(f"Statement of {NAME}.\n".encode("utf-16"))
    binary = tmp_path / "c.bin"
    binary.write_bytes(b"\x00\x01\xff\xfe\x80 caption " + NAME.encode() + bytes(range(256)))
    clean = tmp_path / "d.txt"
    clean.write_bytes("Nothing here, صباح الخير.\n".encode())
    files = [("a", utf8), ("b", utf16), ("c", binary), ("d", clean)]
    report = check_files(files, TERMS)
    assert report.unchecked == ()
    assert _hits(report) == {("a", "T2"), ("b", "T1"), ("c", "T1")}


# --- 2. ZIP containers: DOCX, ODT, zip ----------------------------------------------------

_DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p>{runs}</w:p></w:body></w:document>"
)
_CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    "<cp:coreProperties "
    'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{creator}</dc:creator>'
    "</cp:coreProperties>"
)


def _runs(text: str) -> str:
    """Word splits text into runs wherever the formatting or the revision changes."""
    return "".join(f'<w:r><w:t xml:space="preserve">{part}</w:t></w:r>' for part in text)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _docx(path: Path, body: str, creator: str) -> Path:
    return _zip(
        path,
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "word/document.xml": _DOCUMENT.format(runs=_runs(body)).encode(),
            "docProps/core.xml": _CORE.format(creator=creator).encode(),
        },
    )


def test_names_inside_a_docx_are_found(tmp_path: Path) -> None:
    in_body = _docx(tmp_path / "a.docx", f"The witness {NAME} said", "Clerk")
    in_core = _docx(tmp_path / "b.docx", "Nothing to see", NAME)
    arabic = _docx(tmp_path / "c.docx", f"الشاهد {ARABIC}", "Clerk")
    clean = _docx(tmp_path / "d.docx", "Nothing to see", "Clerk")
    files = [("a.docx", in_body), ("b.docx", in_core), ("c.docx", arabic), ("d.docx", clean)]
    report = check_files(files, TERMS)
    assert report.unchecked == ()
    assert _hits(report) == {("a.docx", "T1"), ("b.docx", "T1"), ("c.docx", "T2")}
    streamed = _streamed("a.docx", in_body)
    assert _hits(streamed) == {("a.docx", "T1")}


def test_a_zip_inside_a_zip_is_searched_one_level_deep(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("note.txt", f"Call {NAME}".encode())
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner.getvalue()})
    assert _hits(check_files([("o.zip", outer)], TERMS)) == {("o.zip", "T1")}
    deeper = _zip(tmp_path / "deeper.zip", {"outer.zip": outer.read_bytes()})
    _assert_unchecked(check_files([("d.zip", deeper)], TERMS), "d.zip", "nested")


def test_zips_beyond_the_limits_cannot_be_checked(tmp_path: Path) -> None:
    many = _zip(tmp_path / "many.zip", {f"f{n}.txt": b"x" for n in range(1001)})
    _assert_unchecked(check_files([("m.zip", many)], TERMS), "m.zip", "more than 1000")
    bomb = _zip(tmp_path / "bomb.zip", {"a.txt": b" " * (30 << 20), "b.txt": b" " * (30 << 20)})
    _assert_unchecked(check_files([("b.zip", bomb)], TERMS), "b.zip", "50 MB")
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(_docx(tmp_path / "x.docx", NAME, "Clerk").read_bytes()[:200])
    _assert_unchecked(check_files([("x.zip", damaged)], TERMS), "x.zip", "archive")
    assert not _streamed("x.zip", damaged).clean


# --- 3. PDF decompression bombs -----------------------------------------------------------


def _bomb_pdf(path: Path, megabytes: int) -> Path:
    squeeze = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    body = b"".join(squeeze.compress(block) for _ in range(megabytes)) + squeeze.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def test_a_pdf_decompression_bomb_is_refused_quickly_with_bounded_memory(
    tmp_path: Path,
) -> None:
    bomb = _bomb_pdf(tmp_path / "bomb.pdf", 300)
    assert bomb.stat().st_size < 400_000
    tracemalloc.start()
    started = time.monotonic()
    try:
        report = check_files([("data/bomb.pdf", bomb)], TERMS)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _assert_unchecked(report, "data/bomb.pdf", "decompress")
    assert peak < 120 << 20  # the whole stream would be 300 MB (and more for its text)
    assert time.monotonic() - started < 10
    assert not _streamed("data/bomb.pdf", bomb).clean
