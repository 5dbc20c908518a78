"""OCR with Tesseract: the words of a page image and where they are, so that names written
only in pixels (scans, photos of signs and ID cards) are found, burnt and checked again.

Tesseract (Debian's ``tesseract-ocr`` with ``-ara`` and ``-mya``) runs as a child process fed
the image on stdin, one page at a time: each run has a time limit (:data:`PAGE_SECONDS`) and
an address-space limit (:data:`PAGE_MEMORY`), images beyond :data:`MAX_PIXELS` are refused
before it starts, and ``OMP_THREAD_LIMIT=1`` keeps one run on one core (the workers already
run in parallel). The process is called directly rather than through pytesseract, which
writes temporary files and cannot set those limits.

The page is read with Tesseract's automatic layout (``--psm 3``), and when that finds no text
at all (it happens with a single line, a sign, a card) as sparse text (``--psm 11``).

Languages follow the scripts of the terms searched for (:func:`scripts_of`): English always
(Latin script, digits), Arabic when a term is Arabic (then the page is also read as Arabic
alone, which reads Arabic words English would turn into Latin letters). Burmese is read
differently: Debian's Myanmar model misreads whole pages but reads single lines, so when a
term is Burmese the page's lines are found (the Myanmar model, ``--psm 4``) and each is
cropped and read again alone (``--psm 7``). Those lines are *doubtful* when Tesseract's
confidence in them is low: :attr:`Reading.doubtful` says which, and callers make a person
look at the page instead of trusting the OCR.

Words come back in logical order (Arabic letters as written, not reversed) and are joined
into one text, a space between words and a line break between lines, which the same matcher
as the text layer searches (:func:`boxes_of_hits`); every word a hit touches is blacked out
with padding, so a name is burnt whole even where OCR split or merged it.

Readings are cached by the hash of the pixels and what was asked (languages, page segmentation,
Tesseract's version): a page read for redaction is not read again when the same file is
redacted again. The cache holds the words of evidence: each entry is sealed (AES-GCM, the
portal's key, :mod:`portal.sealing`) when a sealer is given.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import resource
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

from PIL import Image

from portal.redaction.matcher import Hit
from portal.redaction.normalise import has_arabic, has_myanmar

__all__ = [
    "DOUBTFUL_CONFIDENCE",
    "ITEM_SECONDS",
    "MAX_PIXELS",
    "PAGE_MEMORY",
    "PAGE_SECONDS",
    "OcrBudget",
    "OcrCache",
    "OcrFailed",
    "Reading",
    "Scripts",
    "Word",
    "boxes_of_hits",
    "read_image",
    "scripts_of",
    "tesseract_version",
]

TESSERACT = "tesseract"
PAGE_SECONDS = 120.0  # one Tesseract run, at most
PAGE_MEMORY = 2 << 30  # address space of one Tesseract run, at most
MAX_PIXELS = 50_000_000  # an image or page bitmap larger than this is not read
ITEM_SECONDS = 3600.0  # OCR of one item (all its pages), at most
# A Burmese line read with less confidence than this (Tesseract's 0-100, mean of its words)
# is doubtful: a person looks at the page.
DOUBTFUL_CONFIDENCE = 70.0
# ...unless words of another script read with at least CONFIDENT cover that share of its width.
CONFIDENT = 80.0
COVERED_BY_OTHER_SCRIPT = 0.6
LINE_MARGIN = 6  # pixels kept around a line cropped for a second reading

PixelBox = tuple[int, int, int, int]


class OcrFailed(Exception):
    """Tesseract could not read the image (missing, too large, timed out, crashed);
    ``reason`` says which, in words an officer can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OcrBudget:
    """The time OCR may spend on one item (:data:`ITEM_SECONDS`): a long scan is refused with
    the reason rather than keeping a worker for hours."""

    def __init__(self, seconds: float = ITEM_SECONDS) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self, page: int) -> None:
        """OcrFailed when the budget is spent before ``page`` is read."""
        if time.monotonic() >= self.deadline:
            raise OcrFailed(
                f"OCR of this item took more than {self.seconds / 60:.0f} minutes before page "
                f"{page}; split the scan or withhold it"
            )


