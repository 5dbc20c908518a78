"""The sign-in and the consent forms work with the keyboard alone: Tab reaches every field and
then the submit button, in reading order, each with a visible focus indicator, and Enter or
Space submits. No mouse, no ``fill`` or ``click``: only ``page.keyboard``.

Screenshots of the focused controls go to ``e2e-artifacts/keyboard/``.
"""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.e2e.browser import (
    Actors,
    Screenshots,
    Server,
    TotpClock,
    expect_flash,
    new_page,
)
from tests.e2e.flows import ask_for_consent, submit_request, take_and_add_candidate

KEYBOARD_USER = "recipient@rcp.example"
REQUESTER = "requester@spr.example"
OFFICER = "officer.two@mechanism.example"
PROVIDER = "provider@counsel.example"
ITEM = "ITM-0027"
ITEM_TITLE = "Checkpoint 7 on the Brenna Vale road"
MAX_TABS = 60

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "(body)";
  const name = (el.labels && el.labels[0] ? el.labels[0].innerText : el.innerText || "").trim();
  return `${el.tagName.toLowerCase()}#${el.id || ""}[${el.getAttribute("type") || ""}] ${name}`;
}"""

# Chromium shows a focus ring only for :focus-visible; the portal's CSS must draw one.
FOCUS_VISIBLE = """() => {
  const el = document.activeElement;
  if (!el || !el.matches(":focus-visible")) return false;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return outline || style.boxShadow !== "none";
}"""


def is_focused(target: Locator) -> bool:
    focused: bool = target.evaluate("el => el === document.activeElement")
    return focused


def tab_to(page: Page, target: Locator) -> list[str]:
    """Press Tab until ``target`` has the focus; return what got the focus on the way."""
    visited: list[str] = []
    for _ in range(MAX_TABS):
        if is_focused(target):
            return visited
        page.keyboard.press("Tab")
        visited.append(page.evaluate(FOCUSED))
    raise AssertionError(f"Tab never reached {target}; focus went through {visited}")


def assert_focus_visible(page: Page) -> None:
    assert page.evaluate(FOCUS_VISIBLE), f"no visible focus on {page.evaluate(FOCUSED)}"


def test_sign_in_with_the_keyboard_alone(
    context: BrowserContext, server: Server, clock: TotpClock
) -> None:
    shots = Screenshots(server.artifacts / "keyboard" / "sign-in")
    login = server.logins[KEYBOARD_USER]
    page = new_page(context)
    page.goto(server.url("/login"))

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    assert_focus_visible(page)

    email = page.get_by_label("E-mail address")
    password = page.get_by_label("Password")
    proceed = page.get_by_role("button", name="Continue")
    tab_to(page, email)
    assert_focus_visible(page)
    page.keyboard.type(login.email)
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.type(login.password)
    page.keyboard.press("Tab")
    expect(proceed).to_be_focused()
    assert_focus_visible(page)
    shots.take(page, "continue button focused")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    code = page.get_by_label("Code", exact=True)
    expect(code).to_be_focused()  # autofocus: the one field of this step
    page.keyboard.type(clock.code(login))
    page.keyboard.press("Tab")
    submit = page.get_by_role("button", name="Sign in")
    expect(submit).to_be_focused()
    assert_focus_visible(page)
    shots.take(page, "sign in button focused")
    page.keyboard.press("Space")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    shots.take(page, "signed in")


def test_grant_consent_with_the_keyboard_alone(actors: Actors, server: Server) -> None:
    shots = Screenshots(server.artifacts / "keyboard" / "consent")
    rfa = submit_request(
        actors.page(REQUESTER), server, "SPR-E2E-KBD", "Photographs of checkpoint 7."
    )
    officer = actors.page(OFFICER)
    take_and_add_candidate(officer, server, rfa, ITEM_TITLE)
    ask_for_consent(officer, server, rfa)

    page = actors.page(PROVIDER)
    page.goto(server.url("/consent"))
    box = page.get_by_role("region", name=re.compile(rfa))
    item = box.get_by_label(re.compile(ITEM))
    conditions = box.get_by_label("Conditions (optional)")
    grant = box.get_by_role("button", name="Grant consent")

    tab_to(page, item)
    assert_focus_visible(page)
    expect(item).to_be_checked()  # every unanswered item is preselected
    page.keyboard.press("Space")
    expect(item).not_to_be_checked()
    page.keyboard.press("Space")
    expect(item).to_be_checked()

    on_the_way = tab_to(page, conditions)
    assert on_the_way == [page.evaluate(FOCUSED)], on_the_way  # the very next stop
    assert_focus_visible(page)
    page.keyboard.type("For criminal proceedings only.")
    tab_to(page, grant)  # through the optional date's fields
    assert_focus_visible(page)
    shots.take(page, "grant button focused")
    page.keyboard.press("Enter")

    expect_flash(page, "Consent granted for 1 item(s)")
    expect(page.get_by_role("region", name=re.compile(rfa))).to_have_count(0)
    shots.take(page, "consent granted")
    page.goto(server.url("/consent/given"))
    history = page.get_by_role("region", name="Consent history, Southport Prosecution Service")
    expect(history).to_contain_text("For criminal proceedings only.")
