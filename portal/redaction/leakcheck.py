"""The leak check: does any protected term survive anywhere in the files of a package?

Every term is searched for in all its variants (the term and its partial names:
:mod:`portal.redaction.names`), through one automaton per layer whatever the number of terms
(:mod:`portal.redaction.matcher`). Three layers:

* ``bytes`` — the raw bytes of every file, streamed in chunks with an overlap (never the
  whole file in memory): ASCII letters lowered and ASCII whitespace dropped, searched for
  each variant in UTF-8 and Windows-1252 (in lower, upper, title and caseless forms, composed
  and decomposed, and normalised), and in UTF-16 (little and big endian, words separated by
  one space or none). For PDFs also every decoded stream and string object except images,
  which finds names in compressed annotations, form fields, JavaScript or embedded files;
  decoded values are also read as text (below). A file that is neither PDF nor image and
  looks like text (a UTF-16 byte order mark, or no NUL byte in its first kilobyte) is also
  decoded as it streams past and searched like text.
* ``text`` — the text pdfminer.six extracts from PDFs, normalised
  (:mod:`portal.redaction.normalise`: case, whitespace, hyphenation, invisible characters,
  Arabic forms and visual order, Zawgyi) before it is searched.
* ``metadata`` — PDF document information and XMP; image EXIF (GPS and Exif IFDs
  included), XMP, comments and PNG text chunks, normalised like text.
* ``pixels`` — when asked (:class:`PixelReading`): what OCR reads on every PDF page that shows
  an image and in every image file (:mod:`portal.redaction.pixels`), in the scripts of the
  terms, searched like text; the hit names the page ("pixels, page 3"). A page OCR cannot be
  trusted on (Burmese read with low confidence) or cannot read at all makes the file
  unchecked, with the reason: a person looks at it instead.

ZIP containers (DOCX, ODT, XLSX, zip) are opened and each member is checked like a file
(XML members also with their tags removed, which joins words Word splits into runs), one
nested archive deep, within :data:`ZIP_MEMBERS` members and :data:`ZIP_LIMIT` bytes
decompressed. PDF streams are decoded within :data:`PDF_STREAM_LIMIT` bytes each and
:data:`PDF_LIMIT` per file (a decompression bomb is refused, not decoded).

A file that cannot be looked at whole (a damaged PDF, image or archive, text in an encoding
the portal cannot read, a file beyond the limits) is listed as unchecked, which also makes
the report unclean: a check that could not look is not a pass. The report names files and
mark codes only, never the terms (nor the names of archive members).

:func:`check_files` reads each file itself. :class:`StreamingCheck` is the same check for
files about to be streamed (into a package): the text and metadata layers run first, the raw
bytes are searched as the writer passes them, so every byte is read once.

Limits: other compressed archives (tar.gz, 7z, rar) are searched as raw bytes only.
"""

from __future__ import annotations

import codecs
import html
import io
import re
import struct
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeGuard

import ahocorasick

from portal.redaction import parser_limits
from portal.redaction.matcher import MIN_TERM_LENGTH, Matcher, TermTooShort, expand
from portal.redaction.normalise import fold, fold_readings, strip_invisible
from portal.redaction.ocr import ITEM_SECONDS, OcrBudget, OcrCache, OcrFailed, Scripts, scripts_of

__all__ = [
    "CHUNK_SIZE",
    "OCR_DOUBT",
    "PDF_LIMIT",
    "PDF_STREAM_LIMIT",
    "ZIP_LIMIT",
    "ZIP_MEMBERS",
    "LeakFound",
    "LeakHit",
    "LeakReport",
    "PixelReading",
    "RawPlan",
    "StreamingCheck",
    "check_files",
]

CHUNK_SIZE = 1 << 20
PDF_STREAM_LIMIT = 64 << 20  # bytes of one PDF stream once decoded, at most
PDF_LIMIT = 512 << 20  # bytes of all the streams of one PDF once decoded, at most
ZIP_MEMBERS = 1000  # files in one archive, at most
ZIP_LIMIT = 50 << 20  # bytes of an archive (and the archives in it) once decompressed
_ZIP_MAGIC = b"PK\x03\x04"
OCR_DOUBT = "OCR cannot be trusted on"
# Where a hit was found: "text", "metadata", "bytes", or "pixels" (with the page or frame).
Where = str

_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"
_IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",
    b"MM\x00*",
)


@dataclass(frozen=True)
class LeakHit:
    path: str  # the bag-relative name given by the caller, e.g. "data/items/ITM-1/x.pdf"
    mark_code: str  # which protected term was found (NEVER store or print the term itself)
    where: Where


