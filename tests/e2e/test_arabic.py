"""A provider answers a consent request in Arabic and in Burmese in a real browser (issue 21).

The browser asks for the language (``Accept-Language``: ``ar-SY``, ``my-MM``); the sign-in, the
consent requests and the consents given answer in it (right to left in Arabic, the main
column on the right); the self-hosted Noto face is actually loaded (``document.fonts``). Each
reader of the demo's Kallavar Families Network answers the consent request waiting for it —
granted in Arabic, declined in Burmese — sees the translated confirmation, and the request is
answered: gone from the inbox, its item's consent on the consents page. Every page is
inspected at 1280 and 390 px (``tests/e2e/layout.py``: screenshots kept in
``e2e-artifacts/languages/``, no sideways scroll on a phone, axe-core without a serious or
critical violation).

The network, its two readers and its two requests exist for this test only
(``portal.demo.dataset.FAMILIES``): answering them changes nothing the journey, accessibility
or keyboard tests use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from portal.demo.dataset import FAMILIES_REQUESTS
from portal.pages.i18n import say
from tests.e2e.browser import Server, TotpClock
from tests.e2e.layout import Inspector, with_axe

#: How the page sees itself: direction, language, the script's face loaded, sideways overflow.
_LAYOUT = """async (family) => {
  await document.fonts.ready;
  const root = document.documentElement;
  const faces = [...document.fonts].filter((face) => face.family.includes(family));
  const sample = family === "Portal Arabic" ? "\\u0628" : "\\u1000";
  return {
    dir: root.dir,
    lang: root.lang,
    computedDir: getComputedStyle(document.body).direction,
    loaded: faces.some((face) => face.status === "loaded"),
    draws: document.fonts.check(`16px "${family}"`, sample),
    overflow: root.scrollWidth - root.clientWidth,
    mainRight: document.querySelector("main").getBoundingClientRect().right,
    width: root.clientWidth,
  };
}"""


@dataclass(frozen=True)
class Reader:
    """One reader of the families' network, the language of their browser, and what they do
    with the consent request waiting for them."""

    locale: str
    lang: str
    direction: str
    email: str
    rfa: str
    item: str
    action: str  # grant | decline
    text: str  # the conditions of a grant, or the reason of a decline
    face: str


READERS = (
    Reader(
        "ar-SY",
        "ar",
        "rtl",
        "provider.ar@kfn.example",
        FAMILIES_REQUESTS[0],
        "ITM-0035",
        "grant",
        "للاستخدام في الإجراءات الجنائية فقط، دون نشر أسماء العائلات.",
        "Portal Arabic",
    ),
    Reader(
        "my-MM",
        "my",
        "ltr",
        "provider.my@kfn.example",
        FAMILIES_REQUESTS[1],
        "ITM-0036",
        "decline",
        "မိခင်ထံမှ ခွင့်ပြုချက် မရသေးပါ။",
        "Portal Myanmar",
    ),
)


def _check_layout(page: Page, reader: Reader) -> None:
    """At both widths: the page's language and direction, the web font (not a system one,
    never tofu), no sideways scroll, and in Arabic the main column on the right."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        seen = page.evaluate(_LAYOUT, reader.face)
        assert (seen["dir"], seen["lang"], seen["computedDir"]) == (
            reader.direction,
            reader.lang,
            reader.direction,
        ), seen
        assert seen["loaded"] and seen["draws"], seen
        assert seen["overflow"] <= 0, f"scrolls sideways at {width} px: {seen}"
        if reader.direction == "rtl":  # the main column starts on the right
            assert seen["width"] - seen["mainRight"] < seen["width"] / 4, seen
    page.set_viewport_size({"width": 1280, "height": 900})


def _sign_in(page: Page, server: Server, clock: TotpClock, reader: Reader) -> None:
    """Both steps by their fields (the labels are in the reader's language)."""
    login = server.logins[reader.email]
    page.locator("#email").fill(login.email)
    page.locator("#password").fill(login.password)
    page.locator("form button[type=submit]").click()
    page.locator("#code").fill(clock.code(login))
    page.locator("form button[type=submit]").click()
    expect(page.locator("main h1")).to_be_visible()


@pytest.mark.parametrize("reader", READERS, ids=[reader.lang for reader in READERS])
def test_a_provider_answers_a_consent_request_in_arabic_and_in_burmese(
    browser: Browser, server: Server, clock: TotpClock, reader: Reader
) -> None:
    lang = reader.lang
    context = with_axe(
        browser.new_context(locale=reader.locale, viewport={"width": 1280, "height": 900})
    )
    inspector = Inspector(server.artifacts / "languages" / lang)
    try:
        page = inspector.watch(context.new_page(), reader.email)
        page.set_default_timeout(15_000)
        page.goto(server.url("/login"))
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("html")).to_have_attribute("dir", reader.direction)
        expect(page.get_by_role("heading", level=1)).to_have_text(
            say(lang, "Sign in to the Sharing Portal")
        )
        inspector.take(page, f"sign-in {lang}")
        _sign_in(page, server, clock, reader)

        # The request waiting for this reader, its item preselected; the answer filled in.
        page.goto(server.url("/consent"))
        expect(page.get_by_role("heading", level=1)).to_have_text(say(lang, "Consent requests"))
        request = page.get_by_role("region", name=re.compile(reader.rfa))
        expect(request).to_have_count(1)
        expect(request.get_by_label(re.compile(reader.item))).to_be_checked()
        if reader.action == "grant":
            field, button = "Conditions (optional)", "Grant consent"
            said = say(lang, "Consent granted for %(num)s item(s).", num=1)
        else:
            field, button = "Reason (required to decline)", "Decline consent"
            said = say(lang, "Consent declined for %(num)s item(s).", num=1)
        request.get_by_label(say(lang, field)).fill(reader.text)
        _check_layout(page, reader)
        inspector.take(page, f"answer form {lang}")

        request.get_by_role("button", name=say(lang, button)).click()
        flashes = page.locator(".flashes")
        expect(flashes).to_contain_text(said)
        expect(flashes).to_contain_text(say(lang, "The request is now answered."))
        expect(page.get_by_role("region", name=re.compile(reader.rfa))).to_have_count(0)
        _check_layout(page, reader)
        inspector.take(page, f"answered {lang}")

        # The consents page: the item's state today, and the event with what was typed.
        page.goto(server.url("/consent/given"))
        row = page.locator("tr").filter(has=page.locator("code", has_text=reader.item)).first
        state = "Granted" if reader.action == "grant" else "Declined"
        expect(row).to_contain_text(say(lang, state))
        expect(page.locator("main")).to_contain_text(reader.text)
        _check_layout(page, reader)
        inspector.take(page, f"consents given {lang}")

        assert not inspector.problems, "\n".join(inspector.problems)
        shots = {path.name: path.stat().st_size for path in inspector.directory.glob("*.png")}
        assert len(shots) == 8 and min(shots.values()) > 5_000, shots
    finally:
        context.close()
