"""The Figures page for legal officers and administrators, and its period report as PDF
(WeasyPrint, charts embedded as SVG) and CSV.

Views are thin: read the period from the query string, call
:func:`portal.reports.figures.period_figures`, render. A wrong period is a 400 page that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, url_for
from markupsafe import Markup

from portal.authz.permissions import requires
from portal.db import db, utcnow
from portal.documents.html_pdf import html_to_pdf
from portal.pages.forms import query_date
from portal.pages.responses import pdf_download
from portal.reports.charts import bar_chart
from portal.reports.figures import (
    PeriodFigures,
    PeriodInvalid,
    check_period,
    period_figures,
    to_csv,
    year_of,
)
from portal.rfa.requester_views import MECHANISM

bp = Blueprint("reports", __name__, url_prefix="/figures")


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    errors: tuple[str, ...] = ()

    @property
    def args(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _period() -> Period:
    """The period asked for (default: the current calendar year) and what is wrong with it."""
    default_start, default_end = year_of(utcnow().date())
    errors: list[str] = []
    found: dict[str, date] = {}
    for name, default in (("from", default_start), ("to", default_end)):
        which = "start" if name == "from" else "end"
        message = f"Enter the {which} of the period as a date, YYYY-MM-DD."
        found[name] = query_date(name, errors, message) or default
    if not errors:
        try:
            check_period(found["from"], found["to"])
        except PeriodInvalid as exc:
            errors.append(str(exc))
    return Period(found["from"], found["to"], tuple(errors))


def charts(figures: PeriodFigures) -> dict[str, Markup]:
    consent = figures.consent
    return {
        "by_authority": bar_chart(
            "chart-authority",
            "Requests received by authority",
            [(c.label, c.value) for c in figures.received_by_authority],
            unit="requests",
        ),
        "by_state": bar_chart(
            "chart-state",
            "Requests received by State",
            [(c.label, c.value) for c in figures.received_by_state],
            unit="requests",
        ),
        "packages": bar_chart(
            "chart-packages",
            "Packages shared by jurisdiction",
            [(row.state, row.total) for row in figures.packages],
            unit="packages",
        ),
        "consent": bar_chart(
            "chart-consent",
            "Items asked for in consent requests, by answer",
            [
                ("Pending", consent.pending),
                ("Granted", consent.granted),
                ("Declined", consent.declined),
                ("Not answered (request withdrawn)", consent.unanswered),
            ],
            unit="items",
        ),
    }


@bp.get("")
@requires("reports.view")
def index() -> tuple[str, int]:
    period = _period()
    figures = None if period.errors else period_figures(db(), period.start, period.end)
    page = render_template(
        "reports/figures.html",
        period=period,
        figures=figures,
        charts=charts(figures) if figures is not None else {},
        links=export_links(period),
    )
    return page, 400 if period.errors else 200


def _refused(period: Period) -> Response:
    return Response(
        "The period is wrong: " + " ".join(period.errors) + "\n",
        status=400,
        mimetype="text/plain",
    )


def _filename(period: Period, ext: str) -> str:
    return f"figures-{period.start.isoformat()}-to-{period.end.isoformat()}.{ext}"


@bp.get("/report.pdf")
@requires("reports.view")
def report_pdf() -> Response:
    period = _period()
    if period.errors:
        return _refused(period)
    figures = period_figures(db(), period.start, period.end)
    html = render_template(
        "reports/documents/period_report.html",
        figures=figures,
        charts=charts(figures),
        mechanism=MECHANISM,
        generated=utcnow(),
    )
    return pdf_download(html_to_pdf(html), _filename(period, "pdf"))


@bp.get("/report.csv")
@requires("reports.view")
def report_csv() -> Response:
    period = _period()
    if period.errors:
        return _refused(period)
    figures = period_figures(db(), period.start, period.end)
    response = Response(to_csv(figures), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(period, "csv")}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def export_links(period: Period) -> dict[str, str]:
    query = urlencode(period.args)
    return {
        "pdf": f"{url_for('reports.report_pdf')}?{query}",
        "csv": f"{url_for('reports.report_csv')}?{query}",
    }