@dataclass(frozen=True)
class LeakReport:
    files_checked: int
    terms_checked: int
    hits: tuple[LeakHit, ...]
    # (path, reason) of files whose text or metadata could not be read: not clean either.
    unchecked: tuple[tuple[str, str], ...] = field(default=())

    @property
    def clean(self) -> bool:
        return not self.hits and not self.unchecked

    def to_json(self) -> dict[str, object]:
        """The report as stored and shown (file names and mark codes, no term text)."""
        return {
            "clean": self.clean,
            "files_checked": self.files_checked,
            "terms_checked": self.terms_checked,
            "hits": [
                {"path": hit.path, "mark_code": hit.mark_code, "where": hit.where}
                for hit in self.hits
            ],
            "unchecked": [{"path": path, "reason": reason} for path, reason in self.unchecked],
        }


class _Unreadable(Exception):
    """The structure of a file could not be read; the message is the reason."""


class _Doubtful(_Unreadable):
    """OCR read the file's pixels but cannot be trusted on some of them; ``plan``: how its raw
    bytes are read (the other layers were searched)."""

    def __init__(self, reason: str, plan: RawPlan) -> None:
        super().__init__(reason)
        self.plan = plan


class _Budget:
    """Bytes a file may decompress to, spent as they are produced."""

    def __init__(self, limit: int, reason: str) -> None:
        self.left, self.reason = limit, reason

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise _Unreadable(self.reason)


# --- what to look for ------------------------------------------------------------------------


def _forms(variant: str) -> set[str]:
    """The variant as it may be written: lower, upper, title and caseless, composed and
    decomposed; and normalised."""
    forms = {variant, variant.lower(), variant.upper(), variant.title(), variant.casefold()}
    written = {unicodedata.normalize(norm, form) for form in forms for norm in ("NFC", "NFD")}
    return {*written, fold(variant)}


class _BytePatterns:
    """Byte needles searched for with one automaton (bytes are read as Latin-1 text, one
    character per byte)."""

    def __init__(self, needles: dict[bytes, set[str]]) -> None:
        self.longest = max(map(len, needles), default=0)
        self._automaton: Any = None
        if needles:
            automaton = ahocorasick.Automaton()
            for needle, codes in needles.items():
                automaton.add_word(needle.decode("latin-1"), tuple(sorted(codes)))
            automaton.make_automaton()
            self._automaton = automaton

    def codes_in(self, haystack: bytes) -> set[str]:
        found: set[str] = set()
        if self._automaton is not None and haystack:
            for _end, codes in self._automaton.iter(haystack.decode("latin-1")):
                found.update(codes)
        return found


def _byte_needles(
    variants: Iterable[tuple[str, str]],
) -> tuple[dict[bytes, set[str]], dict[bytes, set[str]]]:
    """Needles for the squeezed stream (UTF-8, cp1252) and for the lowered stream (UTF-16)."""
    squeezed: dict[bytes, set[str]] = {}
    wide: dict[bytes, set[str]] = {}
    for code, variant in variants:
        for form in _forms(variant):
            joined = strip_invisible(form)
            if not joined:
                continue
            for encoding in ("utf-8", "cp1252"):
                try:
                    needle = joined.encode(encoding).lower()
                except UnicodeEncodeError:
                    continue
                squeezed.setdefault(needle, set()).add(code)
            spaced = " ".join(form.split())
            for text in {joined, spaced}:
                for encoding in ("utf-16-le", "utf-16-be"):
                    wide.setdefault(text.encode(encoding).lower(), set()).add(code)
    return squeezed, wide


@dataclass(frozen=True)
class PixelReading:
    """Read the pixels of PDFs and images with OCR too (the ``pixels`` layer); ``cache``:
    where readings are kept (see :class:`~portal.redaction.ocr.OcrCache`);
    ``checked_by_eye``: names of files a person read, where OCR's doubts are accepted."""

    cache: OcrCache | None = None
    checked_by_eye: frozenset[str] = frozenset()
    item_seconds: float = ITEM_SECONDS  # OCR of one file, at most

    def accepts(self, name: str, doubt: _Unreadable) -> bool:
        return isinstance(doubt, _Doubtful) and name in self.checked_by_eye


@dataclass
class _Needles:
    text: Matcher
    squeezed: _BytePatterns
    wide: _BytePatterns
    scripts: Scripts
    pixels: PixelReading | None = None

    @classmethod
    def build(
        cls, terms: Sequence[tuple[str, str]], pixels: PixelReading | None = None
    ) -> _Needles:
        try:
            variants = list(expand(terms))
        except TermTooShort as short:
            raise ValueError(
                f"the protected term of mark {short.code} has fewer than {MIN_TERM_LENGTH} "
                "characters once case and spaces are ignored; it would match everywhere"
            ) from None
        squeezed, wide = _byte_needles(variants)
        return cls(
            text=Matcher.from_variants(variants),
            squeezed=_BytePatterns(squeezed),
            wide=_BytePatterns(wide),
            scripts=scripts_of(term for _, term in terms),
            pixels=pixels,
        )

    def in_text(self, text: str) -> set[str]:
        return self.text.codes_in_text(text)


