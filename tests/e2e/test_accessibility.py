"""axe-core (the npm package, ``node_modules/axe-core``) finds no serious or critical
accessibility violation on the portal's main pages, for every role and for the two sign-in
steps.

The portal's Content-Security-Policy forbids inline script, and Playwright injects axe as an
inline ``<script>``; so the browser contexts of THIS module only are made with
``bypass_csp=True``. Every other browser test runs under the portal's real CSP.

Every finding (any impact) is also written to ``e2e-artifacts/axe/<page>.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import (
    AXE_JS,
    Actors,
    Server,
    TotpClock,
    new_page,
    sign_in,
)
from tests.e2e.flows import ask_for_consent, submit_request, take_and_add_candidate

BLOCKING = ("serious", "critical")

ADMIN = "admin@mechanism.example"
OFFICER = "officer.two@mechanism.example"
REQUESTER = "requester@ect.example"
PROVIDER = "provider@unmv.example"
RECIPIENT = "recipient@nwu.example"
SIGN_IN_USER = "requester@wjd.example"
# A consent request is put in the provider's inbox so its form is checked too.
CONSENT_REQUESTER = "requester@rcp.example"
CONSENT_ITEM = "Note on denial of access to the upper Tessin valley"


@dataclass(frozen=True)
class Target:
    who: str
    path: str
    # A link to follow from ``path`` (its accessible name, a regular expression) to reach the
    # page under test, for pages whose URL holds a database id.
    follow: str | None = None

    @property
    def slug(self) -> str:
        where = self.path + (f"-{self.follow}" if self.follow else "")
        return re.sub(r"[^a-z0-9]+", "-", f"{self.who.split('@')[0]}-{where}".lower()).strip("-")


PAGES = (
    Target(REQUESTER, "/"),
    Target(REQUESTER, "/requests"),
    Target(REQUESTER, "/requests/new"),
    Target(REQUESTER, "/requests/RFA-2025-0039"),
    Target(REQUESTER, "/account"),
    Target(REQUESTER, "/inbox"),
    Target(OFFICER, "/"),
    Target(OFFICER, "/triage"),
    Target(OFFICER, "/triage/RFA-2025-0041"),
    Target(OFFICER, "/triage/RFA-2025-0041/search?title=Statement"),
    Target(OFFICER, "/review/RFA-2025-0041/items/ITM-0013"),  # a PDF: pages, marks, forms
    Target(OFFICER, "/review/RFA-2025-0041/items/ITM-0003"),  # a text with a pending mark
    Target(OFFICER, "/preview/RFA-2025-0041/items/ITM-0013"),
    Target(OFFICER, "/eligibility/requests"),
    Target(OFFICER, "/triage/RFA-2025-0038", follow="^eligibility page$"),
    Target(OFFICER, "/packages/requests/RFA-2025-0038"),
    Target(OFFICER, "/packages"),
    Target(OFFICER, "/packages/{package}"),
    Target(OFFICER, "/packages/{package}", follow="^[0-9a-f-]{36}$"),
    Target(OFFICER, "/eligibility/assessments"),
    Target(OFFICER, "/figures"),
    Target(PROVIDER, "/"),
    Target(PROVIDER, "/consent"),
    Target(PROVIDER, "/consent/given"),
    Target(PROVIDER, "/consent/given", follow="^Revoke "),  # what revoking does, confirm
    Target(PROVIDER, "/consent/where"),
    Target(RECIPIENT, "/"),
    Target(RECIPIENT, "/received"),
    Target(RECIPIENT, "/received/{package}"),
    Target(RECIPIENT, "/received/recalls"),
    Target(ADMIN, "/"),
    Target(ADMIN, "/admin/users"),
    Target(ADMIN, "/admin/users", follow="^Jo Demo"),
    Target(ADMIN, "/admin/users/invite"),
    Target(ADMIN, "/admin/authorities"),
    Target(ADMIN, "/admin/authorities", follow="^Northland War Crimes Unit$"),
    Target(ADMIN, "/admin/providers"),
    Target(ADMIN, "/keys"),
    Target(ADMIN, "/admin/api-clients"),
)


def axe_violations(page: Page, name: str, out: Path) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is; return the serious and critical violations (and
    save every finding in ``out``: ``e2e-artifacts/[backend/]axe/``)."""
    page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    violations: list[dict[str, Any]] = result["violations"]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(violations, indent=2), encoding="utf-8")
    return [v for v in violations if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {node['target']}: {node.get('failureSummary', '')!r}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def open_consent_request(actors: Actors, server: Server) -> None:
    """A consent request waiting in the provider's inbox, made as people make it."""
    rfa = submit_request(
        actors.page(CONSENT_REQUESTER), server, "RCP/2026/A11Y", "The Mission's notes on access."
    )
    officer = actors.page(OFFICER)
    take_and_add_candidate(officer, server, rfa, CONSENT_ITEM)
    ask_for_consent(officer, server, rfa)


@pytest.fixture(scope="module")
def axe_contexts(browser: Browser, server: Server, clock: TotpClock) -> Iterator[AxeContexts]:
    contexts = AxeContexts(browser, server, clock)
    yield contexts
    contexts.close()


class AxeContexts:
    """Signed-in contexts that ignore the CSP so axe can be injected (this module only)."""

    def __init__(self, browser: Browser, server: Server, clock: TotpClock) -> None:
        self.browser, self.server, self.clock = browser, server, clock
        self.contexts: dict[str, BrowserContext] = {}

    def page(self, email: str) -> Page:
        if email not in self.contexts:
            context = self.browser.new_context(bypass_csp=True)
            sign_in(new_page(context), self.server, self.clock, email)
            self.contexts[email] = context
        return new_page(self.contexts[email])

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()


def test_axe_is_the_npm_package() -> None:
    assert AXE_JS.is_file(), "run `npm ci` (make e2e does)"
    installed = json.loads((AXE_JS.parent / "package.json").read_text(encoding="utf-8"))
    locked = json.loads((AXE_JS.parents[2] / "package-lock.json").read_text(encoding="utf-8"))
    assert installed["version"] == locked["packages"]["node_modules/axe-core"]["version"]


def test_sign_in_steps(browser: Browser, server: Server, clock: TotpClock) -> None:
    context = browser.new_context(bypass_csp=True)
    try:
        page = new_page(context)
        login = server.logins[SIGN_IN_USER]
        page.goto(server.url("/login"))
        found = axe_violations(page, "sign-in-step-1", server.artifacts / "axe")
        page.get_by_label("E-mail address").fill(login.email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
        found += axe_violations(page, "sign-in-error", server.artifacts / "axe")
        page.get_by_label("E-mail address").fill(login.email)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        found += axe_violations(page, "sign-in-step-2", server.artifacts / "axe")
        page.get_by_label("Code", exact=True).fill(clock.code(login))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    finally:
        context.close()
    assert not found, describe(found)


@pytest.mark.parametrize("target", PAGES, ids=[t.slug for t in PAGES])
def test_main_pages(
    target: Target,
    axe_contexts: AxeContexts,
    server: Server,
    open_consent_request: None,
) -> None:
    page = axe_contexts.page(target.who)
    try:
        response = page.goto(server.url(target.path.format(package=server.seeded_package)))
        assert response is not None and response.status == 200, target
        if target.follow:
            page.get_by_role("link", name=re.compile(target.follow)).first.click()
            expect(page.locator("main")).to_be_visible()
        assert "/login" not in page.url
        found = axe_violations(page, target.slug, server.artifacts / "axe")
    finally:
        page.close()
    assert not found, f"{page.url}\n{describe(found)}"