@dataclass(frozen=True)
class Scripts:
    """Which scripts to read: Latin (always, with digits), Arabic, Burmese."""

    arabic: bool = False
    burmese: bool = False

    @property
    def languages(self) -> str:
        """Tesseract's ``-l`` for the first pass (Burmese is read line by line after it)."""
        return "eng+ara" if self.arabic else "eng"


def scripts_of(terms: Iterable[str]) -> Scripts:
    """The scripts the ``terms`` are written in, i.e. what the pixels must be read for."""
    arabic = burmese = False
    for term in terms:
        arabic = arabic or has_arabic(term)
        burmese = burmese or has_myanmar(term)
    return Scripts(arabic=arabic, burmese=burmese)


@dataclass(frozen=True)
class Word:
    """One word Tesseract read: its text, box in image pixels and confidence (0-100)."""

    text: str
    box: PixelBox
    confidence: float
    line: tuple[int, int, int]  # (block, paragraph, line) of the pass that read it


@dataclass(frozen=True)
class Reading:
    """What OCR read on one image: words in reading order; ``doubtful``: why some of it
    cannot be trusted (empty when it can)."""

    words: tuple[Word, ...]
    doubtful: tuple[str, ...] = ()
    text: str = field(init=False, repr=False)
    owners: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        owners: list[int] = []
        previous: tuple[int, int, int] | None = None
        for index, word in enumerate(self.words):
            if previous is not None:
                parts.append("\n" if word.line != previous else " ")
                owners.append(-1)
            parts.append(word.text)
            owners.extend([index] * len(word.text))
            previous = word.line
        object.__setattr__(self, "text", "".join(parts))
        object.__setattr__(self, "owners", tuple(owners))


class Sealing(Protocol):
    def seal(self, plaintext: str, purpose: str) -> str: ...
    def unseal(self, sealed: str, purpose: str) -> str: ...


class OcrCache:
    """Readings on disk, one file per key (sealed when ``sealer`` is given: in pieces of
    :data:`_PIECE` characters, each bound to the key, its place and their number, as a page's
    reading is longer than one sealed value may be); a damaged or unreadable entry counts as
    absent and is read again, and one that cannot be written only costs time."""

    def __init__(self, directory: Path, sealer: Sealing | None = None) -> None:
        self.directory = directory
        self.sealer = sealer

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Reading | None:
        try:
            data = json.loads(self._opened(key, self._path(key).read_text(encoding="ascii")))
            words = tuple(
                Word(text, (box[0], box[1], box[2], box[3]), float(conf), (ln[0], ln[1], ln[2]))
                for text, box, conf, ln in data["words"]
            )
            return Reading(words, tuple(data["doubtful"]))
        except Exception:  # absent, damaged, sealed with another key: read the page again
            return None

    def put(self, key: str, reading: Reading) -> None:
        data = json.dumps(
            {
                "words": [[w.text, list(w.box), w.confidence, list(w.line)] for w in reading.words],
                "doubtful": list(reading.doubtful),
            },
            ensure_ascii=True,  # one byte per character: pieces are measured in characters
        )
        path = self._path(key)
        try:
            stored = self._sealed(key, data)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.part")
            temporary.write_text(stored, encoding="ascii")
            os.replace(temporary, path)
        except Exception:  # a full disk, a sealing key that cannot be read: only costs time
            return

    def _sealed(self, key: str, data: str) -> str:
        if self.sealer is None:
            return data
        pieces = [data[start : start + _PIECE] for start in range(0, len(data), _PIECE)]
        count = len(pieces)
        return json.dumps(
            [self.sealer.seal(piece, f"ocr:{key}:{i}/{count}") for i, piece in enumerate(pieces)]
        )

    def _opened(self, key: str, stored: str) -> str:
        if self.sealer is None:
            return stored
        pieces = json.loads(stored)
        count = len(pieces)
        return "".join(
            self.sealer.unseal(piece, f"ocr:{key}:{i}/{count}") for i, piece in enumerate(pieces)
        )


_PIECE = 4000  # characters of a reading sealed together (a sealed value holds 4096 bytes)