class _ByteScanner:
    """Feeds chunks through both byte normalisations, keeping an overlap between chunks."""

    def __init__(self, needles: _Needles) -> None:
        self.needles = needles
        self.keep_squeezed = max(needles.squeezed.longest, 1) - 1
        self.keep_wide = max(needles.wide.longest, 1) - 1
        self.tail_squeezed = b""
        self.tail_wide = b""
        self.found: set[str] = set()

    def feed(self, chunk: bytes) -> None:
        lowered = chunk.lower()
        squeezed = self.tail_squeezed + lowered.translate(None, _ASCII_WHITESPACE)
        wide = self.tail_wide + lowered
        self.found |= self.needles.squeezed.codes_in(squeezed)
        self.found |= self.needles.wide.codes_in(wide)
        # max(0, ...): a chunk shorter than the overlap is kept whole (a negative start
        # would count from the end and drop its first bytes)
        self.tail_squeezed = (
            squeezed[max(0, len(squeezed) - self.keep_squeezed) :] if self.keep_squeezed else b""
        )
        self.tail_wide = wide[max(0, len(wide) - self.keep_wide) :] if self.keep_wide else b""

    def gap(self) -> None:
        """The next chunk does not follow on from the last one."""
        self.tail_squeezed = self.tail_wide = b""


def _scan_blob(data: bytes, needles: _Needles) -> set[str]:
    """Codes found in one in-memory byte string (a decoded stream, a metadata value)."""
    scanner = _ByteScanner(needles)
    for start in range(0, len(data), CHUNK_SIZE):
        scanner.feed(data[start : start + CHUNK_SIZE])
    found = set(scanner.found)
    for encoding in ("utf-8", "utf-16"):
        found |= needles.in_text(data.decode(encoding, "ignore"))
    return found


# --- per layer -------------------------------------------------------------------------------


# PDF syntax: names (/FontName, /DejaVuSerif-Italic) and keywords. Left in, they make
# short terms match everywhere ("Ann" in /Annots, "Ali" in -Italic).
_PDF_SYNTAX = re.compile(
    rb"/[^\s/<>\[\]()%{}]*|\b(?:obj|endobj|stream|endstream|xref|trailer|startxref)\b"
)


class _TextFeed:
    """A text file's bytes decoded and normalised as they pass, searched like extracted text
    (a name with vowel marks, invisible characters or in Zawgyi, which the byte needles
    miss). Decoded text is normalised up to its last whitespace, which no Zawgyi run or
    sequence of combining marks crosses; each reading (Zawgyi converted, and as written: see
    :meth:`Matcher.codes_in_text`) keeps an overlap."""

    CARRY_LIMIT = 1 << 20  # characters held back waiting for whitespace, at most

    def __init__(self, needles: _Needles, encoding: str) -> None:
        self.matcher = needles.text
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self.undecodable = False  # met bytes that are not text in the encoding: not checked
        self.keep = max(self.matcher.longest, 1) - 1
        self.carry = ""
        self.tails = ["", ""]
        self.found: set[str] = set()

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.undecodable:
            return
        try:
            pending = self.carry + self.decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.undecodable = True
            return
        split = len(pending)
        if not final and len(pending) < self.CARRY_LIMIT:
            split = max(pending.rfind(" "), pending.rfind("\n")) + 1
        self.carry = pending[split:]
        text = pending[:split]
        readings = fold_readings(text)
        converted = self.tails[0] + readings[0]
        self.found |= self.matcher.codes_in(converted)
        written = self.tails[1] + readings[-1]
        if written != converted:
            self.found |= self.matcher.codes_in(written)
        self.tails = [self._tail(converted), self._tail(written)]

    def _tail(self, haystack: str) -> str:
        return haystack[len(haystack) - self.keep :] if self.keep else ""


