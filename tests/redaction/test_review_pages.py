"""The redaction review pages through real HTTP (the Flask test client): two legal officers
propose and confirm a term and a box on a real 3-page PDF, the pages come from the worker's
cache, and bad input is refused saying why and changing nothing."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select

from portal.packages.assembly.jobs import IMMEDIATE_CONFIG
from portal.registry.models import Item, RedactionMark
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import csrf_token, login, make_user
from tests.support.identifiers import LATIN_NAME, register
from tests.support.package_world import _add_item, build_world

pytest_plugins = ["tests.support.auth"]

NAME = "Mirela Quenzi"
REASON = "Identifies a witness or victim at risk"


def _pdf() -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4)
    for page in (1, 2, 3):
        canvas.drawString(72, 760, f"Page {page} of the statement.")
        if page == 2:
            canvas.drawString(72, 700, f"The witness {NAME} saw the convoy twice.")
            canvas.drawString(72, 680, f"{NAME} left the next day.")
        if page == 3:
            canvas.drawString(72, 400, f"Her neighbour {LATIN_NAME} was there too.")
        canvas.showPage()
    canvas.save()
    return out.getvalue()


@pytest.fixture
def portal(make_app: Callable[..., Flask]) -> tuple[Flask, object]:
    app = make_app()
    app.config[IMMEDIATE_CONFIG] = True  # the render job runs inside the request
    state = portal_state(app)
    with state.sessions() as session:
        world = build_world(session, state.blobs, state.sealer)
        _add_item(session, state.blobs, world, "ITM-R0001", "application/pdf", "s.pdf", _pdf(), [])
        note = f"{NAME} called; {NAME.upper()} left.".encode()
        _add_item(session, state.blobs, world, "ITM-R0003", "text/plain", "n.txt", note, [])
        session.commit()
    return app, world


def _client(app: Flask, creds: object) -> FlaskClient:
    client = app.test_client()
    login(client, creds)  # type: ignore[arg-type]
    return client


def _marks(app: Flask) -> list[RedactionMark]:
    with portal_state(app).sessions() as session:
        item = session.scalars(select(Item).where(Item.code == "ITM-R0001")).one()
        marks = session.scalars(
            select(RedactionMark).where(RedactionMark.item_id == item.id).order_by(RedactionMark.id)
        ).all()
        session.expunge_all()
        return list(marks)


def _flash(page: str) -> str:
    found = re.findall(r'class="flash[^"]*"[^>]*>(.*?)</', page, re.S)
    return " ".join(found)


def test_two_officers_propose_and_confirm_a_term_and_a_box(portal: tuple[Flask, object]) -> None:
    app, world = portal
    base = f"/review/{world.rfa_code}/items/ITM-R0001"  # type: ignore[attr-defined]
    one = _client(app, world.officer)  # type: ignore[attr-defined]
    two = _client(app, world.second)  # type: ignore[attr-defined]
    page = one.get(base)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "3 page(s)" in html and 'id="page-3"' in html and "has no mark" in html

    token = csrf_token(page)
    proposed = one.post(
        f"{base}/marks/term", data={"csrf_token": token, "term": NAME, "reason": REASON}
    )
    assert proposed.status_code == 303
    html = one.get(base).get_data(as_text=True)
    assert "Mark M1 proposed: 2 hit(s) in the text (p. 2: 2)" in html  # counted per page
    assert "also in ITM-R0003 (2)" in html  # and in the request's other candidates
    box = {"csrf_token": token, "page": "2", "x0": "0.1", "y0": "0.2", "x1": "0.5", "y1": "0.25",
           "reason": REASON}  # fmt: skip
    assert one.post(f"{base}/marks/box", data=box).status_code == 303
    [proposed_term, drawn] = _marks(app)
    assert (proposed_term.review, drawn.review, drawn.kind, drawn.page) == (
        "pending",
        "pending",
        "pdf_box",
        2,
    )

    # The proposer cannot confirm; the page does not even offer it.
    html = one.get(base).get_data(as_text=True)
    assert "Confirm M1" not in html and "Another officer confirms" in html
    one.post(f"{base}/marks/M1/confirm", data={"csrf_token": token, "version": "1"})
    assert "another legal officer must confirm it" in one.get(base).get_data(as_text=True)

    review = two.get(base)
    html = review.get_data(as_text=True)
    assert NAME in html  # the term is shown to the officer who confirms it
    assert 'class="overlay-mark overlay-mark--pending" x="100.0" y="200.0"' in html
    all_seen = {"csrf_token": csrf_token(review), "seen-M1": "1", "seen-M2": "1"}
    assert two.post(f"{base}/marks/confirm-all", data=all_seen).status_code == 303
    assert "Confirmed: M1, M2." in two.get(base).get_data(as_text=True)
    assert [m.review for m in _marks(app)] == ["confirmed", "confirmed"]
    html = two.get(base).get_data(as_text=True)
    assert "Proposed" in html and "Confirmed" in html  # the history


def test_bad_input_is_refused_and_changes_nothing(portal: tuple[Flask, object]) -> None:
    app, world = portal
    base = f"/review/{world.rfa_code}/items/ITM-R0001"  # type: ignore[attr-defined]
    one = _client(app, world.officer)  # type: ignore[attr-defined]
    token = csrf_token(one.get(base))
    good = {"csrf_token": token, "page": "1", "x0": "0.1", "y0": "0.1", "x1": "0.2", "y1": "0.2",
            "reason": REASON}  # fmt: skip
    cases = [
        ({**good, "x1": "1.5"}, "lie on the page"),
        ({**good, "x1": "0.1"}, "width and a height"),
        ({**good, "y0": "0.5"}, "width and a height"),
        ({**good, "page": "9"}, "has 3 page(s)"),
        ({**good, "page": "two"}, "whole number"),
        ({**good, "x0": "left"}, "number from 0 to 1"),
        ({**good, "reason": "because"}, "reason for the mark from the list"),
    ]
    for data, message in cases:
        assert one.post(f"{base}/marks/box", data=data).status_code == 303
        assert message in one.get(base).get_data(as_text=True), message
    one.post(f"{base}/marks/term", data={"csrf_token": token, "term": "Q", "reason": REASON})
    assert "too short" in one.get(base).get_data(as_text=True)
    assert _marks(app) == []
    one.post(f"{base}/marks/M9/confirm", data={"csrf_token": token, "version": "1"})
    assert "has no mark M9" in one.get(base).get_data(as_text=True)


def test_only_legal_officers_see_an_item_of_the_request(portal: tuple[Flask, object]) -> None:
    app, world = portal
    one = _client(app, world.officer)  # type: ignore[attr-defined]
    rfa = world.rfa_code  # type: ignore[attr-defined]
    with portal_state(app).sessions() as session:
        stranger = make.item(session, make.provider(session), code="ITM-R0002")
        admin = make_user(session, "admin")
        session.commit()
        del stranger
    assert one.get(f"/review/{rfa}/items/ITM-R0002").status_code == 404  # not a candidate
    assert one.get("/review/RFA-1999-0001/items/ITM-R0001").status_code == 404
    token = csrf_token(one.get(f"/review/{rfa}/items/ITM-R0001"))
    term = {"csrf_token": token, "term": NAME, "reason": REASON}
    assert one.post(f"/review/{rfa}/items/ITM-R0002/marks/term", data=term).status_code == 404
    assert _client(app, admin).get(f"/review/{rfa}/items/ITM-R0001").status_code in (403, 404)


def test_pages_come_from_the_cache_with_a_placeholder_first(portal: tuple[Flask, object]) -> None:
    app, world = portal
    one = _client(app, world.officer)  # type: ignore[attr-defined]
    url = f"/review/{world.rfa_code}/items/ITM-R0001/pages/2.png"  # type: ignore[attr-defined]
    first = one.get(url)
    assert first.status_code == 200 and first.mimetype == "image/svg+xml"
    assert first.headers["Cache-Control"] == "no-store" and first.headers["Retry-After"] == "2"
    second = one.get(url)  # the (immediate) worker rendered pages 2 to 3 meanwhile
    assert second.status_code == 200 and second.mimetype == "image/png"
    assert second.headers["Cache-Control"].startswith("private")
    assert second.data.startswith(b"\x89PNG")
    assert one.get(f"/review/{world.rfa_code}/items/ITM-R0001/pages/3.png").mimetype == "image/png"  # type: ignore[attr-defined]


def test_the_pages_are_searched_for_the_register_and_the_terms(
    portal: tuple[Flask, object],
) -> None:
    """A worker searches every page (text layer here; OCR on scans) for the item's terms and
    every register identifier: the page lists the codes with their pages and outlines each
    hit on its page — codes only, never the register's value."""
    app, world = portal
    base = f"/review/{world.rfa_code}/items/ITM-R0001"  # type: ignore[attr-defined]
    with portal_state(app).sessions() as session:
        identifier = register(session, portal_state(app).sealer, make.person(session), LATIN_NAME)
        code = identifier.code
        session.commit()
    one = _client(app, world.officer)  # type: ignore[attr-defined]
    page = one.get(base)
    assert "Search the pages for the register and the terms" in page.get_data(as_text=True)
    token = csrf_token(page)
    one.post(f"{base}/marks/term", data={"csrf_token": token, "term": NAME, "reason": REASON})
    assert one.post(f"{base}/find", data={"csrf_token": token}).status_code == 303
    html = one.get(base).get_data(as_text=True)
    found = html[html.index('id="names"') : html.index('id="add-term"')]
    assert f"<code>{code}</code>: " in found and 'data-page="3">p. 3</a>' in found
    assert "<code>M1</code>: " in found and 'data-page="2">p. 2</a>' in found
    assert LATIN_NAME not in html  # the register's value is never shown here
    page_three = html[html.index('id="page-3"') :]
    assert 'class="overlay-hit"' in page_three and f'data-code="{code}"' in page_three
    # A new mark changes what is searched for: the old result is not shown as current.
    one.post(
        f"{base}/marks/term", data={"csrf_token": token, "term": "the convoy", "reason": REASON}
    )
    assert "Search the pages for the register and the terms" in one.get(base).get_data(as_text=True)
