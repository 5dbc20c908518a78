"""True redaction: the contract (marks in, outcome out) and the dispatch by media type.

Every rendition is a *new* file made from the source's content with the protected parts
removed (text) or burnt into the pixels (PDF pages, images); nothing is ever drawn over
content that stays underneath. Terms are matched by :mod:`portal.redaction.matcher` over the
text of :mod:`portal.redaction.normalise`, the same as the leak check's, so both agree on what
"the same term" means.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from portal.redaction.matcher import MIN_TERM_LENGTH, Hit, Matcher, TermTooShort
from portal.redaction.normalise import fold

if TYPE_CHECKING:
    from portal.redaction.ocr import OcrCache

__all__ = [
    "MIN_TERM_LENGTH",
    "AppliedMark",
    "CannotRedact",
    "MarkKind",
    "MarkSpec",
    "RedactionOutcome",
    "TermMatcher",
    "atomic_output",
    "base_media_type",
    "fold",
    "redact",
    "term_matcher",
]

MarkKind = Literal["term", "text_span", "pdf_box", "image_box"]


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
    # (page, occurrences) for the pages it was found on, where the redactor knows pages (PDF)
    pages: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class RedactionOutcome:
    media_type: str  # of the new rendition: application/pdf, image/png or image/jpeg
    suffix: str  # ".pdf", ".png", ".jpg"
    applied: tuple[AppliedMark, ...]
    # (mark code, text) to leak-check for: every term, and the source text of every text
    # span long enough to be searched for (MIN_TERM_LENGTH after folding).
    protected_terms: tuple[tuple[str, str], ...]
    # pages (PDF) or frames (images) whose terms were searched with OCR: what can miss a name
    read_with_ocr: tuple[int, ...] = ()


class CannotRedact(Exception):
    """The portal cannot truly redact this media type/mark combination; .reason says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the matching rule ------------------------------------------------------------------------


class TermMatcher:
    """The ``term`` marks' matcher: one or more compiled :class:`Matcher` (a package's
    identifiers compiled once, the item's own terms), searched as one, their hits kept for
    the marks' codes only."""

    def __init__(self, parts: Sequence[Matcher], codes: frozenset[str]) -> None:
        self._parts = tuple(parts)
        self.codes = codes

    def locate(self, text: str) -> list[Hit]:
        """Every place each code occurs in ``text`` (as written), in text order."""
        return sorted(
            hit for part in self._parts for hit in part.locate(text) if hit.code in self.codes
        )


def term_matcher(marks: Sequence[MarkSpec], prebuilt: Matcher | None = None) -> TermMatcher:
    """One matcher for the ``term`` marks; a term too short to search for is refused.

    ``prebuilt``, when given, was compiled from some of these marks (same codes, same
    terms; the identifiers withheld from a package): only the other term marks are compiled
    here, so 100,000 identifiers are compiled once per package, not once per item."""
    terms = [(mark.code, mark.term or "") for mark in marks if mark.kind == "term"]
    codes = frozenset(code for code, _ in terms)
    shared = prebuilt.codes if prebuilt is not None else frozenset()
    try:
        own = Matcher((code, term) for code, term in terms if code not in shared)
    except TermTooShort as short:
        raise CannotRedact(
            f"mark {short.code}: a protected term needs at least {MIN_TERM_LENGTH} letters "
            "or digits (shorter terms match everywhere); use a text span or a box instead"
        ) from None
    parts = [own] if prebuilt is None or not codes & shared else [prebuilt, own]
    return TermMatcher(parts, codes)


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


def _redactor(
    media_type: str, matcher: Matcher | None = None, ocr_cache: OcrCache | None = None
) -> Redactor:
    # Imported here: the implementations import this module for the types above.
    if media_type == "text/plain":
        from portal.redaction.text import redact_text

        return partial(redact_text, matcher=matcher)
    if media_type == "application/pdf":
        from portal.redaction.pdf import redact_pdf

        return partial(redact_pdf, matcher=matcher, ocr_cache=ocr_cache)
    if media_type in ("image/jpeg", "image/png"):
        from portal.redaction.image import redact_image

        def image(
            source: Path, marks: Sequence[MarkSpec], dest: Path, label: str
        ) -> RedactionOutcome:
            return redact_image(
                source, media_type, marks, dest, label, matcher=matcher, ocr_cache=ocr_cache
            )

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
    matcher: Matcher | None = None,
    ocr_cache: OcrCache | None = None,
) -> RedactionOutcome:
    """Write a truly redacted rendition of `source` to `dest` (created atomically: write a temp
    file beside it and rename; on any error nothing is left at dest). ``matcher``: the
    prebuilt matcher of some of the term marks (see :func:`term_matcher`); ``ocr_cache``:
    where pages read with OCR are kept (see :mod:`portal.redaction.ocr`)."""
    try:
        redactor = _redactor(base_media_type(media_type), matcher, ocr_cache)
        return _redact(source, marks, dest, label, redactor)
    except BaseException:
        dest.unlink(missing_ok=True)  # no stale rendition from an earlier run either
        raise


def base_media_type(media_type: str) -> str:
    """``"Text/Plain; charset=utf-8"`` -> ``"text/plain"``."""
    return media_type.split(";", 1)[0].strip().lower()


def _redact(
    source: Path, marks: Sequence[MarkSpec], dest: Path, label: str, redactor: Redactor
) -> RedactionOutcome:
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