def _text_encoding(head: bytes) -> str | None:
    """How a file that is neither PDF nor image is read as text: UTF-16 after its byte order
    mark, else UTF-8 when its start has no NUL byte (binary formats have some); or None."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None if b"\x00" in head else "utf-8"


class _RawFeed:
    """The raw-bytes layer of one file, fed its bytes in order from the start, in chunks of
    any size: leaves out the ``skip`` ranges (compressed pixels and PDF stream bodies: noise
    to a text search, and searched decoded where that means something; the overlap between
    chunks is dropped at each) and, for PDFs, the syntax. A text file is also read as text
    (:class:`_TextFeed`); its hits count as ``bytes`` too."""

    def __init__(self, needles: _Needles, plan: RawPlan) -> None:
        self.scanner = _ByteScanner(needles)
        self.ranges = [*sorted(plan.skip), (1 << 62, 1 << 62)]
        self.pdf = plan.pdf
        self.text = _TextFeed(needles, plan.text) if plan.text else None
        self.position = 0  # offset in the file of the next byte fed
        self.skipping = False

    def feed(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            start, end = self.ranges[0]
            if self.position >= end:
                self.ranges.pop(0)
                continue
            if self.position >= start:  # inside a skipped range
                if not self.skipping:
                    self.skipping = True
                    self.scanner.gap()
                step = min(len(view), end - self.position)
            else:
                self.skipping = False
                step = min(len(view), start - self.position)
                part = bytes(view[:step])
                self.scanner.feed(_PDF_SYNTAX.sub(b" ", part) if self.pdf else part)
                if self.text is not None:
                    self.text.feed(part)
            view = view[step:]
            self.position += step

    def finish(self) -> tuple[set[str], str | None]:
        """The codes found once the whole file was fed, and why it could not be checked
        whole (None when it could)."""
        if self.text is None:
            return self.scanner.found, None
        self.text.feed(b"", final=True)
        problem = _UNDECODABLE if self.text.undecodable else None
        return self.scanner.found | self.text.found, problem


_UNDECODABLE = "text in an encoding the portal cannot read (only UTF-8 and UTF-16 are)"


def _scan_raw(path: Path, needles: _Needles, plan: RawPlan) -> tuple[set[str], str | None]:
    """Codes found in the raw bytes of the file at ``path`` (see :class:`_RawFeed`), and
    why it could not be checked whole (None when it could)."""
    feed = _RawFeed(needles, plan)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                feed.feed(chunk)
    except OSError as exc:
        raise _Unreadable(f"the file cannot be read ({exc.strerror})") from None
    return feed.finish()


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(1024)
    except OSError as exc:
        raise _Unreadable(f"the file cannot be read ({exc.strerror})") from None


def _values(value: Any, depth: int = 0) -> Iterator[Any]:
    """Every leaf of a nested structure of lists, tuples and dicts (depth-limited)."""
    if depth > 32:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _values(item, depth + 1)
    elif isinstance(value, list | tuple) and not _is_byte_tuple(value):
        for item in value:
            yield from _values(item, depth + 1)
    else:
        yield value


def _is_byte_tuple(value: object) -> TypeGuard[tuple[int, ...]]:
    """EXIF's XP* tags arrive as tuples of byte values (UTF-16 text)."""
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(item, int) and 0 <= item <= 255 for item in value)
    )


def _scan_value(value: object, needles: _Needles) -> set[str]:
    if isinstance(value, str):
        return needles.in_text(value)
    if isinstance(value, bytes | bytearray):
        return _scan_blob(bytes(value), needles)
    if _is_byte_tuple(value):
        data = bytes(value)
        return _scan_blob(data, needles) | needles.in_text(data.decode("utf-16-le", "ignore"))
    return set()


def _stream_body(handle: BinaryIO, position: int, rawdata: bytes) -> tuple[int, int] | None:
    """Where the raw data of the stream object at ``position`` lies in the file, checked
    byte for byte (None when it cannot be confirmed: then it is scanned like the rest)."""
    handle.seek(position)
    window = handle.read(65536)
    keyword = window.find(b"stream")
    while keyword >= 0:
        start = keyword + len(b"stream")
        if window[start : start + 2] == b"\r\n":
            start += 2
        elif window[start : start + 1] in (b"\n", b"\r"):
            start += 1
        else:
            keyword = window.find(b"stream", keyword + 1)
            continue
        handle.seek(position + start)
        if handle.read(len(rawdata)) == rawdata:
            return position + start, position + start + len(rawdata)
        return None
    return None


def _scan_pdf(
    path: Path, needles: _Needles, found: set[tuple[str, Where]]
) -> list[tuple[int, int]]:
    """Search the PDF's metadata, objects, decoded streams and text; return the ranges of
    the stream bodies found in the file (searched decoded, so skipped by the raw scan)."""
    from pdfminer.high_level import extract_text
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import PDFObjectNotFound, PDFStream, resolve1
    from pdfminer.psparser import LIT
    from pdfminer.utils import decode_text

    def strings(value: Any) -> Iterator[object]:
        for leaf in _values(value):
            if isinstance(leaf, bytes):
                yield decode_text(leaf)
                yield leaf

    def note(codes: Iterable[str], where: Where) -> None:
        found.update((code, where) for code in codes)

    bodies: list[tuple[int, int]] = []
    budget = _Budget(PDF_LIMIT, f"the PDF is larger than {PDF_LIMIT >> 20} MB once decompressed")
    try:
        with path.open("rb") as handle, path.open("rb") as reader:
            document = PDFDocument(PDFParser(handle), caching=False)
            for info in document.info:
                for leaf in strings(info):
                    note(_scan_value(leaf, needles), "metadata")
            metadata = resolve1(document.catalog.get("Metadata"))
            if isinstance(metadata, PDFStream):
                _measure(metadata, budget)
                note(_scan_blob(metadata.get_data(), needles), "metadata")
            for xref in document.xrefs:
                for objid in xref.get_objids():
                    try:
                        obj: Any = document.getobj(objid)
                    except PDFObjectNotFound:
                        continue
                    is_stream = isinstance(obj, PDFStream)
                    for leaf in strings(obj.attrs if is_stream else obj):
                        note(_scan_value(leaf, needles), "bytes")
                    if not is_stream:
                        continue
                    stream_in, position, _generation = xref.get_pos(objid)
                    if stream_in is None and obj.rawdata:
                        body = _stream_body(reader, position, obj.rawdata)
                        if body is not None:
                            bodies.append(body)
                    if resolve1(obj.get("Subtype")) != LIT("Image"):  # text extraction decodes
                        _measure(obj, budget)  # the others (fonts too): within the limits
                    if not _binary_stream(obj, resolve1, LIT):
                        note(_scan_blob(obj.get_data(), needles), "bytes")
        text = extract_text(str(path))
    except _Unreadable:
        raise
    except Exception as exc:  # pdfminer raises many kinds; any of them means "not checked"
        raise _Unreadable(f"the PDF cannot be parsed ({type(exc).__name__})") from None
    note(needles.in_text(text), "text")
    return bodies


