"""The documents inside a package and the recall notice.

- the transmittal letter (WeasyPrint, from ``templates/packages/documents/transmittal_letter.html``,
  with the decision PDF's Jinja environment and URL fetcher);
- the custody and redaction log (ReportLab platypus: per item its custody events and the
  redactions applied, by kind, reason and count, never the redacted text);
- the text of a recall notice, which the caller clearsigns.

Both PDFs carry a title and nothing else in their document information (no author,
producer, creator or dates), and are byte-for-byte reproducible from the same facts. They
are written atomically: a reader never sees half a file at ``dest``. Their fonts come from
:mod:`portal.documents.fonts`.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import PDFDictionary, PDFInfo, PDFString
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from portal.config import REPO_ROOT
from portal.documents.fonts import SANS, coverage, reportlab_fonts
from portal.documents.html_pdf import html_to_pdf
from portal.eligibility.decision_pdf import _environment, _when
from portal.packages.assembly.facts import (
    MECHANISM_NAME,
    PROTECTED_IDENTIFIER_REASON,
    TIME_PORTAL_CLOCK,
    TIME_PROVIDER_DECLARED,
    TIME_TSA,
    AppliedMark,
    ItemEntry,
    PackageFacts,
)
from portal.pages import labels
from portal.pages.i18n import DEFAULT_LOCALE, LOCALES, N_, direction, say, translations_for
from portal.redaction.renditions import atomic_output
from portal.registry.openpgp import grouped_fingerprint

__all__ = [
    "CUSTODY_LOG_TITLE",
    "LETTER_TEMPLATE",
    "LETTER_TITLE",
    "DocumentError",
    "NoticeItem",
    "custody_log_pdf",
    "recall_notice_text",
    "render_custody_log",
    "render_transmittal_letter",
    "transmittal_letter_html",
    "transmittal_letter_pdf",
]

LETTER_TEMPLATE = "packages/documents/transmittal_letter.html"
LETTER_TITLE = N_("Transmittal letter")
CUSTODY_LOG_TITLE = "Custody and redaction log"
RENDITION_LABELS = labels.RENDITION
#: The letter's page numbers, said in its language (a CSS ``content`` value is made of it).
PAGE_COUNTER = N_("Page %(page)s of %(pages)s")
_SHORT_DIGEST = 16  # hex digits of a SHA-256 shown in the letter; the manifest has them all


class DocumentError(RuntimeError):
    """A package document could not be made (missing template, bad facts); nothing written."""


# -- shared ---------------------------------------------------------------------------------


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DocumentError(f"{what} must be timezone-aware (UTC), not {moment.isoformat()}")
    return moment.astimezone(UTC)


def _short_digest(sha256: str) -> str:
    return f"{sha256[:8]} {sha256[8:_SHORT_DIGEST]}\N{HORIZONTAL ELLIPSIS}"


def _issuer(mechanism_name: str) -> str:
    """The mechanism's name opening a sentence: "the Mechanism" -> "The Mechanism"."""
    return mechanism_name[:1].upper() + mechanism_name[1:]


def _printable(text: str) -> str:
    """Text as it can be typeset: control characters become spaces, NFC-normalised."""
    cleaned = "".join(
        " " if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") else char for char in text
    )
    return unicodedata.normalize("NFC", cleaned)


def _check_facts(package: PackageFacts, items: Sequence[ItemEntry]) -> None:
    _aware(package.created_at, "package.created_at")
    _aware(package.decided_at, "package.decided_at")
    for index, item in enumerate(items):
        for number, event in enumerate(item.custody):
            _aware(event.at, f"items[{index}].custody[{number}].at")
        if item.consent is not None:
            _aware(item.consent.granted_at, f"items[{index}].consent.granted_at")
            if item.consent.expires_at is not None:
                _aware(item.consent.expires_at, f"items[{index}].consent.expires_at")


# -- fonts ----------------------------------------------------------------------------------

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


