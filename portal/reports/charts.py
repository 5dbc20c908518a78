"""Server-rendered horizontal bar charts as SVG strings.

The pages' Content-Security-Policy forbids inline scripts and styles, so charts use
SVG presentation attributes only (``fill=``, ``font-size=``), never ``style=``. Each chart
has a ``<title>`` and ``<desc>`` named by ``aria-labelledby``, each bar its own ``<title>``
with label and value, and the value is printed beside the bar: colour never carries
meaning alone. Pages show the same numbers in a table beside the chart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from portal.documents.fonts import SANS

WIDTH = 640
LABEL_WIDTH = 230
VALUE_WIDTH = 60
BAR_HEIGHT = 22
GAP = 8
TOP = 8
LABEL_MAX = 28
BAR_FILL = "#1d5e8c"
TEXT_FILL = "#1b1f24"
AXIS_FILL = "#6b7580"
FONT = SANS.css  # the period report's PDF draws these charts too
_ID = re.compile(r"[^a-z0-9-]")


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if isinstance(value, float) else str(value)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1].rstrip() + "…"


def bar_chart(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    empty_text: str = "Nothing to show for this period.",
) -> Markup:
    """A horizontal bar chart of ``rows`` (label, value ≥ 0) as inline SVG markup."""
    ident = _ID.sub("-", chart_id.lower()) or "chart"
    suffix = f" {unit}" if unit else ""
    height = TOP * 2 + max(1, len(rows)) * (BAR_HEIGHT + GAP)
    summary = "; ".join(f"{label}: {_number(value)}{suffix}" for label, value in rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'id="{ident}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(summary or empty_text)}</desc>',
    ]
    if not rows:
        parts.append(
            f'<text x="0" y="{TOP + BAR_HEIGHT - 6}" font-family={quoteattr(FONT)} '
            f'font-size="13" fill="{TEXT_FILL}">{escape(empty_text)}</text>'
        )
    biggest = max((value for _, value in rows), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    for index, (label, value) in enumerate(rows):
        y = TOP + index * (BAR_HEIGHT + GAP)
        length = round(span * max(value, 0) / biggest, 1)
        text_y = y + BAR_HEIGHT - 6
        parts.append(
            "<g>"
            f"<title>{escape(f'{label}: {_number(value)}{suffix}')}</title>"
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y}" text-anchor="end" '
            f'font-family={quoteattr(FONT)} font-size="13" fill="{TEXT_FILL}">'
            f"{escape(_short(label))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" '
            f'fill="{BAR_FILL}"/>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{text_y}" font-family={quoteattr(FONT)} '
            f'font-size="13" fill="{TEXT_FILL}">{escape(_number(value))}</text>'
            "</g>"
        )
    parts.append(
        f'<line x1="{LABEL_WIDTH}" y1="{TOP / 2}" x2="{LABEL_WIDTH}" y2="{height - TOP / 2}" '
        f'stroke="{AXIS_FILL}" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