def _scan_pdf_apart(path: Path, needles: _Needles) -> tuple[set[tuple[str, Where]], list[Any]]:
    """:func:`_scan_pdf` as a child process runs it: what it found and the stream bodies."""
    found: set[tuple[str, Where]] = set()
    return found, _scan_pdf(path, needles, found)


def _bounded_pdf(
    path: Path, needles: _Needles, found: set[tuple[str, Where]]
) -> list[tuple[int, int]]:
    """:func:`_scan_pdf` within the parser limits (time, memory: a small Flate bomb can keep
    pdfminer busy for minutes); beyond them the PDF is unchecked, with the reason."""
    try:
        hits, bodies = parser_limits.run_bounded(
            _scan_pdf_apart,
            path,
            replace(needles, pixels=None),  # OCR is not part of this layer
            seconds=parser_limits.PARSE_SECONDS,
        )
    except parser_limits.ParseLimitExceeded as exc:
        raise _Unreadable(f"the PDF was not read to the end: {exc}") from None
    found.update(hits)
    return [(start, end) for start, end in bodies]


def _measure(stream: Any, budget: _Budget) -> None:
    """Decode ``stream`` as pdfminer would, within the limits (raises _Unreadable beyond
    them), so that pdfminer's own decoding, which has none, can then run: a filter is
    decoded in pieces and counted, never whole."""
    from pdfminer import pdftypes
    from pdfminer.ascii85 import ascii85decode, asciihexdecode
    from pdfminer.lzw import LZWDecoder
    from pdfminer.runlength import rldecode

    data = stream.rawdata
    if data is None:  # decoded already
        return
    if stream.decipher:
        data = stream.decipher(stream.objid, stream.genno, data, stream.attrs)
    for name, _params in stream.get_filters():  # predictors never make data longer
        if name in pdftypes.LITERALS_FLATE_DECODE:
            data = _capped(_inflate(data), budget)
        elif name in pdftypes.LITERALS_LZW_DECODE:
            data = _capped(LZWDecoder(io.BytesIO(data)).run(), budget)
        elif name in pdftypes.LITERALS_RUNLENGTH_DECODE:
            size = _runlength_size(data)
            if size > PDF_STREAM_LIMIT:
                raise _Unreadable(_STREAM_TOO_LARGE)
            budget.spend(size)
            data = rldecode(data)
        elif name in pdftypes.LITERALS_ASCII85_DECODE:
            data = ascii85decode(data)
        elif name in pdftypes.LITERALS_ASCIIHEX_DECODE:
            data = asciihexdecode(data)
        else:  # image codecs: pdfminer leaves them as they are
            return


_STREAM_TOO_LARGE = f"a PDF stream is larger than {PDF_STREAM_LIMIT >> 20} MB once decompressed"


def _capped(pieces: Iterable[bytes], budget: _Budget) -> bytes:
    kept: list[bytes] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > PDF_STREAM_LIMIT:
            raise _Unreadable(_STREAM_TOO_LARGE)
        budget.spend(len(piece))
        kept.append(piece)
    return b"".join(kept)


def _inflate(data: bytes) -> Iterator[bytes]:
    """Flate-decoded ``data`` in pieces of at most CHUNK_SIZE bytes (up to an error, like
    pdfminer's reading of damaged streams)."""
    inflater = zlib.decompressobj()
    pending = data
    try:
        while True:
            piece = inflater.decompress(pending, CHUNK_SIZE)
            pending = inflater.unconsumed_tail
            if piece:
                yield piece
            elif not pending or inflater.eof:
                return
    except zlib.error:
        return