@lru_cache(maxsize=8)
def _coverage(fonts: tuple[str, ...]) -> frozenset[int]:
    """The code points every one of ``fonts`` (ReportLab names, from
    :func:`~portal.documents.fonts.reportlab_fonts`) has a glyph for."""
    sets = [frozenset(pdfmetrics.getFont(name).face.charToGlyph) for name in fonts]
    return frozenset.intersection(*sets)


_PRINTABLE_ASCII = frozenset(range(0x20, 0x7F))


@lru_cache(maxsize=8)
def _covers_ascii(coverage: frozenset[int]) -> bool:
    return coverage.issuperset(_PRINTABLE_ASCII)


def _shown(text: str, coverage: frozenset[int], *, bmp_only: bool = False) -> str:
    """``text`` with control characters as spaces and what the font cannot draw as U+FFFD
    ('?' in Latin-1 fonts). A missing glyph would print as an empty box, and text
    extractors (pdfminer, hence the leak check) can lose whole lines around one."""
    if text.isascii() and text.isprintable() and _covers_ascii(coverage):
        return text  # the common case, without a look at every character
    replacement = REPLACEMENT if ord(REPLACEMENT) in coverage else "?"
    return "".join(
        char
        if (ord(char) in coverage and (not bmp_only or ord(char) <= 0xFFFF)) or char.isspace()
        else replacement
        for char in _printable(text)
    )


# -- transmittal letter (WeasyPrint) -----------------------------------------------------------


def _only_title(_document: Any, pdf: Any) -> None:
    """WeasyPrint finisher: keep the title, drop Producer and every other info entry."""
    for key in list(pdf.info):
        if key != "Title":
            del pdf.info[key]


def _finalize(covered: frozenset[int], value: object) -> object:
    """Text the letter's fonts can show (see :func:`_shown`); other values as they are."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    return _shown(value, covered)


def _page_counter(language: str) -> str:
    """CSS ``content`` for "Page 3 of 7" in ``language`` (its words around two counters)."""
    parts = re.split(r"%\((pages?)\)s", translations_for(language).gettext(PAGE_COUNTER))
    css = []
    for index, part in enumerate(parts):
        if index % 2:
            css.append(f"counter({part})")
        elif part:
            quoted = part.replace("\\", "\\\\").replace('"', '\\"')
            css.append(f'"{quoted}"')
    return " ".join(css)


def transmittal_letter_html(
    package: PackageFacts, items: Sequence[ItemEntry], templates_dir: Path
) -> str:
    """The letter's HTML (autoescaped: titles and names are text, never markup), in the
    package's language (English for a language the portal has no catalog for)."""
    _check_facts(package, items)
    language = package.language if package.language in LOCALES else DEFAULT_LOCALE
    environment = _environment(templates_dir)
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_translations(  # type: ignore[attr-defined]  # added by the extension
        translations_for(language), newstyle=True
    )
    environment.policies["ext.i18n.trimmed"] = True  # ids as `make messages` extracts them
    covered = coverage(SANS)
    # Every {{ value }} goes through it; the letter's text is set in the SANS stack.
    environment.finalize = partial(_finalize, covered)
    environment.filters["shown"] = partial(_shown, coverage=covered)
    try:
        template = environment.get_template(LETTER_TEMPLATE)
    except OSError as exc:  # jinja2.TemplateNotFound is an IOError
        raise DocumentError(f"{LETTER_TEMPLATE} not found under {templates_dir}") from exc
    return template.render(
        title=f"{say(language, LETTER_TITLE)} {package.code}",
        lang=language,
        direction=direction(language),
        page_counter=Markup(_page_counter(language)),  # noqa: S704 - made of quoted catalog text
        issuer=_issuer(package.mechanism_name),
        package=package,
        items=items,
        renditions=RENDITION_LABELS,
        short_digest=_short_digest,
        signer=grouped_fingerprint(package.signer_fingerprint),
        recipients=[grouped_fingerprint(fpr) for fpr in package.recipient_fingerprints],
        conditions=[
            (item.code, item.consent.conditions)
            for item in items
            if item.consent is not None and item.consent.conditions.strip()
        ],
    )


