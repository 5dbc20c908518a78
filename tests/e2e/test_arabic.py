"""A provider reads the portal in Arabic and in Burmese in a real browser (issue 21): the
browser asks for the language (``Accept-Language``), the sign-in and the consent pages answer
in it (right to left in Arabic), the self-hosted Noto face is actually loaded
(``document.fonts``), neither a phone's width (390 px) nor a desktop's (1280 px) scrolls
sideways, and axe-core finds no serious violation. Screenshots of both widths are kept in
the test's temporary directory."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import Server, TotpClock
from tests.e2e.layout import Inspector, with_axe
from tests.e2e.test_accessibility import PROVIDER

#: How the page sees itself: direction, language, Arabic face loaded, sideways overflow.
_LAYOUT = """async () => {
  await document.fonts.ready;
  const root = document.documentElement;
  const arabic = [...document.fonts].filter((face) => face.family.includes("Portal Arabic"));
  return {
    dir: root.dir,
    lang: root.lang,
    computedDir: getComputedStyle(document.body).direction,
    arabicLoaded: arabic.some((face) => face.status === "loaded"),
    drawsArabic: document.fonts.check('16px "Portal Arabic"', "\\u0628"),
    overflow: root.scrollWidth - root.clientWidth,
    mainRight: document.querySelector("main").getBoundingClientRect().right,
    width: root.clientWidth,
    // what sticks out, for the failure message
    outside: [...document.querySelectorAll("main *")]
      .filter((el) => { const r = el.getBoundingClientRect();
                        return r.width && (r.left < -1 || r.right > root.clientWidth + 1); })
      .slice(0, 5)
      .map((el) => `${el.tagName}.${el.className} ${el.getBoundingClientRect().width}px`),
  };
}"""


def _sign_in_in_arabic(page: Page, server: Server, clock: TotpClock) -> None:
    """Both steps of the sign-in by their fields (the labels are in Arabic)."""
    login = server.logins[PROVIDER]
    page.goto(server.url("/login"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("تسجيل الدخول إلى بوابة المشاركة")
    page.locator("#email").fill(login.email)
    page.locator("#password").fill(login.password)
    page.locator("form button[type=submit]").click()
    page.locator("#code").fill(clock.code(login))
    page.locator("form button[type=submit]").click()
    expect(page.locator("main h1")).to_be_visible()


def test_a_provider_reads_the_consent_pages_in_arabic(
    browser: Browser, server: Server, clock: TotpClock, tmp_path: Path
) -> None:
    context = browser.new_context(locale="ar-SY", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        _sign_in_in_arabic(page, server, clock)
        page.goto(server.url("/consent"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("طلبات الموافقة")
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            seen = page.evaluate(_LAYOUT)
            assert seen["dir"] == "rtl" and seen["lang"] == "ar", seen
            assert seen["computedDir"] == "rtl", seen
            assert seen["arabicLoaded"] and seen["drawsArabic"], (
                seen
            )  # the web font, not a system one
            assert seen["overflow"] <= 0, f"scrolls sideways at {width} px: {seen}"
            # the main column starts on the right: its right edge is at the page's right
            assert seen["width"] - seen["mainRight"] < seen["width"] / 4, seen
            shot = tmp_path / f"consent-ar-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 5_000
    finally:
        context.close()


#: The Burmese face is loaded and draws Burmese; the page reads left to right.
_BURMESE = """async () => {
  await document.fonts.ready;
  const faces = [...document.fonts].filter((face) => face.family.includes("Portal Myanmar"));
  return {
    dir: document.documentElement.dir,
    lang: document.documentElement.lang,
    loaded: faces.some((face) => face.status === "loaded"),
    draws: document.fonts.check('16px "Portal Myanmar"', "\\u1000"),
  };
}"""


def test_a_provider_reads_the_consent_pages_in_burmese_and_arabic_without_axe_findings(
    browser: Browser, server: Server, clock: TotpClock, tmp_path: Path
) -> None:
    """Both locales: sign-in, the consent requests and the consents given, each inspected at
    1280 and 390 px (screenshots, sideways scroll, clipped key columns, axe-core)."""
    login = server.logins[PROVIDER]
    for locale, lang, direction, heading in (
        ("my-MM", "my", "ltr", "Sharing Portal သို့ ဝင်ရောက်ရန်"),
        ("ar-SY", "ar", "rtl", "تسجيل الدخول إلى بوابة المشاركة"),
    ):
        context = with_axe(
            browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        )
        inspector = Inspector(tmp_path / lang)
        try:
            page = inspector.watch(context.new_page(), "provider")
            page.set_default_timeout(15_000)
            page.goto(server.url("/login"))
            expect(page.locator("html")).to_have_attribute("lang", lang)
            expect(page.locator("html")).to_have_attribute("dir", direction)
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            inspector.take(page, f"sign-in {lang}")
            page.locator("#email").fill(login.email)
            page.locator("#password").fill(login.password)
            page.locator("form button[type=submit]").click()
            page.locator("#code").fill(clock.code(login))
            page.locator("form button[type=submit]").click()
            expect(page.locator("main h1")).to_be_visible()
            for path in ("/consent", "/consent/given"):
                page.goto(server.url(path))
                expect(page.locator("html")).to_have_attribute("dir", direction)
                inspector.take(page, f"{path} {lang}")
            if lang == "my":
                seen = page.evaluate(_BURMESE)
                assert seen["loaded"] and seen["draws"], seen  # the web font, not tofu
            assert not inspector.problems, "\n".join(inspector.problems)
            assert len(list((tmp_path / lang).glob("*-390.png"))) == 3
        finally:
            context.close()
