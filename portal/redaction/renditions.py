"""True redaction: the contract (marks in, outcome out) and the dispatch by media type.

Every rendition is a *new* file made from the source's content with the protected parts
removed (text) or burnt into the pixels (PDF pages, images); nothing is ever drawn over
content that stays underneath. The text matching rule (case- and whitespace-insensitive)
lives here so that redaction and the leak check agree on what "the same term" means.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = [
    "MIN_TERM_LENGTH",
    "AppliedMark",
    "CannotRedact",
    "MarkKind",
    "MarkSpec",
    "RedactionOutcome",
    "atomic_output",
    "base_media_type",
    "fold",
    "fold_with_origins",
    "redact",
    "strip_ignorable",
]

MarkKind = Literal["term", "text_span", "pdf_box", "image_box"]

# A protected term must keep at least this many characters after folding: shorter ones
# would match everywhere (and block every package at the leak check).
MIN_TERM_LENGTH = 3


@dataclass(frozen=True)
class MarkSpec:
    """One redaction mark as stored (portal.models.RedactionMark); boxes are fractions 0..1,
    origin top left: (x0, y0, x1, y1). span is a [start, end) character range of the text."""

    code: str
    kind: MarkKind
    reason: str
    term: str | None = None
    span: tuple[int, int] | None = None
    page: int | None = None  # 1-based, pdf_box only
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class AppliedMark:
    code: str
    kind: MarkKind
    reason: str
    occurrences: int  # how many places were blacked out (0 = mark found nothing)


@dataclass(frozen=True)
class RedactionOutcome:
    media_type: str  # of the new rendition: application/pdf, image/png or image/jpeg
    suffix: str  # ".pdf", ".png", ".jpg"
    applied: tuple[AppliedMark, ...]
    # (mark code, text) to leak-check for: every term, and the source text of every text
    # span long enough to be searched for (MIN_TERM_LENGTH after folding).
    protected_terms: tuple[tuple[str, str], ...]


class CannotRedact(Exception):
    """The portal cannot truly redact this media type/mark combination; .reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the matching rule ------------------------------------------------------------------

# Whitespace, control characters and invisible format characters (soft hyphen, zero-width
# space/joiners, direction marks, BOM): a name split by any of them is still the name.
_IGNORABLE = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+"
)


def strip_ignorable(text: str) -> str:
    """``text`` without whitespace, control and invisible format characters."""
    return _IGNORABLE.sub("", text)


def fold(text: str) -> str:
    """The form terms are compared in: canonical caseless (NFD, casefold, NFD) without
    whitespace or invisible format characters. "Anna  K\\nSmith" folds like "anna k smith"."""
    folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())
    return strip_ignorable(folded)


def fold_with_origins(chars: Sequence[str]) -> tuple[str, array[int]]:
    """Fold a sequence of characters one by one, remembering for every folded character
    the index of the character it came from (so a match can be mapped back)."""
    cache: dict[str, str] = {}
    pieces: list[str] = []
    origins: array[int] = array("q")
    for index, char in enumerate(chars):
        folded = cache.get(char)
        if folded is None:
            folded = cache[char] = fold(char)
        if folded:
            pieces.append(folded)
            origins.extend([index] * len(folded))
    return "".join(pieces), origins


def find_all(haystack: str, needle: str) -> Iterator[int]:
    """Every start position of ``needle`` in ``haystack``, overlapping ones included."""
    start = haystack.find(needle)
    while start >= 0:
        yield start
        start = haystack.find(needle, start + 1)


def folded_term(mark: MarkSpec) -> str:
    """The folded term of a ``term`` mark; refused when empty or too short to search for."""
    folded = fold(mark.term or "")
    if len(folded) < MIN_TERM_LENGTH:
        raise CannotRedact(
            f"mark {mark.code}: a protected term needs at least {MIN_TERM_LENGTH} letters "
            "or digits (shorter terms match everywhere); use a text span or a box instead"
        )
    return folded


def refuse_kinds(marks: Sequence[MarkSpec], allowed: frozenset[str], what: str) -> None:
    """CannotRedact for the first mark whose kind makes no sense for this media type."""
    for mark in marks:
        if mark.kind not in allowed:
            raise CannotRedact(
                f"mark {mark.code}: a {mark.kind.replace('_', ' ')} mark cannot be applied "
                f"to {what}"
            )


def check_box(mark: MarkSpec) -> tuple[float, float, float, float]:
    """The mark's box, validated (inside the unit square, not empty)."""
    if mark.box is None:
        raise CannotRedact(f"mark {mark.code}: the box is missing")
    x0, y0, x1, y1 = mark.box
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise CannotRedact(f"mark {mark.code}: the box is not inside the page or image")
    return mark.box


# --- writing the rendition ---------------------------------------------------------------


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``dest``, renamed onto it only when the block succeeds.

    On any error the temporary file is removed (``redact`` then removes ``dest`` too).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- dispatch ------------------------------------------------------------------------------

Redactor = Callable[[Path, Sequence[MarkSpec], Path, str], RedactionOutcome]


def _redactor(media_type: str) -> Redactor:
    # Imported here: the implementations import this module for the types above.
    if media_type == "text/plain":
        from portal.redaction.text import redact_text

        return redact_text
    if media_type == "application/pdf":
        from portal.redaction.pdf import redact_pdf

        return redact_pdf
    if media_type in ("image/jpeg", "image/png"):
        from portal.redaction.image import redact_image

        def image(
            source: Path, marks: Sequence[MarkSpec], dest: Path, label: str
        ) -> RedactionOutcome:
            return redact_image(source, media_type, marks, dest, label)

        return image
    raise CannotRedact(
        f"the portal cannot redact {media_type or 'files of unknown type'}: only plain text, "
        "PDF, JPEG and PNG can be truly redacted; withhold the item or clear it as-is"
    )


def redact(
    source: Path,
    media_type: str,
    marks: Sequence[MarkSpec],
    dest: Path,
    *,
    label: str = "REDACTED",
) -> RedactionOutcome:
    """Write a truly redacted rendition of `source` to `dest` (created atomically: write a temp
    file beside it and rename; on any error nothing is left at dest)."""
    try:
        return _redact(source, base_media_type(media_type), marks, dest, label)
    except BaseException:
        dest.unlink(missing_ok=True)  # no stale rendition from an earlier run either
        raise


def base_media_type(media_type: str) -> str:
    """``"Text/Plain; charset=utf-8"`` -> ``"text/plain"``."""
    return media_type.split(";", 1)[0].strip().lower()


def _redact(
    source: Path, media_type: str, marks: Sequence[MarkSpec], dest: Path, label: str
) -> RedactionOutcome:
    redactor = _redactor(media_type)
    if not fold(label):
        raise CannotRedact("the redaction label must have at least one visible character")
    codes = [mark.code for mark in marks]
    if len(set(codes)) != len(codes):
        raise CannotRedact("two marks share one code; every mark needs its own code")
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise CannotRedact(f"the source file cannot be read ({exc.strerror})") from exc
    if size == 0:
        raise CannotRedact("the source file is empty")
    return redactor(source, marks, dest, label)