def transmittal_letter_pdf(
    package: PackageFacts, items: Sequence[ItemEntry], templates_dir: Path
) -> bytes:
    """The letter as PDF bytes (nothing fetched, title-only document information)."""
    return html_to_pdf(transmittal_letter_html(package, items, templates_dir), finisher=_only_title)


def render_transmittal_letter(
    package: PackageFacts,
    items: Sequence[ItemEntry],
    dest: Path,
    *,
    templates_dir: Path | None = None,
) -> None:
    """Write the transmittal letter to ``dest``.

    ``templates_dir`` is ``settings.templates_dir`` (default: the repository's templates/).
    """
    directory = REPO_ROOT / "templates" if templates_dir is None else templates_dir
    pdf = transmittal_letter_pdf(package, items, directory)
    with atomic_output(dest) as out:
        out.write(pdf)


# -- custody and redaction log (ReportLab) -----------------------------------------------------


class _TitleOnlyInfo(PDFInfo):  # type: ignore[misc]  # reportlab has no type hints
    """Document information with the title alone (ReportLab writes author, producer, dates...)."""

    def format(self, document: Any) -> Any:
        return PDFDictionary({"Title": PDFString(self.title)}).format(document)


class _LogCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
    """Keeps pages until the end to print "page N of M", and writes a title-only info."""

    def __init__(self, *args: Any, footer: str, font: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._doc.info = _TitleOnlyInfo()
        self._footer = footer
        self._footer_font = font
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # ReportLab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(self._footer_font, 7.5)
            self.setFillColor(colors.HexColor("#4a5360"))
            self.drawString(18 * mm, 10 * mm, self._footer)
            self.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


_SOFT_HYPHEN = "\N{SOFT HYPHEN}"
_CELL_PADDING = 3  # points left and right of the text in a log table's cell
_FACT_RIGHT_PADDING = 6  # points right of a label or value of the facts tables


def _font(start: tuple[int, int], stop: tuple[int, int], style: ParagraphStyle) -> tuple[Any, ...]:
    """The TableStyle command that sets the plain string cells from ``start`` to ``stop`` as
    a Paragraph in ``style`` is set (font, size, leading)."""
    return ("FONT", start, stop, style.fontName, style.fontSize, style.leading)


class _Log:
    """Builds the flowables of the log; one instance per rendering."""

    def __init__(self) -> None:
        fonts = reportlab_fonts()
        regular, bold, mono = fonts.regular, fonts.bold, fonts.mono
        self.regular = regular
        base = ParagraphStyle("base", fontName=regular, fontSize=8.5, leading=11, alignment=TA_LEFT)
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5)
        self.code = ParagraphStyle("code", parent=self.small, fontName=mono, wordWrap="CJK")
        self.head = ParagraphStyle("head", parent=base, fontName=bold, fontSize=7.5, leading=9.5)
        self.h1 = ParagraphStyle("h1", parent=base, fontName=bold, fontSize=15, leading=19)
        self.h2 = ParagraphStyle(
            "h2", parent=base, fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=3
        )
        self.h3 = ParagraphStyle(
            "h3", parent=base, fontName=bold, fontSize=9, leading=12, spaceBefore=4, spaceAfter=2
        )

    def plain(self, value: str, font: str | None = None) -> str:
        """``value`` as ``font`` (default: the regular one) can draw it, not parsed as markup.

        ReportLab maps characters beyond the BMP wrongly in the text layer, so they are
        replaced too: the text extracted from the log is the text shown.
        """
        return _shown(value, _coverage((font or self.regular,)), bmp_only=True)

    def text(self, value: str, font: str | None = None) -> str:
        """``value`` for a Paragraph, which reads markup: escaped, so '<' stays text."""
        return escape(self.plain(value, font))

    def para(self, value: str, style: ParagraphStyle | None = None) -> Paragraph:
        chosen = style or self.body
        return Paragraph(self.text(value, chosen.fontName), chosen)

    def cell(self, value: str, style: ParagraphStyle, width: float) -> str | Paragraph:
        """``value`` for a table cell with ``width`` points for text: the plain string where
        it fits on one line as a Paragraph would set it, else a Paragraph, which wraps.

        Why: a Paragraph parses markup and breaks lines, a string is one ``drawString``;
        Paragraphs made 0.9 s of the CPU of a 134-item log (issue 23), most of them codes,
        dates and names that fit. The table draws a string cell in the font its style gives
        that cell (:func:`_font`), so both look the same."""
        shown = self.plain(value, style.fontName)
        if not shown:
            return shown
        # Single spaces only, none at either end (a Paragraph collapses or drops others),
        # and no soft hyphen (a Paragraph shows one only where it breaks the line there).
        if (
            shown.split() == shown.split(" ")
            and _SOFT_HYPHEN not in shown
            and pdfmetrics.stringWidth(shown, style.fontName, style.fontSize) <= width
        ):
            return shown
        return Paragraph(escape(shown), style)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
    ) -> Table:
        """A table of text: a heading row in the heading style, rows in the small style."""
        text = [width - 2 * _CELL_PADDING for width in widths]
        data = [
            [self.cell(value, self.head, room) for value, room in zip(header, text, strict=True)],
            *(
                [self.cell(value, self.small, room) for value, room in zip(row, text, strict=True)]
                for row in rows
            ),
        ]
        table = Table(data, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    _font((0, 0), (-1, 0), self.head),
                    _font((0, 1), (-1, -1), self.small),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#6b7580")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ebef")),
                    ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
                    ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
                    ("TOPPADDING", (0, 0), (-1, -1), 2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        return table

    def facts(self, rows: Sequence[tuple[str, str, bool]]) -> Table:
        """Label / value pairs; ``True`` sets the value in the monospace style."""
        label_width, value_width = 38 * mm, 136 * mm
        styles = [self.code if mono else self.small for _label, _value, mono in rows]
        data = [
            [
                self.cell(label, self.head, label_width - _FACT_RIGHT_PADDING),
                self.cell(value, style, value_width - _FACT_RIGHT_PADDING),
            ]
            for (label, value, _mono), style in zip(rows, styles, strict=True)
        ]
        table = Table(data, colWidths=[label_width, value_width], hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    _font((0, 0), (0, -1), self.head),
                    *(_font((1, row), (1, row), style) for row, style in enumerate(styles)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), _FACT_RIGHT_PADDING),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ]
            )
        )
        return table


