"""The web shell: layout, landing page, health check, error pages, security headers.

Everything goes through the Flask test client against a real app on each
database backend. Test-only routes (that abort, raise, flash or accept a form)
are registered on the app in the ``make_app`` fixture below.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, abort, flash, render_template_string, request
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from portal import create_app
from portal.authz.permissions import public
from portal.config import REPO_ROOT, Settings
from portal.state import portal_state
from portal.storage import human_size

SECRET_DETAIL = "kaboom-internal-detail-7f3a /srv/portal/secret.py"
FORM_SECRET = "hunter2-do-not-log"

EXPECTED_CSP = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
# Words that betray the framework, the language or internals; none may reach an error page.
INTERNAL_WORDS = (
    "traceback",
    "werkzeug",
    "flask",
    "jinja",
    "python",
    "sqlalchemy",
    "exception",
    "runtimeerror",
    "notfound",
    "methodnotallowed",
    "requestentitytoolarge",
    "csrf token",
    "requested url was not found",  # Werkzeug's default 404 text
    "kaboom",
    "/srv/",
)
TITLE_SUFFIX = " \N{EN DASH} Sharing Portal"
ROLES = ("Requesters", "Legal officers", "Information providers", "Recipients", "Administrators")


def _add_test_routes(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError(SECRET_DETAIL)

    def abort_with(code: int) -> str:
        abort(code)

    def form() -> str:
        return f"received {len(request.form)} fields"

    def csrf_token() -> str:
        return generate_csrf()  # type: ignore[no-any-return]

    def flashes() -> str:
        flash("Request saved.", "success")
        flash("The key has expired.", "error")
        flash("Just so you know.", "message")
        return render_template_string(
            '{% extends "web/base.html" %}{% block page_title %}Flash test{% endblock %}'
            "{% block content %}<h1>Flash test</h1>{% endblock %}"
        )

    for view in (boom, abort_with, form, csrf_token, flashes):
        public("test-only route")(view)
    app.add_url_rule("/_test/boom", "test_boom", boom, methods=["GET", "POST"])
    app.add_url_rule("/api/_test/boom", "test_api_boom", boom)
    app.add_url_rule("/_test/abort/<int:code>", "test_abort", abort_with)
    app.add_url_rule("/_test/form", "test_form", form, methods=["POST"])
    app.add_url_rule("/_test/csrf-token", "test_csrf_token", csrf_token)
    app.add_url_rule("/_test/flash", "test_flash", flashes)


@pytest.fixture
def make_app(settings: Settings, engine: Engine) -> Iterator[Callable[..., Flask]]:
    """Build apps (with the test routes) from ``settings`` plus overrides; dispose them after."""
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = create_app(settings.with_overrides(**overrides) if overrides else settings)
        _add_test_routes(app)
        built.append(app)
        return app

    yield build
    for app in built:
        portal_state(app).engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- helpers -------------------------------------------------------------------------------


class InlineCodeFinder(HTMLParser):
    """Collects what a ``default-src 'self'`` CSP would block, or that smells of inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script" and not attributes.get("src"):
            self.problems.append("inline <script>")
        for name, value in attributes.items():
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>")
            if name.startswith("on"):
                self.problems.append(f"{name} handler on <{tag}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {name} on <{tag}>")


def parse_html(html: str) -> InlineCodeFinder:
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder


def assert_no_inline_code(html: str) -> None:
    assert parse_html(html).problems == []


def assert_reveals_nothing(response: TestResponse) -> None:
    body = response.get_data(as_text=True).lower()
    for word in INTERNAL_WORDS:
        assert word not in body, f"error response mentions {word!r}"


def assert_security_headers(response: TestResponse, *, static: bool = False) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == EXPECTED_CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    features = {part.strip() for part in headers["Permissions-Policy"].split(",")}
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in features
    assert "Server" not in headers
    if static:
        assert "no-store" not in headers.get("Cache-Control", "")
    else:
        assert headers["Cache-Control"] == "no-store"


def html_page(response: TestResponse) -> str:
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def form_token(client: FlaskClient, base_url: str = "http://localhost") -> str:
    return client.get("/_test/csrf-token", base_url=base_url).get_data(as_text=True)


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- layout and landing page -----------------------------------------------------------------