def _runlength_size(data: bytes) -> int:
    """The length of RunLength-decoded ``data``, read from its length bytes."""
    size = position = 0
    while position < len(data) and data[position] != 128:
        length = data[position]
        if length < 128:
            size += length + 1
            position += length + 2
        else:
            size += 257 - length
            position += 2
    return size


def _binary_stream(stream: Any, resolve: Any, literal: Any) -> bool:
    """Images, font programs and ICC profiles: binary tables whose decoded bytes would only
    give chance matches (a font's character map lists codes in order, like UTF-16 text)."""
    subtype = resolve(stream.get("Subtype"))
    if subtype in (literal(name) for name in _BINARY_SUBTYPES):
        return True
    return stream.get("Length1") is not None or stream.get("N") is not None


_BINARY_SUBTYPES = ("Image", "Type1C", "CIDFontType0C", "OpenType")


def _scan_image(path: Path, needles: _Needles, found: set[tuple[str, Where]]) -> None:
    from PIL import Image
    from PIL.ExifTags import IFD

    try:
        with Image.open(path) as image:
            values: list[object] = list(_values(dict(image.info)))
            text_chunks = getattr(image, "text", None)  # PNG tEXt/zTXt/iTXt, read to the end
            if isinstance(text_chunks, dict):
                values.extend(_values(text_chunks))
            exif = image.getexif()
            values.extend(exif.values())
            for ifd in (IFD.Exif, IFD.GPSInfo, IFD.Interop):
                values.extend(_values(dict(exif.get_ifd(ifd))))
    except Exception as exc:  # Pillow raises many kinds for damaged files
        raise _Unreadable(f"the image metadata cannot be read ({type(exc).__name__})") from None
    for value in values:
        found.update((code, "metadata") for code in _scan_value(value, needles))


def _kind(head: bytes) -> Literal["pdf", "image", "zip", "other"]:
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return "other"