def _package_section(log: _Log, package: PackageFacts) -> list[Flowable]:
    return [
        log.para(f"{CUSTODY_LOG_TITLE} \N{EM DASH} {package.code}", log.h1),
        Spacer(1, 3 * mm),
        log.facts(
            [
                ("Package", package.code, False),
                ("Created", _when(package.created_at), False),
                ("Issued by", package.mechanism_name, False),
                ("Authority", f"{package.authority_name} ({package.authority_code})", False),
                ("Request", package.rfa_reference, False),
                ("Their reference", package.authority_reference, False),
                ("Decision", package.decision_id, True),
                ("Policy", f"{package.policy_id}, revision {package.policy_revision}", False),
                ("Signing key", grouped_fingerprint(package.signer_fingerprint), True),
            ]
        ),
        Spacer(1, 2 * mm),
        log.para(
            "For every item: the events of its chain of custody, in date order with the "
            "source of each time, and the redactions applied before sharing: by kind, reason "
            "and number, and mark by mark with where it applied and the two legal officers "
            "who proposed and confirmed it. The redacted content itself is in no file of this "
            "package.",
            log.small,
        ),
    ]


def _item_section(log: _Log, item: ItemEntry) -> list[Flowable]:
    rendition = RENDITION_LABELS.get(item.rendition, item.rendition)
    heading = log.para(f"{item.code} \N{EM DASH} {item.title}", log.h2)
    facts = log.facts(
        [
            ("Provider", item.provider, False),
            ("Kind", item.kind, False),
            ("Shared", f"{rendition}, {item.media_type}, {item.size} bytes", False),
            ("File", item.path, True),
            ("SHA-256 (shared)", item.sha256, True),
            ("SHA-256 (source)", f"{item.source_sha256} ({item.source_media_type})", True),
            ("Consent", _consent_line(item), False),
        ]
    )
    parts: list[Flowable] = [KeepTogether([heading, facts])]
    parts.append(log.para("Custody", log.h3))
    if item.custody:
        rows = [
            [
                _when(event.at),
                event.event,
                event.by,
                event.details,
                TIME_SOURCE_LABELS.get(event.time_source, event.time_source),
            ]
            for event in item.custody
        ]
        widths = (30 * mm, 32 * mm, 32 * mm, 50 * mm, 30 * mm)
        columns = ("When", "Event", "By", "Details", "Time from")
        parts.append(log.table(columns, rows, widths))
    else:
        parts.append(log.para("No custody events recorded.", log.small))
    parts.append(log.para("Redactions applied", log.h3))
    if item.redactions:
        rows = [[summary.kind, summary.reason, str(summary.count)] for summary in item.redactions]
        parts.append(log.table(("Kind", "Reason", "Count"), rows, (34 * mm, 122 * mm, 18 * mm)))
    else:
        parts.append(log.para("None: shared without redaction.", log.small))
    if item.marks:
        parts.append(log.para("Marks applied", log.h3))
        rows = [list(_mark_cells(mark)) for mark in item.marks]
        heads = ("Mark", "Kind", "Where", "Hits", "Reason", "Proposed by", "Confirmed by")
        sizes = (26 * mm, 18 * mm, 34 * mm, 12 * mm, 40 * mm, 22 * mm, 22 * mm)
        parts.append(log.table(heads, rows, sizes))
    return parts