def test_home_page_sends_visitors_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/"
    assert_security_headers(response)


def test_sign_in_page_describes_the_portal_and_every_role(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    html = html_page(response)
    assert f"<title>Sign in{TITLE_SUFFIX}</title>" in html
    assert "evidence of international crimes" in html
    for role in ROLES:
        assert f"<h3>{role}</h3>" in html
    sign_in = [
        attrs
        for tag, attrs in parse_html(html).tags
        if tag == "a" and attrs.get("href") == "/login"
    ]
    assert sign_in, "the navigation links to /login"
    assert 'aria-current="page"' in html


def test_layout_is_accessible(client: FlaskClient) -> None:
    html = html_page(client.get("/login"))
    parsed = parse_html(html)
    tags = [tag for tag, _ in parsed.tags]
    assert '<html lang="en" dir="ltr">' in html
    for landmark in ("header", "nav", "main", "footer"):
        assert tags.count(landmark) == 1, landmark
    first_link = next(attrs for tag, attrs in parsed.tags if tag == "a")
    assert first_link["href"] == "#main", "the skip link comes first"
    main = next(attrs for tag, attrs in parsed.tags if tag == "main")
    assert main["id"] == "main"
    nav = next(attrs for tag, attrs in parsed.tags if tag == "nav")
    assert nav.get("aria-label")
    viewport = [a for t, a in parsed.tags if t == "meta" and a.get("name") == "viewport"]
    assert viewport and "width=device-width" in (viewport[0]["content"] or "")
    for tag, attrs in parsed.tags:
        if tag == "img":
            assert "alt" in attrs, "every image has an alt attribute"
    assert "Sharing Portal" in html.split("<footer", 1)[1]


def test_stylesheet_and_icon_are_served_from_static(client: FlaskClient) -> None:
    parsed = parse_html(html_page(client.get("/login")))
    links = {attrs.get("rel"): attrs.get("href") for tag, attrs in parsed.tags if tag == "link"}
    css = client.get(links["stylesheet"] or "")
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert b":focus-visible" in css.data
    icon = client.get(links["icon"] or "")
    assert icon.status_code == 200
    assert icon.mimetype == "image/svg+xml"
    assert b"<script" not in icon.data


def test_flash_messages_are_announced(client: FlaskClient) -> None:
    html = html_page(client.get("/_test/flash"))
    assert f"<title>Flash test{TITLE_SUFFIX}</title>" in html
    roles = {
        attrs.get("class"): attrs.get("role")
        for tag, attrs in parse_html(html).tags
        if tag == "div" and "flash " in (attrs.get("class") or "")
    }
    assert roles == {
        "flash flash--success": "status",
        "flash flash--error": "alert",
        "flash flash--info": "status",
    }
    assert "The key has expired." in html


# --- health check ----------------------------------------------------------------------------


def test_healthz_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}
    assert_security_headers(response)


def test_healthz_reports_an_unreachable_database_without_details(
    make_app: Callable[..., Flask],
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if settings.database_url.startswith("sqlite"):
        unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'portal.db'}"
    else:
        unreachable = f"postgresql://postgres@127.0.0.1:{closed_port()}/test?connect_timeout=5"
    app = make_app(database_url=unreachable)
    caplog.set_level(logging.WARNING, logger="portal.web.public")

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "error", "reason": "database unavailable"}
    assert_reveals_nothing(response)
    assert_security_headers(response)
    assert any("database unavailable" in r.getMessage() for r in caplog.records)


