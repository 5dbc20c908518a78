"""Plain text → a new PDF (WeasyPrint) with the protected terms and spans taken out first.

The removed characters never reach the renderer: each removed run is replaced by a black
box of fixed width carrying the label (the width does not depend on what was removed, so
the box does not tell how long a name was). Input must be UTF-8 (a leading BOM is
dropped); anything else is refused rather than guessed, because a wrong guess could
garble a name so that its term no longer matches. Span offsets count characters of the
text decoded that way, line endings as they are in the file.

The text is typeset by :mod:`portal.redaction.typeset` (WeasyPrint/Pango: Arabic joined
and right to left, Burmese shaped; a character no installed font can draw is refused,
never printed as an empty box; no document information).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from portal.redaction.matcher import Matcher
from portal.redaction.renditions import (
    MIN_TERM_LENGTH,
    AppliedMark,
    CannotRedact,
    MarkSpec,
    RedactionOutcome,
    atomic_output,
    fold,
    refuse_kinds,
    term_matcher,
)
from portal.redaction.typeset import shown, typeset

__all__ = ["MAX_TEXT_BYTES", "RemovalPlan", "plan_removals", "redact_text"]

MAX_TEXT_BYTES = 8 * 1024 * 1024

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
    matcher: Matcher | None = None,
) -> RemovalPlan:
    """Every span and every occurrence of every term, plus whatever a term would form
    anew with a neighbouring label (checked until the shown text holds no term at all).
    ``matcher``: prebuilt for some of the term marks (see :func:`term_matcher`)."""
    intervals: list[Interval] = []
    occurrences: dict[str, int] = {}
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
            occurrences[mark.code] = 0
    terms = term_matcher(marks, matcher)
    for hit in terms.locate(text):
        intervals.append((hit.start, hit.end))
        occurrences[hit.code] += 1
    merged = _merge(intervals, text)
    while True:
        chars, shown_origins = _as_shown(text, merged, label, shown)
        extra: list[Interval] = []
        for hit in terms.locate("".join(chars)):
            covered = {shown_origins[index] for index in range(hit.start, hit.end)}
            covered.discard(-1)
            if not covered:
                raise CannotRedact(f"mark {hit.code}: the term occurs in the redaction label")
            extra.append((min(covered), max(covered) + 1))
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


# --- the whole job ----------------------------------------------------------------------------


def redact_text(
    source: Path,
    marks: Sequence[MarkSpec],
    dest: Path,
    label: str,
    *,
    matcher: Matcher | None = None,
) -> RedactionOutcome:
    """Render ``source`` (UTF-8 text) as a new PDF without the marked terms and spans."""
    refuse_kinds(marks, frozenset({"term", "text_span"}), "plain text")
    text = _read_text(source)
    plan = plan_removals(text, marks, label, shown, matcher)
    pdf = typeset(shown(text), plan.intervals, label)
    with atomic_output(dest) as out:
        out.write(pdf)
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
