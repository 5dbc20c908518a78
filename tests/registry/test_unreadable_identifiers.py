"""An identifier whose sealed value does not open (sealed with another key, or damaged), after
the security review of issue 14: the person page lists it as such and lets an officer retire
it, while the withheld identifiers (what package assembly checks) still fail closed, naming its
code and never a value."""

from __future__ import annotations

import logging
import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.registry.identifiers import (
    UnreadableIdentifiers,
    identifiers_withheld_from,
    purpose,
    retire_identifier,
)
from portal.registry.models import ProtectedIdentifier
from portal.sealing import Sealer, SealingError
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import csrf_token, login, make_user
from tests.support.identifiers import ARABIC_NAME, BURMESE_NAME, LATIN_NAME, register

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

VALUES = (LATIN_NAME, ARABIC_NAME, BURMESE_NAME)


def _damage(row: ProtectedIdentifier, value: str, how: str) -> None:
    if how == "another key":  # as if restored from another portal
        row.sealed = Sealer.random().seal(value, purpose(row.code))
    else:  # one byte of the ciphertext altered
        head, body = row.sealed.rsplit(":", 1)
        row.sealed = f"{head}:{'B' if body[0] == 'A' else 'A'}{body[1:]}"


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def world(app: Flask) -> tuple[str, str, str]:
    """A person at risk with a readable identifier and one sealed with another key; returns
    (person code, readable code, unreadable code)."""
    state = portal_state(app)
    with state.sessions() as session:
        person = make.person(session, pseudonym="Witness Heron")
        readable = register(session, state.sealer, person, LATIN_NAME)
        unreadable = register(session, state.sealer, person, ARABIC_NAME, "transliteration")
        _damage(unreadable, ARABIC_NAME, "another key")
        session.commit()
        return person.code, readable.code, unreadable.code


@pytest.fixture
def officer(app: Flask) -> FlaskClient:
    with portal_state(app).sessions() as session:
        creds = make_user(session, "legal_officer")
    client = app.test_client()
    login(client, creds)
    return client


def test_the_person_page_lists_an_unreadable_identifier_and_retires_it(
    app: Flask,
    officer: FlaskClient,
    world: tuple[str, str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    person, readable, unreadable = world
    page = f"/register/{person}"
    response = officer.get(page)
    assert response.status_code == 200
    text = _text(response.get_data(as_text=True))
    assert f"{readable} Name {LATIN_NAME}" in text
    assert (
        f"{unreadable} Transliteration Cannot be opened (sealed with another key or damaged)"
        in (text)
    )
    assert ARABIC_NAME not in text
    assert f"{unreadable} cannot be opened" in caplog.text

    token = csrf_token(response)
    retired = officer.post(
        f"{page}/identifiers/{unreadable}/retire", data={"csrf_token": token, "confirm": "yes"}
    )
    assert retired.status_code == 303
    text = _text(officer.get(page).get_data(as_text=True))
    assert f"{unreadable} Transliteration Cannot be opened" in text and "Retired" in text
    with portal_state(app).sessions() as session:
        row = session.scalars(
            select(ProtectedIdentifier).where(ProtectedIdentifier.code == unreadable)
        ).one()
        assert row.retired_at is not None
    for value in VALUES:
        assert value not in caplog.text


def test_the_page_can_still_add_once_the_unreadable_one_is_retired(
    app: Flask, officer: FlaskClient, world: tuple[str, str, str]
) -> None:
    person, _readable, unreadable = world
    page = f"/register/{person}"
    token = csrf_token(officer.get(page))
    url = f"{page}/identifiers/{unreadable}/retire"
    assert officer.post(url, data={"csrf_token": token, "confirm": "yes"}).status_code == 303
    added = officer.post(
        f"{page}/identifiers", data={"csrf_token": token, "kind": "alias", "value": BURMESE_NAME}
    )
    assert added.status_code == 303
    assert BURMESE_NAME in officer.get(page).get_data(as_text=True)


@pytest.mark.parametrize("how", ["another key", "altered"])
def test_withheld_identifiers_fail_closed_naming_the_code(session: Session, how: str) -> None:
    sealer = Sealer.random()
    person = make.person(session)
    other = make.person(session)
    kept = register(session, sealer, person, LATIN_NAME)
    damaged = register(session, sealer, person, ARABIC_NAME, "transliteration")
    also = register(session, sealer, other, BURMESE_NAME)
    _damage(damaged, ARABIC_NAME, how)
    _damage(also, BURMESE_NAME, how)
    session.flush()
    authority = make.authority(session)  # no witness-protection capacity: all are withheld

    with pytest.raises(UnreadableIdentifiers) as caught:
        identifiers_withheld_from(session, sealer, authority)
    assert isinstance(caught.value, SealingError)  # what package assembly turns into a failure
    assert caught.value.codes == (damaged.code, also.code)
    message = str(caught.value)
    assert f"{damaged.code}, {also.code} cannot be opened" in message
    assert kept.code not in message and "retire" in message
    for value in VALUES:
        assert value not in message

    officer = make.user(session)
    retire_identifier(session, damaged, by=officer)
    retire_identifier(session, also, by=officer)
    assert identifiers_withheld_from(session, sealer, authority) == [(kept.code, LATIN_NAME)]


def test_a_replaced_key_still_makes_the_page_unavailable(
    app: Flask, officer: FlaskClient, world: tuple[str, str, str]
) -> None:
    portal_state(app).sealer = Sealer.random()  # opens no row of the register at all
    response = officer.get(f"/register/{world[0]}")
    assert response.status_code == 503
    assert LATIN_NAME not in response.get_data(as_text=True)