#: How the log names the source of a custody event's time.
TIME_SOURCE_LABELS = {
    TIME_PORTAL_CLOCK: "portal clock (NTP-synchronised host)",
    TIME_PROVIDER_DECLARED: "declared by the provider",
    TIME_TSA: "time-stamping authority (RFC 3161)",
}


def _mark_cells(mark: AppliedMark) -> tuple[str, ...]:
    """A mark as the log shows it: never what it removed."""
    where = []
    if mark.page is not None:
        where.append(f"page {mark.page}")
    if mark.box is not None:
        where.append("box " + ", ".join(f"{value:.3f}" for value in mark.box))
    if mark.pages and mark.page is None:
        where.append("pages " + ", ".join(f"{page} ({hits})" for page, hits in mark.pages[:20]))
    none = "\N{EN DASH}"
    return (
        mark.code,
        mark.kind,
        "; ".join(where) or none,
        str(mark.hits),
        mark.reason,
        mark.proposed_by or (none if mark.reason != PROTECTED_IDENTIFIER_REASON else "register"),
        mark.confirmed_by or (none if mark.reason != PROTECTED_IDENTIFIER_REASON else "register"),
    )


def _consent_line(item: ItemEntry) -> str:
    consent = item.consent
    if consent is None:
        return "\N{EN DASH}"
    line = f"{consent.event_code} ({consent.kind}), granted {_when(consent.granted_at)}"
    if consent.expires_at is not None:
        line += f", expires {_when(consent.expires_at)}"
    if consent.conditions.strip():
        line += f". Conditions: {consent.conditions}"
    return line


def custody_log_pdf(package: PackageFacts, items: Sequence[ItemEntry]) -> bytes:
    """The custody and redaction log as PDF bytes (reproducible: ReportLab invariant mode)."""
    _check_facts(package, items)
    log = _Log()
    story = _package_section(log, package)
    for item in items:
        story.extend(_item_section(log, item))
    buffer = io.BytesIO()
    title = f"{CUSTODY_LOG_TITLE} {package.code}"
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=log.plain(title),
        invariant=1,
        pageCompression=1,
    )
    footer = log.plain(f"{package.code} \N{MIDDLE DOT} {CUSTODY_LOG_TITLE}")
    canvasmaker: Callable[..., Canvas] = partial(_LogCanvas, footer=footer, font=log.regular)
    document.build(story, canvasmaker=canvasmaker)
    return buffer.getvalue()


