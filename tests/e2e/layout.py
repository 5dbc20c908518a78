"""Every page a browser test visits, looked at as people see it (issue 22): a full-page
screenshot at 1280 px and at 390 px, a check that no key column of a table (the headers
marked ``data-key-column`` in the templates: the identifying code, the status or outcome,
the action) is clipped or hidden behind a sideways scroll at 1280 px, a check that the
provider's and recipient's pages do not scroll sideways at 390 px, and axe-core with no
serious or critical violation.

axe is the npm package (``node_modules/axe-core``, ``make e2e-browser``), put in each page by
the browser context's init script (:func:`with_axe`): that runs before the page's own
scripts and is not subject to the portal's Content-Security-Policy, which stays in force.

Problems are collected, not raised at once, so one run reports every page; the test asserts
:attr:`Inspector.problems` is empty at its end. Screenshots and axe's findings go to the
server's artifacts directory (``e2e-artifacts/``, not committed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Frame, Page

from tests.e2e.browser import AXE_JS

WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BLOCKING = ("serious", "critical")
#: Pages of providers and recipients (and requesters), which must work on a phone.
PHONE_PAGES = re.compile(r"^/(consent|received|requests)(/|$)")

_CLIPPED_KEY_COLUMNS = """
() => {
  const found = [];
  const viewport = document.documentElement.clientWidth;
  for (const table of document.querySelectorAll('table')) {
    const headers = [...table.querySelectorAll('thead tr:first-child > th')];
    const keys = headers.flatMap((th, i) => th.hasAttribute('data-key-column') ? [i] : []);
    if (!keys.length) continue;
    const frame = (table.closest('.table-wrap') || table.parentElement).getBoundingClientRect();
    const left = Math.max(frame.left, 0), right = Math.min(frame.right, viewport);
    const rows = [headers, ...[...table.querySelectorAll('tbody > tr')].map(r => [...r.children])];
    for (const cells of rows) {
      if (cells.length !== headers.length) continue;  // a row spanning columns (details)
      for (const i of keys) {
        const box = cells[i].getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;
        if (box.left < left - 1 || box.right > right + 1) {
          const name = headers[i].innerText.trim();
          const text = cells[i].innerText.trim().replace(/\\s+/g, ' ').slice(0, 40);
          const seen = `${Math.round(left)}-${Math.round(right)}`;
          found.push(`column "${name}" ("${text}") spans ${Math.round(box.left)}-` +
                     `${Math.round(box.right)} px, visible ${seen}`);
        }
      }
    }
  }
  return found;
}
"""

_SIDEWAYS = """
() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    found.push(`the page is ${root.scrollWidth} px wide in a ${root.clientWidth} px window`);
  }
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      const caption = wrap.querySelector('caption');
      const name = wrap.getAttribute('aria-label') || (caption ? caption.innerText : '');
      found.push(`table "${name.trim()}" scrolls sideways (${wrap.scrollWidth} px in ` +
                 `${wrap.clientWidth} px)`);
    }
  }
  return found;
}
"""


def with_axe(context: BrowserContext) -> BrowserContext:
    """Make axe-core available on every page of ``context`` (when installed)."""
    if AXE_JS.is_file():
        context.add_init_script(path=str(AXE_JS))
    return context


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Inspector:
    """Screenshots, layout checks and axe for each page a test looks at."""

    directory: Path
    problems: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    inspected: set[tuple[str, str]] = field(default_factory=set)
    visited: list[tuple[str, str]] = field(default_factory=list)
    _who: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in [*self.directory.glob("*.png"), *self.directory.glob("axe/*.json")]:
            old.unlink()
        (self.directory / "axe").mkdir(exist_ok=True)

    def watch(self, page: Page, who: str) -> Page:
        """Remember every page ``page`` navigates to (for :meth:`inspect_visited`)."""

        def navigated(frame: Frame) -> None:
            if frame == page.main_frame:
                self.visited.append((who, frame.url))

        page.on("framenavigated", navigated)
        self._who[id(page)] = who
        return page

    def take(self, page: Page, step: str) -> None:
        """One step of the journey: inspect the page as it is now."""
        self.taken.append(step)
        self._inspect(page, f"{len(self.taken):02d}-{_slug(step)}", self._who.get(id(page), ""))

    def inspect_visited(self, open_page: Any) -> None:
        """Open again, as the same person, every page visited and not yet inspected
        (``open_page(who)`` gives a signed-in tab)."""
        seen = set(self.inspected)
        for who, url in self.visited:
            path = _path(url)
            if (who, path) in seen or urlsplit(url).scheme not in ("http", "https"):
                continue
            seen.add((who, path))
            page = open_page(who)
            try:
                response = page.goto(url)
                if response is None or response.status != 200:
                    status = response.status if response else "no response"
                    self.problems.append(f"{who} {path}: answered {status} when opened again")
                    continue
                self._inspect(page, f"visited-{len(seen):02d}-{_slug(path)}", who)
            finally:
                page.close()

    def _inspect(self, page: Page, name: str, who: str) -> None:
        path = _path(page.url)
        self.inspected.add((who, path))
        where = f"{who} {path}"
        page.set_viewport_size(WIDE)
        page.screenshot(path=str(self.directory / f"{name}-1280.png"), full_page=True)
        for problem in page.evaluate(_CLIPPED_KEY_COLUMNS):
            self.problems.append(f"{where} at 1280 px: {problem}")
        self._axe(page, name, where)
        page.set_viewport_size(PHONE)
        try:
            page.screenshot(path=str(self.directory / f"{name}-390.png"), full_page=True)
            if PHONE_PAGES.match(urlsplit(page.url).path):
                for problem in [*page.evaluate(_SIDEWAYS), *page.evaluate(_CLIPPED_KEY_COLUMNS)]:
                    self.problems.append(f"{where} at 390 px: {problem}")
        finally:
            page.set_viewport_size(WIDE)

    def _axe(self, page: Page, name: str, where: str) -> None:
        if not page.evaluate("() => typeof axe !== 'undefined'"):
            self.problems.append(f"{where}: axe-core is not loaded (make e2e-browser)")
            return
        result: dict[str, Any] = page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        violations: list[dict[str, Any]] = result["violations"]
        (self.directory / "axe" / f"{name}.json").write_text(
            json.dumps(violations, indent=2), encoding="utf-8"
        )
        for violation in violations:
            if violation.get("impact") in BLOCKING:
                targets = ", ".join(str(n["target"]) for n in violation["nodes"][:3])
                self.problems.append(
                    f"{where}: axe [{violation['impact']}] {violation['id']}: "
                    f"{violation['help']} ({targets})"
                )