@cache
def tesseract_version() -> str:
    """Tesseract's version line (part of every cache key); OcrFailed when it is missing."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [TESSERACT, "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        raise OcrFailed(
            "Tesseract is not installed (Debian: tesseract-ocr, tesseract-ocr-ara, "
            "tesseract-ocr-mya; `make run` installs them)"
        ) from None
    return (done.stdout or done.stderr).decode("utf-8", "replace").splitlines()[0].strip()


def _tesseract(image: bytes, languages: str, psm: int) -> str:
    """Tesseract's TSV for one image (PNM bytes). Its memory is limited before it is given
    the image (it waits on stdin until then), without a ``preexec_fn``, which is unsafe in a
    process with threads."""
    command = [TESSERACT, "stdin", "stdout", "-l", languages, "--psm", str(psm), "tsv"]
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
    except OSError:
        tesseract_version()  # says it is not installed, if that is why
        raise OcrFailed("Tesseract could not be started") from None
    with process:
        try:
            resource.prlimit(process.pid, resource.RLIMIT_AS, (PAGE_MEMORY, PAGE_MEMORY))
            out, _ = process.communicate(image, timeout=PAGE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise OcrFailed(f"OCR took more than {PAGE_SECONDS:.0f} s on one page") from None
        except (OSError, ValueError):  # the process ended before it was given the image
            process.kill()
            process.communicate()
            raise OcrFailed("Tesseract stopped before it could read the image") from None
    if process.returncode != 0:
        raise OcrFailed(
            "Tesseract could not read the image (it ran out of memory or the image is damaged)"
        )
    return out.decode("utf-8", "replace")


def _words(tsv: str, offset: tuple[int, int] = (0, 0)) -> tuple[list[Word], list[PixelBox]]:
    """Words (level 5 rows with text) and line boxes (level 4) of Tesseract's TSV."""
    words: list[Word] = []
    lines: list[PixelBox] = []
    dx, dy = offset
    for row in tsv.splitlines()[1:]:
        columns = row.split("\t")
        if len(columns) < 12:
            continue
        level, block, paragraph, line = (int(value) for value in columns[0:1] + columns[2:5])
        left, top, width, height = (int(value) for value in columns[6:10])
        box = (left + dx, top + dy, left + dx + width, top + dy + height)
        if level == 4:
            lines.append(box)
        elif level == 5 and columns[11].strip():
            text, confidence = columns[11].strip(), float(columns[10])
            words.append(Word(text, box, confidence, (block, paragraph, line)))
    return words, lines


def _pnm(image: Image.Image) -> bytes:
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PPM")
    return out.getvalue()


def read_image(image: Image.Image, scripts: Scripts, *, cache: OcrCache | None = None) -> Reading:
    """Read ``image`` for ``scripts`` (see the module notes); OcrFailed when it cannot be."""
    if image.width * image.height > MAX_PIXELS:
        raise OcrFailed(
            f"the image is {image.width} x {image.height} pixels, more than the "
            f"{MAX_PIXELS:,} the portal reads with OCR"
        )
    pnm = _pnm(image)
    key = hashlib.sha256(
        f"{tesseract_version()}|{scripts.languages}|{scripts.burmese}|".encode() + pnm
    ).hexdigest()
    if cache is not None and (found := cache.get(key)) is not None:
        return found
    words, lines = _words(_tesseract(pnm, scripts.languages, 3))
    if not words:
        # The automatic layout (``--psm 3``) finds no text at all in some images of a single
        # line or of scattered text (a sign, a card): read them as sparse text instead.
        words, lines = _words(_tesseract(pnm, scripts.languages, 11))
    if scripts.arabic:
        # Read as Arabic alone too: with English beside it, Tesseract reads some Arabic words
        # as Latin letters. Its words go in as lines of their own (found twice is harmless).
        arabic, _ = _words(_tesseract(pnm, "ara", 3))
        words.extend(
            Word(w.text, w.box, w.confidence, (-1000 - w.line[0], *w.line[1:])) for w in arabic
        )
    doubtful: list[str] = []
    if scripts.burmese:
        # Lines found by the Myanmar model laid out as one column (``--psm 4``: the automatic
        # layout of ``--psm 3`` often finds no text at all in Burmese), else the first pass's.
        _, burmese_lines = _words(_tesseract(pnm, "mya", 4))
        more, doubtful = _burmese_lines(image, burmese_lines or lines, words)
        words.extend(more)
    reading = Reading(tuple(words), tuple(doubtful))
    if cache is not None:
        cache.put(key, reading)
    return reading