def image_data_ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of pixel data and binary tables (PNG pixel, palette and colour chunks;
    JPEG entropy-coded scans, Huffman and quantisation tables).

    Everything else (metadata segments, chunks, whatever follows the image) stays in the
    raw scan. A structure that does not parse gives fewer ranges, never wrong ones: the
    ranges come from walking declared lengths inside the file.
    """
    try:
        with path.open("rb") as handle:
            signature = handle.read(8)
            if signature == b"\x89PNG\r\n\x1a\n":
                return _png_ranges(handle)
            if signature[:2] == b"\xff\xd8":
                return _jpeg_ranges(handle)
    except OSError:
        return []
    return []


# Pixel data and binary chunks (palette, transparency, colour and timing tables): not text.
_PNG_BINARY = frozenset(
    {
        b"IHDR",
        b"IDAT",
        b"fdAT",
        b"PLTE",
        b"tRNS",
        b"hIST",
        b"sBIT",
        b"bKGD",
        b"gAMA",
        b"cHRM",
        b"sRGB",
        b"iCCP",
        b"pHYs",
        b"sPLT",
        b"tIME",
        b"acTL",
        b"fcTL",
    }
)


def _png_ranges(handle: BinaryIO) -> list[tuple[int, int]]:
    size = handle.seek(0, 2)
    position = 8
    ranges: list[tuple[int, int]] = []
    while position + 12 <= size:
        handle.seek(position)
        length, kind = struct.unpack(">I4s", handle.read(8))
        data_end = position + 8 + length
        if data_end + 4 > size:
            break
        if kind in _PNG_BINARY:
            ranges.append((position + 8, data_end))
        position = data_end + 4
        if kind == b"IEND":
            break
    return ranges


# Frame headers, Huffman and quantisation tables, restart interval, scan headers: binary
# tables (the Huffman ones list byte values in order: "...stuvwxyz"), never text.
_JPEG_TABLES = frozenset({*range(0xC0, 0xD0), 0xDB, 0xDD, 0xDA})
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_ranges(handle: BinaryIO) -> list[tuple[int, int]]:
    size = handle.seek(0, 2)
    position = 2
    ranges: list[tuple[int, int]] = []
    while position + 4 <= size:
        handle.seek(position)
        marker = handle.read(2)
        if marker[0] != 0xFF:
            break
        if marker[1] == 0xFF or 0xD0 <= marker[1] <= 0xD7 or marker[1] == 0x01:
            position += 1 if marker[1] == 0xFF else 2  # fill byte or a marker without length
            continue
        if marker[1] == 0xD9:  # end of image; another may follow (MPO)
            handle.seek(position + 2)
            if handle.read(2) != b"\xff\xd8":
                break
            position += 4
            continue
        (length,) = struct.unpack(">H", handle.read(2))
        segment = (position + 4, position + 2 + length)
        position = segment[1]
        if marker[1] in _JPEG_TABLES:
            ranges.append(segment)
        if marker[1] != 0xDA:
            continue
        scan_end = _jpeg_scan_end(handle, position, size)
        ranges.append((position, scan_end))
        position = scan_end
    return ranges


def _jpeg_scan_end(handle: BinaryIO, start: int, size: int) -> int:
    """Where the entropy-coded data that starts at ``start`` ends (the next real marker)."""
    position = start
    while position < size:
        handle.seek(position)
        window = handle.read(CHUNK_SIZE + 1)
        match = _JPEG_MARKER.search(window, 0, len(window))
        if match is not None:
            return position + match.start()
        position += max(1, len(window) - 1)
    return size


# --- the check -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawPlan:
    """How the raw-bytes layer reads one file: the byte ranges it leaves out, and whether
    PDF syntax is dropped."""

    skip: tuple[tuple[int, int], ...] = ()
    pdf: bool = False
    text: str | None = None  # the encoding to read it in as text, if it is a text file


def _structure(
    path: Path,
    needles: _Needles,
    found: set[tuple[str, Where]],
    depth: int = 0,
    budget: _Budget | None = None,
) -> RawPlan:
    """The format-aware layers (PDF text, objects and metadata; image metadata; the members
    of an archive) of one file (``depth`` archives deep, sharing their ``budget``); returns
    how its raw bytes are to be read. Raises _Unreadable."""
    head = _head(path)
    kind = _kind(head)
    if kind == "zip":
        if depth > 1:
            raise _Unreadable("the archive holds archives nested more than one level deep")
        if budget is None:
            reason = f"the archive holds more than {ZIP_LIMIT >> 20} MB once decompressed"
            budget = _Budget(ZIP_LIMIT, reason)
        _scan_zip(path, needles, found, depth, budget)
        return RawPlan()
    if kind == "pdf":
        plan = RawPlan(tuple(_bounded_pdf(path, needles, found)), pdf=True)
        _scan_pixels(path, "page", needles, found, plan)
        return plan
    if kind == "image":
        _scan_image(path, needles, found)
        plan = RawPlan(tuple(image_data_ranges(path)))
        _scan_pixels(path, "frame", needles, found, plan)
        return plan
    return RawPlan(text=_text_encoding(head))


def _scan_pixels(
    path: Path,
    unit: Literal["page", "frame"],
    needles: _Needles,
    found: set[tuple[str, Where]],
    plan: RawPlan,
) -> None:
    """The ``pixels`` layer of a PDF (``page``) or image file (``frame``), when asked for.
    Raises, after recording its hits, _Unreadable when OCR could not read some of it and
    _Doubtful when it cannot be trusted on some of it."""
    from portal.redaction.pixels import read_image_file, read_pdf_pages

    if needles.pixels is None:
        return
    reader = read_pdf_pages if unit == "page" else read_image_file
    doubts: list[str] = []
    try:
        budget = OcrBudget(needles.pixels.item_seconds)
        for number, reading in reader(path, needles.scripts, needles.pixels.cache, budget):
            where = "pixels" if unit == "frame" and number == 1 else f"pixels, {unit} {number}"
            found.update((code, where) for code in needles.in_text(reading.text))
            doubts.extend(f"{unit} {number}: {doubt}" for doubt in reading.doubtful)
    except OcrFailed as failed:
        raise _Unreadable(f"its pixels could not be read with OCR ({failed.reason})") from None
    if doubts:
        more = f" and {len(doubts) - 2} more" if len(doubts) > 2 else ""
        shown = "; ".join(doubts[:2])
        raise _Doubtful(f"{OCR_DOUBT} {shown}{more}: a legal officer must read it", plan)


def _scan_zip(
    path: Path, needles: _Needles, found: set[tuple[str, Where]], depth: int, budget: _Budget
) -> None:
    """Check each member of the archive at ``path`` like a file (its hits count for the
    archive); XML members also as text without their tags."""
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as scratch:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) > ZIP_MEMBERS:
                raise _Unreadable(f"the archive holds more than {ZIP_MEMBERS} files")
            member = Path(scratch) / "member"
            doubts: list[str] = []
            for info in members:
                with archive.open(info) as source, member.open("wb") as out:
                    while piece := source.read(CHUNK_SIZE):
                        budget.spend(len(piece))
                        out.write(piece)
                try:
                    plan = _structure(member, needles, found, depth + 1, budget)
                except _Doubtful as doubt:  # the other members are still searched
                    doubts.append(str(doubt))
                    plan = doubt.plan
                codes, problem = _scan_raw(member, needles, plan)
                found.update((code, "bytes") for code in codes)
                if problem is not None:
                    raise _Unreadable(f"the archive holds {problem}")
                if plan.text is not None and _head(member).lstrip().startswith(b"<"):
                    text = member.read_bytes().decode(plan.text)
                    untagged = html.unescape(_XML_TAG.sub("", text))
                    found.update((code, "text") for code in needles.in_text(untagged))
            if doubts:
                raise _Doubtful(f"the archive holds a file on which {doubts[0]}", RawPlan())
    except _Unreadable:
        raise
    except Exception as exc:  # zipfile raises many kinds for damaged or encrypted archives
        raise _Unreadable(f"the archive cannot be read ({type(exc).__name__})") from None


_XML_TAG = re.compile(r"<[^>]*>")


def check_files(
    files: Iterable[tuple[str, Path]],
    terms: Sequence[tuple[str, str]],
    *,
    pixels: PixelReading | None = None,
) -> LeakReport:
    """Search every file for every (mark code, term), and its pixels too when ``pixels`` is
    given; raises ValueError, naming the mark, for a term shorter than MIN_TERM_LENGTH after
    folding (it would match everywhere)."""
    needles = _Needles.build(terms, pixels)
    hits: list[LeakHit] = []
    unchecked: list[tuple[str, str]] = []
    count = 0
    for name, path in files:
        count += 1
        found: set[tuple[str, Where]] = set()
        try:
            try:
                plan = _structure(path, needles, found)
            except _Doubtful as doubt:
                if not (pixels and pixels.accepts(name, doubt)):
                    unchecked.append((name, str(doubt)))
                plan = doubt.plan
            codes, problem = _scan_raw(path, needles, plan)
            found.update((code, "bytes") for code in codes)
            if problem is not None:
                unchecked.append((name, problem))
        except _Unreadable as exc:
            unchecked.append((name, str(exc)))
        hits.extend(LeakHit(name, code, where) for code, where in sorted(found))
    return LeakReport(
        files_checked=count, terms_checked=len(terms), hits=tuple(hits), unchecked=tuple(unchecked)
    )


class LeakFound(Exception):
    """A streamed file holds a protected term, or could not be checked whole: stop the
    stream (see :class:`StreamingCheck`; the report says which)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the leak check stopped at {path}")
        self.path = path


