"""Plain text → a new PDF (ReportLab) with the protected terms and spans taken out first.

The removed characters never reach the renderer: each removed run is replaced by a black
box of fixed width carrying the label (the width does not depend on what was removed, so
the box does not tell how long a name was). Input must be UTF-8 (a leading BOM is
dropped); anything else is refused rather than guessed, because a wrong guess could
garble a name so that its term no longer matches. Span offsets count characters of the
text decoded that way, line endings as they are in the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reportlab.pdfbase.pdfdoc import PDFDictionary, PDFInfo

from portal.redaction.renditions import (
    MIN_TERM_LENGTH,
    AppliedMark,
    CannotRedact,
    MarkSpec,
    RedactionOutcome,
    atomic_output,
    find_all,
    fold,
    fold_with_origins,
    folded_term,
    refuse_kinds,
)

__all__ = ["MAX_TEXT_BYTES", "RemovalPlan", "plan_removals", "redact_text"]

MAX_TEXT_BYTES = 8 * 1024 * 1024

_PAGE_WIDTH, _PAGE_HEIGHT = 595.2756, 841.8898  # A4 in points
_MARGIN = 50.0
_FONT_SIZE = 9.0
_LEADING = 12.0
_LABEL_SIZE = 7.0
_BOX_PAD = 3.0
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
)
_FONT_NAME = "PortalRedactionMono"
_LINE_BREAK = re.compile(r"\r\n|[\n\r\f\v\x1c-\x1e\x85\u2028\u2029]")
_TOKEN = re.compile(r"[ \t]+|[^ \t]+")

Interval = tuple[int, int]


@dataclass(frozen=True)
class RemovalPlan:
    """Which character ranges go, and how many places each mark found."""

    intervals: tuple[Interval, ...]
    occurrences: dict[str, int]


# --- planning (pure) ---------------------------------------------------------------------


def _merge(intervals: list[Interval], text: str) -> list[Interval]:
    """Sorted, overlapping ones joined; runs separated only by spaces or tabs become one."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and (start <= merged[-1][1] or not text[merged[-1][1] : start].strip(" \t")):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _as_shown(
    text: str, intervals: Sequence[Interval], label: str, shown: Callable[[str], str]
) -> tuple[list[str], list[int]]:
    """The characters as the rendition shows them; origin -1 marks label characters."""
    chars: list[str] = []
    origins: list[int] = []
    position = 0
    for start, end in [*intervals, (len(text), len(text))]:
        kept = shown(text[position:start])
        chars.extend(kept)
        origins.extend(range(position, position + len(kept)))
        if start < end:
            chars.extend(label)
            origins.extend([-1] * len(label))
        position = end
    return chars, origins


def plan_removals(
    text: str,
    marks: Sequence[MarkSpec],
    label: str,
    shown: Callable[[str], str] = lambda run: run,
) -> RemovalPlan:
    """Every span and every occurrence of every term, plus whatever a term would form
    anew with a neighbouring label (checked until the shown text holds no term at all)."""
    intervals: list[Interval] = []
    occurrences: dict[str, int] = {}
    terms: list[tuple[str, str]] = []
    for mark in marks:
        if mark.kind == "text_span":
            if mark.span is None:
                raise CannotRedact(f"mark {mark.code}: the text span is missing")
            start, end = mark.span
            if not 0 <= start < end <= len(text):
                raise CannotRedact(
                    f"mark {mark.code}: span {start}-{end} is not inside the text "
                    f"({len(text)} characters)"
                )
            intervals.append((start, end))
            occurrences[mark.code] = 1
        else:
            terms.append((mark.code, folded_term(mark)))
    folded, origins = fold_with_origins(text)
    for code, term in terms:
        count = 0
        for at in find_all(folded, term):
            intervals.append((origins[at], origins[at + len(term) - 1] + 1))
            count += 1
        occurrences[code] = count
    merged = _merge(intervals, text)
    while True:
        chars, shown_origins = _as_shown(text, merged, label, shown)
        shown_folded, folded_origins = fold_with_origins(chars)
        extra: list[Interval] = []
        for code, term in terms:
            for at in find_all(shown_folded, term):
                hit = {shown_origins[folded_origins[i]] for i in range(at, at + len(term))}
                hit.discard(-1)
                if not hit:
                    raise CannotRedact(f"mark {code}: the term occurs in the redaction label")
                extra.append((min(hit), max(hit) + 1))
        if not extra:
            return RemovalPlan(intervals=tuple(merged), occurrences=occurrences)
        merged = _merge([*merged, *extra], text)


# --- reading --------------------------------------------------------------------------------


