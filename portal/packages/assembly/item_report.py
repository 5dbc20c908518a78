"""What assembly did to one item, as stored on ``package_item.report`` and shown on the
package page: the marks applied with their counts (per page where the redactor knows pages),
the protected identifiers found in the item before it was redacted (by code), what was
stripped, and what blocked the package (among it, the item's confirmed term marks that
matched nothing and no legal officer has checked by eye yet).

Codes and plain descriptions only: never a protected term or an identifier's value (the
report is stored, shown and may be read by anyone who sees the package page).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from portal.redaction.leakcheck import OCR_DOUBT

__all__ = [
    "GPS_REMOVED",
    "IMAGE_STRIPPED",
    "PDF_STRIPPED",
    "TEXT_STRIPPED",
    "ItemReport",
    "MarkCount",
    "stripped_for",
]

#: What a rendition leaves behind, by the source's media type (see portal.redaction).
IMAGE_STRIPPED = (
    "metadata removed (EXIF, XMP, IPTC, comments, text chunks, colour profile)",
    "image re-encoded from its pixels",
)
PDF_STRIPPED = (
    "pages rasterised: text layer, document information, XMP, annotations, form fields, "
    "attachments and scripts removed",
)
TEXT_STRIPPED = ("re-typeset as a new PDF (no metadata)",)
GPS_REMOVED = "GPS position or place removed"


def stripped_for(media_type: str) -> tuple[str, ...]:
    """What a redacted rendition of a source of ``media_type`` (base type) strips."""
    if media_type.startswith("image/"):
        return IMAGE_STRIPPED
    if media_type == "application/pdf":
        return PDF_STRIPPED
    return TEXT_STRIPPED


@dataclass(frozen=True)
class MarkCount:
    """One mark (or withheld identifier, named by its code) and where it was applied."""

    code: str
    kind: str
    reason: str
    count: int
    pages: tuple[tuple[int, int], ...] = ()  # (page, count), 1-based; empty when unknown


@dataclass(frozen=True)
class ItemReport:
    marks: tuple[MarkCount, ...] = ()
    # (identifier code, layer) found in the item as registered: why an item planned as-is
    # was redacted instead
    found: tuple[tuple[str, str], ...] = ()
    stripped: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    # the item's own confirmed term marks that matched nothing in it: not yet checked by eye
    # (they block the package), and checked by eye by a legal officer (accepted)
    unmatched: tuple[str, ...] = ()
    checked_by_eye: tuple[str, ...] = ()
    # OCR could not be trusted on some of the item's pixels and no legal officer has read it
    # yet (it blocks the package); a legal officer has read its pixels (accepted)
    ocr_doubt: bool = False
    pixels_checked_by_eye: bool = False

    def blocked_by(self, hits: Iterable[tuple[str, str]], unreadable: Sequence[str]) -> ItemReport:
        """This report with what the leak check found in the item's file: (code, layer)
        hits and the reasons it could not be read."""
        lines = [f"{code} found ({where})" for code, where in sorted(set(hits))]
        lines.extend(f"not readable: {reason}" for reason in unreadable)
        doubt = any(OCR_DOUBT in reason for reason in unreadable)
        return replace(self, blocked=tuple(lines), ocr_doubt=doubt)

    def to_json(self) -> dict[str, object]:
        return {
            "marks": [
                {
                    "code": mark.code,
                    "kind": mark.kind,
                    "reason": mark.reason,
                    "count": mark.count,
                    "pages": [[page, count] for page, count in mark.pages],
                }
                for mark in self.marks
            ],
            "found": [{"code": code, "where": where} for code, where in self.found],
            "stripped": list(self.stripped),
            "blocked": list(self.blocked),
            "unmatched": list(self.unmatched),
            "checked_by_eye": list(self.checked_by_eye),
            "ocr_doubt": self.ocr_doubt,
            "pixels_checked_by_eye": self.pixels_checked_by_eye,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> ItemReport:
        """The stored report (an empty one for None or anything malformed)."""
        if not isinstance(data, Mapping):
            return cls()
        marks = []
        for mark in _list(data.get("marks")):
            if isinstance(mark, Mapping):
                pages = tuple(
                    (int(pair[0]), int(pair[1]))
                    for pair in _list(mark.get("pages"))
                    if isinstance(pair, list) and len(pair) == 2
                )
                marks.append(
                    MarkCount(
                        code=str(mark.get("code", "")),
                        kind=str(mark.get("kind", "")),
                        reason=str(mark.get("reason", "")),
                        count=int(str(mark.get("count", 0))),
                        pages=pages,
                    )
                )
        found = tuple(
            (str(hit.get("code", "")), str(hit.get("where", "")))
            for hit in _list(data.get("found"))
            if isinstance(hit, Mapping)
        )
        return cls(
            marks=tuple(marks),
            found=found,
            stripped=tuple(str(line) for line in _list(data.get("stripped"))),
            blocked=tuple(str(line) for line in _list(data.get("blocked"))),
            unmatched=tuple(str(code) for code in _list(data.get("unmatched"))),
            checked_by_eye=tuple(str(code) for code in _list(data.get("checked_by_eye"))),
            ocr_doubt=data.get("ocr_doubt") is True,
            pixels_checked_by_eye=data.get("pixels_checked_by_eye") is True,
        )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