# --- error pages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "title"),
    [
        ("/no-such-page", 404, "Page not found"),
        ("/_test/abort/400", 400, "Bad request"),
        ("/_test/abort/403", 403, "Access denied"),
        ("/_test/boom", 500, "Something went wrong"),
    ],
)
def test_error_pages(client: FlaskClient, path: str, status: int, title: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    html = html_page(response)
    assert f"<title>{title}{TITLE_SUFFIX}</title>" in html
    assert f"Error {status}" in html
    assert_reveals_nothing(response)
    assert_security_headers(response)
    assert_no_inline_code(html)


def test_method_not_allowed(client: FlaskClient) -> None:
    # No CSRF token: the POST must still get 405 (routing fails before CSRF is checked),
    # not the 400 a POST without a token gets on a route that accepts POST.
    response = client.post("/healthz", data={"anything": "1"})
    assert response.status_code == 405
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert f"<title>Not allowed{TITLE_SUFFIX}</title>" in html_page(response)
    assert_reveals_nothing(response)
    assert_security_headers(response)
    assert client.put("/").status_code == 405
    assert client.post("/_test/form", data={"anything": "1"}).status_code == 400


def test_upload_too_large_names_the_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app(max_upload_bytes=1024)
    client = app.test_client()
    token = form_token(client)
    small = client.post("/_test/form", data={"csrf_token": token, "note": "x" * 100})
    assert small.status_code == 200, "a body under the limit goes through"

    response = client.post("/_test/form", data={"csrf_token": token, "note": "x" * 4096})

    assert response.status_code == 413
    html = html_page(response)
    assert "Upload too large" in html
    assert "1 KB" in html
    assert_reveals_nothing(response)
    assert_security_headers(response)


def test_expired_form_gets_a_reload_message(client: FlaskClient) -> None:
    response = client.post("/_test/form", data={"note": "hello"})
    assert response.status_code == 400
    html = html_page(response)
    assert "expired" in html
    assert "reload the page" in html
    assert_reveals_nothing(response)
    assert_security_headers(response)
    bad_token = client.post("/_test/form", data={"csrf_token": "forged", "note": "hello"})
    assert bad_token.status_code == 400
    assert "reload the page" in html_page(bad_token)


def test_unexpected_error_is_logged_with_a_reference_but_not_the_body(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = form_token(client)
    response = client.post("/_test/boom", data={"csrf_token": token, "passphrase": FORM_SECRET})

    assert response.status_code == 500
    html = html_page(response)
    assert_reveals_nothing(response)
    assert FORM_SECRET not in html
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    record = errors[0]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    reference = re.search(r'class="reference">([0-9A-F]{8})<', html)
    assert reference is not None, "the page shows a reference to quote"
    assert reference.group(1) in record.getMessage()
    assert FORM_SECRET not in caplog.text
    assert token not in caplog.text


def test_error_page_survives_broken_templates(
    make_app: Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "no-templates"
    empty.mkdir()
    client = make_app(templates_dir=empty).test_client()
    caplog.set_level(logging.ERROR)

    response = client.get("/login")

    assert response.status_code == 500
    html = html_page(response)
    assert f"<title>Something went wrong{TITLE_SUFFIX}</title>" in html
    assert_reveals_nothing(response)
    assert "accounts/signin/login.html" not in html
    assert_security_headers(response)
    assert_no_inline_code(html)
    assert len([r for r in caplog.records if r.exc_info]) == 2  # the error, then the page


# --- problem+json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no-such-page", 404),
        ("GET", "/_test/abort/400", 400),
        ("GET", "/_test/abort/403", 403),
        ("POST", "/healthz", 405),
        ("POST", "/_test/form", 400),  # CSRF
        ("GET", "/_test/boom", 500),
    ],
)
def test_json_clients_get_problem_json(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method, headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = json.loads(response.data)
    assert problem["type"] == "about:blank"
    assert problem["status"] == status
    assert problem["title"]
    assert_reveals_nothing(response)
    assert_security_headers(response)


def test_api_paths_get_problem_json_without_asking(client: FlaskClient) -> None:
    for path, status in (("/api/v1/nothing", 404), ("/api/_test/boom", 500)):
        response = client.get(path, headers={"Accept": "*/*"})
        assert response.status_code == status
        assert response.mimetype == "application/problem+json"
        assert json.loads(response.data)["status"] == status
        assert_reveals_nothing(response)


def test_browsers_get_html(client: FlaskClient) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/no-such-page", headers={"Accept": browser})
    assert response.mimetype == "text/html"
    assert client.get("/apiary").mimetype == "text/html"


def test_problem_json_for_too_large_names_the_limit(make_app: Callable[..., Flask]) -> None:
    client = make_app(max_upload_bytes=2048).test_client()
    response = client.post(
        "/_test/form", data={"note": "x" * 5000}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert "2 KB" in json.loads(response.data)["detail"]


# --- security headers ------------------------------------------------------------------------


def test_security_headers_on_every_kind_of_response(client: FlaskClient) -> None:
    for path in (
        "/",
        "/login",
        "/healthz",
        "/no-such-page",
        "/_test/boom",
        "/static/css/missing.css",
    ):
        assert_security_headers(client.get(path))
    assert_security_headers(client.get("/static/css/portal.css"), static=True)
    assert_security_headers(client.get("/no-such-page", headers={"Accept": "application/json"}))


def test_hsts_only_over_https(client: FlaskClient) -> None:
    for path in ("/", "/login", "/no-such-page", "/static/css/portal.css"):
        assert "Strict-Transport-Security" not in client.get(path).headers
        secure = client.get(path, base_url="https://localhost")
        assert secure.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"


def test_forms_work_over_https_with_same_origin_referrer(client: FlaskClient) -> None:
    """Why Referrer-Policy is ``same-origin``: over HTTPS the CSRF check needs a same-origin
    Referer, which browsers never send under ``no-referrer``."""
    base = "https://localhost"
    token = form_token(client, base)
    data = {"csrf_token": token, "note": "hello"}
    with_referrer = client.post(
        "/_test/form", data=data, base_url=base, headers={"Referer": f"{base}/_test/form"}
    )
    assert with_referrer.status_code == 200
    without_referrer = client.post("/_test/form", data=data, base_url=base)
    assert without_referrer.status_code == 400


# --- no inline code anywhere -----------------------------------------------------------------


def test_inline_code_finder_finds_inline_code() -> None:
    bad = (
        '<style>p{}</style><script>alert(1)</script><p style="color:red" onclick="x()">'
        '<a href="javascript:void(0)">x</a>'
    )
    assert len(parse_html(bad).problems) == 5
    assert parse_html('<script src="/static/app.js"></script>').problems == []


INLINE_PATTERNS = {
    "<style> element": re.compile(r"<style\b", re.IGNORECASE),
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc\s*=)", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


def test_templates_contain_no_inline_code() -> None:
    # templates/documents/ holds print templates rendered to PDF by WeasyPrint, never served
    # to a browser, so the CSP does not apply to them.
    root = REPO_ROOT / "templates"
    scanned = [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and "documents" not in path.relative_to(root).parts
    ]
    assert {"web/base.html", "accounts/signin/login.html", "web/error.html"} <= {
        path.relative_to(root).as_posix() for path in scanned
    }
    for path in scanned:
        source = JINJA_COMMENT.sub("", path.read_text(encoding="utf-8"))
        for problem, pattern in INLINE_PATTERNS.items():
            assert not pattern.search(source), f"{problem} in {path.relative_to(root)}"


def test_rendered_pages_contain_no_inline_code(client: FlaskClient) -> None:
    for path in ("/login", "/_test/flash", "/no-such-page", "/_test/abort/403", "/_test/boom"):
        assert_no_inline_code(client.get(path).get_data(as_text=True))


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (1, "1 byte"),
        (1000, "1000 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (512 * 1024 * 1024, "512 MB"),
        (3 * 1024**3, "3 GB"),
        (5 * 1024**4, "5 TB"),
        (4096 * 1024**4, "4096 TB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_timestamps_render_as_time_elements_in_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from markupsafe import Markup

    from portal.pages.formatting import when

    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    shown = when(moment)
    assert isinstance(shown, Markup)
    assert shown == '<time datetime="2026-03-04T05:06:07+00:00">2026-03-04 05:06 UTC</time>'
    assert when(None) == "\N{EN DASH}"
    # an aware time elsewhere is shown in UTC, as the label says
    assert "2026-03-04 05:06 UTC" in when(moment.astimezone(timezone(timedelta(hours=2))))


def test_every_table_scroll_region_can_be_reached_with_the_keyboard() -> None:
    """Wide tables scroll sideways inside ``.table-wrap``; keyboard users can only scroll a
    region they can focus (WCAG 2.1.1), and a focusable region needs a name to announce."""
    opening = re.compile(r'<div class="table-wrap"[^>]*>')
    found = 0
    for template in sorted((REPO_ROOT / "templates").rglob("*.html")):
        for tag in opening.findall(template.read_text(encoding="utf-8")):
            found += 1
            where = f"{template.relative_to(REPO_ROOT)}: {tag}"
            assert 'role="region"' in tag and 'tabindex="0"' in tag, where
            assert "aria-label=" in tag or "aria-labelledby=" in tag, where
    assert found > 20