def _read_text(source: Path) -> str:
    with source.open("rb") as handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise CannotRedact(
            f"the text is larger than {MAX_TEXT_BYTES // (1024 * 1024)} MiB; split it or share "
            "it unredacted only if cleared as-is"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CannotRedact(
            f"the text is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 and "
            "register it again"
        ) from None


# --- rendering ------------------------------------------------------------------------------


def _font() -> tuple[str, Callable[[str], str]]:
    """A monospaced Unicode font if one is installed, else Courier (Latin-1 only, so other
    characters are shown as "?")."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for candidate in _FONT_FILES:
        if Path(candidate).is_file():
            if _FONT_NAME not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(_FONT_NAME, candidate))
            return _FONT_NAME, lambda run: run

    def latin1(run: str) -> str:
        return run.encode("cp1252", "replace").decode("cp1252")

    return "Courier", latin1


class _EmptyInfo(PDFInfo):  # type: ignore[misc]  # reportlab is untyped
    """Stands in for ReportLab's document information: an empty dictionary, so the
    rendition names no title, author, producer or date."""

    def digest(self, signature: object) -> None:
        """Nothing of the (empty) information goes into the document's identifier."""

    def format(self, document: object) -> bytes:
        formatted: bytes = PDFDictionary({}).format(document)
        return formatted


@dataclass
class _Box:
    pass


_BOX = _Box()
_Item = tuple[str, float] | _Box  # text and its width, or a redaction box


class _Writer:
    """Lays out lines of text and boxes onto A4 pages, wrapping long lines."""

    def __init__(self, out: BinaryIO, font: str, label: str) -> None:
        from reportlab.pdfbase.pdfmetrics import stringWidth
        from reportlab.pdfgen.canvas import Canvas

        self.canvas = Canvas(
            out, pagesize=(_PAGE_WIDTH, _PAGE_HEIGHT), invariant=1, pageCompression=1
        )
        self.canvas._doc.info = _EmptyInfo()
        self.string_width = stringWidth
        self.font = font
        self.label = label
        self.label_width = float(stringWidth(label, font, _LABEL_SIZE))
        self.box_width = self.label_width + 2 * _BOX_PAD
        self.max_width = _PAGE_WIDTH - 2 * _MARGIN
        if self.box_width > self.max_width:
            raise CannotRedact("the redaction label is too long to fit on a line")
        self.line: list[_Item] = []
        self.x = 0.0
        self.y = 0.0  # 0 = no page started

    def width_of(self, text: str) -> float:
        return float(self.string_width(text, self.font, _FONT_SIZE))

    def add_text(self, run: str) -> None:
        for token in _TOKEN.findall(run.replace("\t", "    ")):
            width = self.width_of(token)
            if self.x + width <= self.max_width:
                self._append((token, width))
            elif not token.strip():
                self.end_line()  # a wrapping point: the blanks go
            elif width <= self.max_width:
                self.end_line()
                self._append((token, width))
            else:
                for char in token:  # longer than a line: break it anywhere
                    char_width = self.width_of(char)
                    if self.x + char_width > self.max_width:
                        self.end_line()
                    self._append((char, char_width))

    def add_box(self) -> None:
        if self.x + self.box_width > self.max_width:
            self.end_line()
        self.line.append(_BOX)
        self.x += self.box_width

    def _append(self, item: tuple[str, float]) -> None:
        self.line.append(item)
        self.x += item[1]

    def end_line(self) -> None:
        canvas = self.canvas
        if self.y == 0.0 or self.y - _LEADING < _MARGIN:
            if self.y != 0.0:
                canvas.showPage()
            self.y = _PAGE_HEIGHT - _MARGIN
        self.y -= _LEADING
        x = _MARGIN
        pending = ""
        pending_x = x
        for item in self.line:
            if isinstance(item, _Box):
                if pending:
                    self._draw_text(pending_x, pending)
                    pending = ""
                self._draw_box(x)
                x += self.box_width
                pending_x = x
            else:
                pending += item[0]
                x += item[1]
        if pending:
            self._draw_text(pending_x, pending)
        self.line = []
        self.x = 0.0

    def _draw_text(self, x: float, text: str) -> None:
        self.canvas.setFillColorRGB(0, 0, 0)
        self.canvas.setFont(self.font, _FONT_SIZE)
        self.canvas.drawString(x, self.y, text)

    def _draw_box(self, x: float) -> None:
        canvas = self.canvas
        canvas.setFillColorRGB(0, 0, 0)
        canvas.rect(x, self.y - 3.0, self.box_width, _FONT_SIZE + 2.5, stroke=0, fill=1)
        canvas.setFillColorRGB(1, 1, 1)
        canvas.setFont(self.font, _LABEL_SIZE)
        canvas.drawString(x + _BOX_PAD, self.y, self.label)

    def finish(self) -> None:
        if self.line or self.y == 0.0:
            self.end_line()
        self.canvas.showPage()
        self.canvas.save()


def _render(text: str, intervals: Sequence[Interval], out: BinaryIO, font: str, label: str) -> None:
    writer = _Writer(out, font, label)
    position = 0
    for start, end in [*intervals, (len(text), len(text))]:
        for number, line in enumerate(_LINE_BREAK.split(text[position:start])):
            if number:
                writer.end_line()
            writer.add_text(line)
        if start < end:
            writer.add_box()
        position = end
    writer.finish()


# --- the whole job ----------------------------------------------------------------------------


def redact_text(
    source: Path, marks: Sequence[MarkSpec], dest: Path, label: str
) -> RedactionOutcome:
    """Render ``source`` (UTF-8 text) as a new PDF without the marked terms and spans."""
    refuse_kinds(marks, frozenset({"term", "text_span"}), "plain text")
    text = _read_text(source)
    font, shown = _font()
    plan = plan_removals(text, marks, label, shown)
    with atomic_output(dest) as out:
        _render(shown(text), plan.intervals, out, font, label)
    protected: list[tuple[str, str]] = []
    for mark in marks:
        if mark.kind == "term" and mark.term is not None:
            protected.append((mark.code, mark.term))
        elif mark.span is not None:
            removed = text[mark.span[0] : mark.span[1]]
            if len(fold(removed)) >= MIN_TERM_LENGTH:
                protected.append((mark.code, removed))
    return RedactionOutcome(
        media_type="application/pdf",
        suffix=".pdf",
        applied=tuple(
            AppliedMark(mark.code, mark.kind, mark.reason, plan.occurrences[mark.code])
            for mark in marks
        ),
        protected_terms=tuple(protected),
    )
