"""Redaction review in a real browser, under the portal's real CSP: officer one opens a PDF of
a request, waits for its page image (rendered by the worker), proposes a term and draws a box
with the mouse (``static/js/review.js`` fills the form); officer two confirms both at once.

Screenshots go to ``e2e-artifacts/review/``.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser import Actors, Screenshots, Server, expect_flash, page_image_on_screen

FIRST = "officer.one@mechanism.example"
SECOND = "officer.two@mechanism.example"
PAGE = "/review/RFA-2025-0041/items/ITM-0013"  # a one-page PDF with two marks (M1, M2)


def test_two_officers_mark_a_page_and_confirm_in_the_browser(
    actors: Actors, server: Server
) -> None:
    shots = Screenshots(server.artifacts / "review")
    one = actors.page(FIRST)
    errors: list[str] = []
    one.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    one.goto(server.url(PAGE))
    expect(one.get_by_role("heading", level=1)).to_contain_text("Review ITM-0013")

    one.get_by_label("Term", exact=True).fill("admissions register")
    one.locator("#term-reason").select_option(label="Identifies a source")
    one.get_by_role("button", name="Propose the term").click()
    expect_flash(one, re.compile(r"Mark M3 proposed: \d+ hit"))

    box = page_image_on_screen(one, one.locator("#page-1 img.page-image"))
    one.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.2 * box["height"])
    one.mouse.down()
    one.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.25 * box["height"], steps=5)
    one.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.3 * box["height"], steps=5)
    one.mouse.up()
    for name, expected in (("x0", 0.1), ("y0", 0.2), ("x1", 0.4), ("y1", 0.3)):
        value = float(one.locator(f"#box-{name}").input_value())
        assert abs(value - expected) < 0.01, (name, value)
    expect(one.locator("#box-reason")).to_be_focused()
    shots.take(one, "box-drawn")
    one.get_by_role("button", name="Propose the box").click()
    expect_flash(one, "Box M4 proposed")
    expect(one.get_by_role("button", name="Confirm M3")).to_have_count(0)  # not for the proposer
    assert not errors, errors

    two = actors.page(SECOND)
    two.goto(server.url(PAGE))
    expect(two.locator('rect[data-mark="M4"].overlay-mark--pending')).to_have_count(1)
    two.get_by_role("button", name="Confirm all pending marks I looked at").click()
    expect_flash(two, "Confirmed: M3, M4.")
    expect(two.locator('rect[data-mark="M4"].overlay-mark--confirmed')).to_have_count(1)
    shots.take(two, "confirmed")
    one.close()
    two.close()