class StreamingCheck:
    """The leak check of files that are about to be streamed once (into a package), so that
    their bytes are read once: :meth:`prepare` runs the format-aware layers of each file
    beforehand (only PDFs and images have any), and the raw-bytes layer is fed by the writer
    chunk by chunk (:meth:`observe`); a file with a hit raises :class:`LeakFound` when it
    ends, so the writer stops and nothing made from the partial stream is kept.

    With no terms there is nothing to search: every method does nothing and the report says
    0 files and 0 terms checked. Raises ValueError like :func:`check_files` for a term too
    short to search for.
    """

    def __init__(
        self, terms: Sequence[tuple[str, str]], *, pixels: PixelReading | None = None
    ) -> None:
        self.terms = tuple(dict.fromkeys(terms))
        self._needles = _Needles.build(self.terms, pixels) if self.terms else None
        self._plans: dict[str, RawPlan] = {}
        self._hits: list[LeakHit] = []
        self._unchecked: list[tuple[str, str]] = []

    def prepare(self, name: str, path: Path) -> None:
        """Search the text and metadata of the file ``name`` (stored at ``path``) now."""
        if self._needles is None:
            return
        found: set[tuple[str, Where]] = set()
        pixels = self._needles.pixels
        try:
            self._plans[name] = _structure(path, self._needles, found)
        except _Doubtful as doubt:
            self._plans[name] = doubt.plan
            if not (pixels and pixels.accepts(name, doubt)):
                self._unchecked.append((name, str(doubt)))
        except _Unreadable as exc:
            self._plans[name] = RawPlan()
            self._unchecked.append((name, str(exc)))
        self._hits.extend(LeakHit(name, code, where) for code, where in sorted(found))

    def observe(self, name: str) -> _Observer | None:
        """The raw-bytes layer for the file ``name`` (prepared before), or None when there
        is nothing to search."""
        if self._needles is None:
            return None
        plan = self._plans.get(name)
        if plan is None:
            raise ValueError(f"{name} was not prepared for the leak check")
        return _Observer(self, name, _RawFeed(self._needles, plan))

    def report(self) -> LeakReport:
        """What was found so far (files prepared, hits of every layer, unreadable files)."""
        return LeakReport(
            files_checked=len(self._plans),
            terms_checked=len(self.terms),
            hits=tuple(self._hits),
            unchecked=tuple(self._unchecked),
        )

    def _ended(self, name: str, found: set[str], problem: str | None) -> None:
        """A file with a hit, or that could not be checked whole, stops the stream."""
        self._hits.extend(LeakHit(name, code, "bytes") for code in sorted(found))
        if problem is not None:
            self._unchecked.append((name, problem))
        if found or problem is not None:
            raise LeakFound(name)


class _Observer:
    """Receives one file's bytes from the writer (``feed``), then ``close``."""

    def __init__(self, check: StreamingCheck, name: str, feed: _RawFeed) -> None:
        self._check, self._name, self._feed = check, name, feed

    def feed(self, chunk: bytes) -> None:
        self._feed.feed(chunk)

    def close(self) -> None:
        self._check._ended(self._name, *self._feed.finish())