def _burmese_lines(
    image: Image.Image, lines: Sequence[PixelBox], read: Sequence[Word]
) -> tuple[list[Word], list[str]]:
    """Each line of the first pass read again alone as Burmese; which lines are doubtful.
    ``read``: the words the other passes read (a line they read confidently is not Burmese)."""
    words: list[Word] = []
    doubtful: list[str] = []
    for number, (left, top, right, bottom) in enumerate(lines, start=1):
        crop = (
            max(0, left - LINE_MARGIN),
            max(0, top - LINE_MARGIN),
            min(image.width, right + LINE_MARGIN),
            min(image.height, bottom + LINE_MARGIN),
        )
        if crop[2] - crop[0] < 8 or crop[3] - crop[1] < 8:
            continue
        found, _ = _words(_tesseract(_pnm(image.crop(crop)), "mya", 7), (crop[0], crop[1]))
        found = [
            Word(w.text, w.box, w.confidence, (-1, number, 0)) for w in found if has_myanmar(w.text)
        ]
        if not found:
            continue
        confidence = sum(w.confidence for w in found) / len(found)
        if (
            confidence < DOUBTFUL_CONFIDENCE
            and _looks_written(found)
            and not _read_in_another_script((left, top, right, bottom), read)
        ):
            doubtful.append(
                f"Burmese text on line {number} was read with low confidence "
                f"({confidence:.0f} of 100)"
            )
        words.extend(found)
    return words, doubtful


def _looks_written(words: Sequence[Word]) -> bool:
    """Whether a line read as Burmese looks like writing rather than a texture read as
    letters (a photo's foliage or brickwork gives short fragments, digits and stacked
    marks): at least two words of three or more Myanmar consonants each."""
    return sum(1 for word in words if len(_CONSONANTS.findall(word.text)) >= 3) >= 2


_CONSONANTS = re.compile("[\u1000-\u1021]")


def _read_in_another_script(line: PixelBox, read: Sequence[Word]) -> bool:
    """Whether most of ``line``'s width holds words the Latin or Arabic passes read with
    confidence: Latin or Arabic writing, which the Myanmar model turns into low-confidence
    Burmese-looking letters (a title in English would otherwise make every page doubtful).
    A line mixing a Burmese name with English words stays doubtful: the name's part of the
    width is not covered."""
    left, top, right, bottom = line
    if right <= left:
        return False
    covered = 0
    for word in read:
        x0, y0, x1, y1 = word.box
        overlaps = y0 < bottom and y1 > top and x0 < right and x1 > left
        if overlaps and word.confidence >= CONFIDENT and not has_myanmar(word.text):
            covered += min(x1, right) - max(x0, left)
    return covered >= COVERED_BY_OTHER_SCRIPT * (right - left)


def boxes_of_hits(
    reading: Reading, locate: Callable[[str], Sequence[Hit]], pad: int = 4
) -> list[tuple[str, PixelBox]]:
    """(code, box) for every hit of ``locate`` in the reading's text: the words each hit
    touches, joined per line and padded (by ``pad`` pixels or a quarter of the line's height,
    whichever is more)."""
    found: list[tuple[str, PixelBox]] = []
    for hit in locate(reading.text):
        touched = sorted(
            {reading.owners[i] for i in range(hit.start, min(hit.end, len(reading.owners)))} - {-1}
        )
        by_line: dict[tuple[int, int, int], list[PixelBox]] = {}
        for index in touched:
            word = reading.words[index]
            by_line.setdefault(word.line, []).append(word.box)
        for boxes in by_line.values():
            left = min(box[0] for box in boxes)
            top = min(box[1] for box in boxes)
            right = max(box[2] for box in boxes)
            bottom = max(box[3] for box in boxes)
            margin = max(pad, (bottom - top) // 4)
            box = (left - margin, top - margin, right + margin, bottom + margin)
            if not any(code == hit.code and _same_place(box, seen) for code, seen in found):
                found.append((hit.code, box))  # (a second reading of the same words: once)
    return found


def _same_place(first: PixelBox, second: PixelBox) -> bool:
    """Whether two boxes mostly cover each other (intersection over union above one half)."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return False
    inter = width * height
    union = (
        (first[2] - first[0]) * (first[3] - first[1])
        + (second[2] - second[0]) * (second[3] - second[1])
        - inter
    )
    return inter * 2 > union
