"""What the browser tests share: the running portal, demo logins, TOTP codes, screenshots and
signing in. The fixtures that make them live in ``conftest.py``.

Everything here drives Debian's ``/usr/bin/chromium`` through Playwright against a real
``portal run`` on loopback; nothing is mocked.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
from playwright.sync_api import Browser, BrowserContext, FloatRect, Locator, Page, expect

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "e2e-artifacts"
KEYS = REPO / "keys_example"
TOTP_INTERVAL = 30


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    totp_secret: str


@dataclass(frozen=True)
class Server:
    """A portal serving a fresh demo instance (``portal run`` on SQLite; gunicorn and a
    ``portal worker`` on PostgreSQL + Redis)."""

    base_url: str
    instance_dir: Path
    log_file: Path
    logins: dict[str, Login]
    # Released through the command line before the server started (see conftest.py).
    seeded_package: str
    backend: str = "sqlite"
    #: where this server's screenshots, reports and log go
    artifacts: Path = ARTIFACTS

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_file.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def read_logins(instance_dir: Path) -> dict[str, Login]:
    """The demo users' logins, as ``portal demo`` saved them."""
    document = json.loads((instance_dir / "demo_logins.json").read_text(encoding="utf-8"))
    return {
        email: Login(email, entry["password"], entry["totp_secret"])
        for email, entry in document["logins"].items()
    }


@dataclass
class TotpClock:
    """Hands out TOTP codes the portal will accept.

    The portal refuses a code of a time step it has already accepted for that user (replay
    protection), so a second sign-in of the same user within one step takes the next step's
    code (inside the portal's ±1 window), and only a third waits for the clock.
    """

    last_step: dict[str, int] = field(default_factory=dict)

    def code(self, login: Login) -> str:
        used = self.last_step.get(login.email)
        # the portal accepts the next step too (its window is ±1): use it before waiting
        while used is not None and int(time.time()) // TOTP_INTERVAL + 1 <= used:
            time.sleep(0.5)
        current = int(time.time()) // TOTP_INTERVAL
        step = current if used is None else max(current, used + 1)
        self.last_step[login.email] = step
        code: str = pyotp.TOTP(login.totp_secret).generate_otp(step)
        return code


class Screenshots:
    """One full-page screenshot per step, numbered in order, in ``e2e-artifacts/<name>/``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in self.directory.glob("*.png"):
            old.unlink()
        self.taken: list[Path] = []

    def take(self, page: Page, step: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.directory / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def sign_in(page: Page, server: Server, clock: TotpClock, email: str) -> None:
    """Both sign-in steps, as a person does them, ending on the dashboard."""
    login = server.logins[email]
    page.goto(server.url("/login"))
    page.get_by_label("E-mail address").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(clock.code(login))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def new_page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def expect_flash(page: Page, text: str | re.Pattern[str]) -> str:
    """Wait until the page's flash messages say ``text``; return all their text."""
    messages = page.locator(".flashes")
    expect(messages).to_contain_text(text)
    return messages.inner_text()


def page_image_on_screen(page: Page, image: Locator) -> FloatRect:
    """Wait until a review page image is rendered by the worker and loaded by the browser
    (it is ``loading="lazy"``: until it has loaded its box has no height), scroll it to the
    top of the window and return its box, ready for the mouse to draw on."""
    image.scroll_into_view_if_needed()
    expect(image).not_to_have_attribute("data-pending", re.compile(".*"), timeout=60_000)
    page.wait_for_function(
        "el => el.complete && el.naturalHeight > 0", arg=image.element_handle(), timeout=60_000
    )
    image.evaluate("el => el.scrollIntoView({block: 'start'})")
    box = image.bounding_box()
    assert box is not None and box["height"] > 0
    return box


class Actors:
    """One signed-in browser context per demo user, made on first use and kept for the
    session, so nobody signs in twice within a TOTP step without need."""

    def __init__(self, browser: Browser, server: Server, clock: TotpClock) -> None:
        self._browser = browser
        self._server = server
        self._clock = clock
        self._contexts: dict[str, BrowserContext] = {}

    def page(self, email: str) -> Page:
        """A new tab signed in as ``email``."""
        context = self._contexts.get(email)
        if context is None:
            context = self._browser.new_context(accept_downloads=True)
            if AXE_JS.is_file():  # axe-core on every page, for tests/e2e/layout.py
                context.add_init_script(path=str(AXE_JS))
            signing_in = new_page(context)
            sign_in(signing_in, self._server, self._clock, email)
            signing_in.close()
            self._contexts[email] = context
        return new_page(context)

    def close(self) -> None:
        for context in self._contexts.values():
            context.close()
