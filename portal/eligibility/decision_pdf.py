"""The decision as a PDF (WeasyPrint, from ``templates/eligibility/documents/decision.html``).

The template is rendered with its own Jinja environment (no Flask needed, so the CLI can
export too). Nothing is fetched while rendering: every URL is refused, the stylesheet is
in the template. The document metadata is fixed by the decision itself (title, author,
dates = when the decision was taken), not by the time of export.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal.documents.fonts import PDF_FONTS
from portal.documents.html_pdf import html_to_pdf
from portal.eligibility.decision_view import DecisionView

__all__ = ["TEMPLATE", "DecisionPdfError", "decision_pdf", "decision_pdf_filename"]

TEMPLATE = "eligibility/documents/decision.html"
AUTHOR = "Sharing Portal"


class DecisionPdfError(RuntimeError):
    """The PDF could not be rendered (e.g. the template is missing)."""


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "\N{EN DASH}"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["pdf_fonts"] = PDF_FONTS  # the CSS font stacks (portal.documents.fonts)
    return env


def decision_html(view: DecisionView, templates_dir: Path) -> str:
    """The print template rendered for ``view`` (every row of it)."""
    try:
        template = _environment(templates_dir).get_template(TEMPLATE)
    except OSError as exc:  # jinja2.TemplateNotFound is an IOError
        raise DecisionPdfError(f"{TEMPLATE} not found under {templates_dir}") from exc
    return template.render(
        view=view,
        author=AUTHOR,
        created=view.taken_at.astimezone(UTC).isoformat(timespec="seconds"),
    )


def decision_pdf(view: DecisionView, templates_dir: Path) -> bytes:
    """The PDF of ``view`` (render it with every row: the PDF is the whole decision)."""
    return html_to_pdf(decision_html(view, templates_dir))


def decision_pdf_filename(view: DecisionView) -> str:
    """``decision-<rfa code>-<decision id>.pdf`` (ASCII: codes and UUIDs only)."""
    safe = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in view.result.rfa
    )
    return f"decision-{safe}-{view.decision_id}.pdf"
