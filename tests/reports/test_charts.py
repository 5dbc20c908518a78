"""Server-rendered SVG bar charts: well-formed, accessible, escaped, no script or style."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from portal.reports.charts import LABEL_WIDTH, WIDTH, bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output


def test_chart_is_accessible_and_carries_values_as_text() -> None:
    svg = parse(bar_chart("c1", "Requests by State", [("XN", 4), ("YS", 2)], unit="requests"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c1-title c1-desc"
    assert svg.findtext(f"{SVG}title") == "Requests by State"
    assert svg.findtext(f"{SVG}desc") == "XN: 4 requests; YS: 2 requests"
    groups = svg.findall(f"{SVG}g")
    assert [g.findtext(f"{SVG}title") for g in groups] == ["XN: 4 requests", "YS: 2 requests"]
    texts = [[t.text for t in g.findall(f"{SVG}text")] for g in groups]
    assert texts == [["XN", "4"], ["YS", "2"]]  # label and value printed, not only colour


def test_bars_are_proportional_to_the_largest_value() -> None:
    svg = parse(bar_chart("c", "t", [("a", 10), ("b", 5), ("c", 0)]))
    widths = [float(r.get("width", "")) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] > 0 and widths[1] == widths[0] / 2 and widths[2] == 0
    assert all(float(r.get("x", "")) == LABEL_WIDTH for r in svg.iter(f"{SVG}rect"))
    assert max(widths) <= WIDTH - LABEL_WIDTH


def test_hostile_labels_are_escaped_and_nothing_runs() -> None:
    label = '<script>alert("x")</script> & "quotes" \u202e'
    markup = str(bar_chart('id" onload="x', f"Title <b>{label}", [(label, 3)]))
    svg = parse(markup)  # still well-formed XML
    assert "<script" not in markup and "onload=" not in markup.replace('id="id--onload--x"', "")
    assert "style=" not in markup
    assert svg.findtext(f"{SVG}title") == f"Title <b>{label}"
    (group,) = svg.findall(f"{SVG}g")
    assert group.findtext(f"{SVG}title") == f"{label}: 3"


def test_long_labels_are_shortened_but_kept_whole_in_the_title() -> None:
    label = "International Crimes Division of a very long-named national court"
    svg = parse(bar_chart("c", "t", [(label, 1)]))
    (group,) = svg.findall(f"{SVG}g")
    shown = group.findall(f"{SVG}text")[0].text or ""
    assert shown.endswith("…") and len(shown) <= 28
    assert group.findtext(f"{SVG}title") == f"{label}: 1"


def test_an_empty_chart_says_so() -> None:
    svg = parse(bar_chart("c", "Nothing", []))
    assert svg.findtext(f"{SVG}desc") == "Nothing to show for this period."
    assert list(svg.iter(f"{SVG}rect")) == []


def test_fractions_are_shown_with_one_decimal() -> None:
    svg = parse(bar_chart("c", "Median days", [("median", 10.25), ("whole", 4.0)], unit="days"))
    assert [g.findtext(f"{SVG}title") for g in svg.findall(f"{SVG}g")] == [
        "median: 10.2 days",
        "whole: 4 days",
    ]