def render_custody_log(package: PackageFacts, items: Sequence[ItemEntry], dest: Path) -> None:
    """Write the custody and redaction log to ``dest``."""
    pdf = custody_log_pdf(package, items)
    with atomic_output(dest) as out:
        out.write(pdf)


# -- recall notice ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeItem:
    """An item a recall notice withdraws, as the package holds it."""

    code: str
    title: str
    path: str  # in the bag
    sha256: str  # of the file shared (the redacted rendition, or the original as it is)


def recall_notice_text(
    *,
    package_code: str,
    authority_name: str,
    reason: str,
    issued_at: datetime,
    mechanism_name: str = MECHANISM_NAME,
    package_sha256: str | None = None,
    items: Sequence[NoticeItem] = (),
    kept: int = 0,
) -> str:
    """The text of a recall notice, for the caller to clearsign.

    With ``items``, the notice withdraws those items only (``kept`` others of the package
    stay shareable under their conditions); without, the whole package. ``package_sha256``
    (of the encrypted file) lets a recipient check the notice against the package it holds
    (``portal-verify --recall``). Lines are stripped of trailing spaces and control characters
    (a clearsigned text ignores trailing whitespace, so what is signed is exactly what is
    shown).
    """
    if not reason.strip():
        raise DocumentError("a recall notice needs a reason")
    when = _when(_aware(issued_at, "issued_at"))
    issuer = _issuer(mechanism_name)
    code = _printable(package_code)
    reason_lines = [_printable(line).rstrip() for line in reason.strip().splitlines()]
    lines = [
        "RECALL NOTICE",
        "",
        f"Package:   {code}",
        *([f"Package SHA-256: {_printable(package_sha256)}"] if package_sha256 else []),
        f"To:        {_printable(authority_name)}",
        f"From:      {_printable(issuer)}",
        f"Issued:    {when}",
        "",
    ]
    if items:
        count = f"{len(items)} item{'' if len(items) == 1 else 's'}"
        lines += [
            f"{issuer} withdraws {count} of package {code},",
            f"which it transmitted to {_printable(authority_name)}:",
            "",
        ]
        for item in items:
            lines += [
                f"Withdrawn item: {_printable(item.code)}",
                f"  Title:   {_printable(item.title)}",
                f"  Path:    {_printable(item.path)}",
                f"  SHA-256: {_printable(item.sha256)}",
                "",
            ]
        lines += (
            [
                f"The other {kept} item{'' if kept == 1 else 's'} of the package "
                f"remain{'s' if kept == 1 else ''} shareable under",
                "the conditions they were shared with.",
                "",
            ]
            if kept
            else ["No other item of the package remains shareable.", ""]
        )
    else:
        lines += [
            f"{issuer} recalls package {code}, which it transmitted to",
            f"{_printable(authority_name)}.",
            "",
        ]
    what = "the withdrawn items" if items else "this package"
    lines += [
        "Reason:",
        *(f"  {line}" if line else "" for line in reason_lines),
        "",
        "You are asked to:",
        "",
        f"1. Stop using the material of {what} at once, and share none of it.",
        (
            "2. Return or destroy every copy of the withdrawn items (decrypted copies,"
            if items
            else "2. Return the package, or destroy every copy of it and of the material in it"
        ),
        (
            "   extracts, prints and backups)."
            if items
            else "   (the encrypted file, decrypted copies, extracts, prints and backups)."
        ),
        "3. Acknowledge this notice in the Sharing Portal, stating whether the copies",
        "   were returned or destroyed, and when.",
        "",
        f"This notice is signed with the signing key of {mechanism_name}. Check the",
        "signature and the signer's fingerprint before acting on it.",
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
