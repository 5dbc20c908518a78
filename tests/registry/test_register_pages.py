"""The register's pages over real HTTP: legal officers list persons at risk, read and add
identifiers and retire them; values appear on the person page only, never in messages, audit
events or logs; a missing or wrong sealing key is a clear 503."""

from __future__ import annotations

import logging
import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.registry.models import Person, ProtectedIdentifier
from portal.sealing import Sealer
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.identifiers import ARABIC_NAME, BURMESE_NAME, LATIN_NAME, register

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _error_box(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    return _text(found.group(0)) if found else ""


def _client(app: Flask, role: str) -> tuple[FlaskClient, Credentials]:
    with portal_state(app).sessions() as session:
        creds = make_user(session, role)
    client = app.test_client()
    login(client, creds)
    return client, creds


@pytest.fixture
def officer(app: Flask) -> FlaskClient:
    return _client(app, "legal_officer")[0]


@pytest.fixture
def persons(app: Flask) -> dict[str, str]:
    """A person at risk with an identifier, one at risk without, one not at risk."""
    with portal_state(app).sessions() as session:
        named = make.person(session, pseudonym="Witness Heron")
        register(session, portal_state(app).sealer, named, LATIN_NAME)
        bare = make.person(session, pseudonym="Witness Plover")
        safe = make.person(session, pseudonym="Witness Lark", at_risk=False)
        session.commit()
        return {"named": named.code, "bare": bare.code, "safe": safe.code}


def _post(client: FlaskClient, url: str, page: str, **data: str) -> object:
    token = csrf_token(client.get(page))
    return client.post(url, data={"csrf_token": token, **data})


def test_the_register_lists_persons_at_risk_with_counts(
    officer: FlaskClient, persons: dict[str, str]
) -> None:
    page = officer.get("/register")
    assert page.status_code == 200
    text = _text(page.get_data(as_text=True))
    # the role as the labels module says it (portal/pages/labels.py PERSON_ROLE)
    assert f"{persons['named']} Witness Heron Witness Yes 1" in text
    assert f"{persons['bare']} Witness Plover Witness Yes 0 None yet" in text
    assert persons["safe"] not in text
    assert LATIN_NAME not in text  # counts only: values are on the person page
    home = officer.get("/").get_data(as_text=True)
    assert 'href="/register"' in home


def test_adding_an_identifier(
    app: Flask, officer: FlaskClient, persons: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = persons["bare"]
    page = f"/register/{code}"
    response = _post(
        officer, f"{page}/identifiers", page, kind="transliteration", value=f" {ARABIC_NAME} "
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(page)
    shown = officer.get(page).get_data(as_text=True)
    assert ARABIC_NAME in shown and "Transliteration" in shown
    with portal_state(app).sessions() as session:
        person = session.scalars(select(Person).where(Person.code == code)).one()
        row = session.scalars(
            select(ProtectedIdentifier).where(ProtectedIdentifier.person_id == person.id)
        ).one()
        assert ARABIC_NAME not in row.sealed
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "identifier.add")
        ).all()[-1]
    flash = _text(re.search(r'class="flash[^>]*>.*?</', shown, re.S).group(0))  # type: ignore[union-attr]
    assert row.code in flash and ARABIC_NAME not in flash
    assert event.target == f"person:{code}" and row.code in event.details
    assert ARABIC_NAME not in event.details
    assert ARABIC_NAME not in caplog.text


def test_refusals_name_the_code_never_the_value(
    officer: FlaskClient, persons: dict[str, str]
) -> None:
    code = persons["named"]
    page = f"/register/{code}"
    short = _post(officer, f"{page}/identifiers", page, kind="alias", value="Ng")
    assert short.status_code == 400
    message = _error_box(short.get_data(as_text=True))
    assert f"The alias for {code} needs at least 3" in message and "Ng" not in message
    twice = _post(officer, f"{page}/identifiers", page, kind="name", value=LATIN_NAME.upper())
    assert twice.status_code == 400
    message = _error_box(twice.get_data(as_text=True))
    assert "already registered" in message and "PID-" in message
    assert LATIN_NAME.upper() not in message and LATIN_NAME not in message
    safe = f"/register/{persons['safe']}"
    refused = _post(officer, f"{safe}/identifiers", safe, kind="name", value=BURMESE_NAME)
    assert refused.status_code == 400
    assert "not flagged at risk" in _error_box(refused.get_data(as_text=True))


def test_retiring_an_identifier(app: Flask, officer: FlaskClient, persons: dict[str, str]) -> None:
    page = f"/register/{persons['named']}"
    with portal_state(app).sessions() as session:
        identifier = session.scalars(select(ProtectedIdentifier)).one().code
    url = f"{page}/identifiers/{identifier}/retire"
    unconfirmed = _post(officer, url, page)
    assert unconfirmed.status_code == 400
    assert f"Confirm that {identifier}" in _error_box(unconfirmed.get_data(as_text=True))
    assert _post(officer, url, page, confirm="yes").status_code == 303
    text = _text(officer.get(page).get_data(as_text=True))
    assert f"{identifier} Name {LATIN_NAME}" in text and "Retired" in text
    again = _post(officer, url, page, confirm="yes")
    assert "already retired" in _error_box(again.get_data(as_text=True))
    assert officer.get("/register").status_code == 200
    missing = _post(officer, f"{page}/identifiers/PID-1999-00001/retire", page, confirm="yes")
    assert missing.status_code == 404


def test_nobody_else_sees_a_value(app: Flask, persons: dict[str, str]) -> None:
    for role in ("admin", "requester", "recipient", "provider"):
        client, _ = _client(app, role)
        for url in ("/register", f"/register/{persons['named']}"):
            response = client.get(url)
            assert response.status_code == 403, (role, url)
            assert LATIN_NAME not in response.get_data(as_text=True)
        assert 'href="/register"' not in client.get("/").get_data(as_text=True)


def test_a_wrong_sealing_key_is_a_clear_error(
    app: Flask, officer: FlaskClient, persons: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    portal_state(app).sealer = Sealer.random()  # as if the key file had been replaced
    response = officer.get(f"/register/{persons['named']}")
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "Register unavailable" in body and LATIN_NAME not in body
    assert "sealed under another key" in caplog.text and LATIN_NAME not in caplog.text
