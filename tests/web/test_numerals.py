"""Numerals in query strings and forms: "¹" (a digit to ``str.isdigit`` that ``int`` refuses),
Arabic-Indic digits and 23-digit numbers (beyond PostgreSQL's integer) answer a clear 400 /
422 or are ignored — never a 500 — on both databases."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.pages.numerals import MAX_ID, whole_number, whole_numbers
from portal.paging import page_number
from portal.state import portal_state
from tests.support.api import api_client, bearer, token_for
from tests.support.auth import login, make_user

pytest_plugins = ["tests.support.auth"]

HUGE = "9" * 23
ODD = ("¹", "٣", "²³", HUGE, "-1", "+1", "1e3", " ", "0x10", "1_000", "\uff11")


@pytest.mark.parametrize("text", ODD)
def test_only_ascii_digits_within_bounds_are_whole_numbers(text: str) -> None:
    assert whole_number(text) is None
    assert page_number(text) == 1


def test_whole_numbers_are_read() -> None:
    assert whole_number(" 42 ") == 42
    assert whole_number(str(MAX_ID)) == MAX_ID
    assert whole_number(str(MAX_ID + 1)) is None
    assert whole_number("7", maximum=5) is None
    assert whole_numbers(["1", "2"]) == [1, 2]
    assert whole_numbers(["1", "¹"]) is None
    assert page_number("3") == 3 and page_number("0") == 1


def _signed_in(app: Flask, role: str, **where: str) -> FlaskClient:
    with portal_state(app).sessions() as session:
        creds = make_user(session, role, **where)
    client = app.test_client()
    login(client, creds)
    return client


@pytest.mark.parametrize("value", ["¹", HUGE, "٣"])
def test_pages_answer_odd_numerals_without_a_server_error(app: Flask, value: str) -> None:
    requester = _signed_in(app, "requester", authority_code="AUTH-A")
    officer = _signed_in(app, "legal_officer")
    assert requester.get("/requests", query_string={"page": value}).status_code == 200
    assert officer.get("/packages", query_string={"page": value}).status_code == 200
    assert officer.get("/eligibility/requests", query_string={"page": value}).status_code == 200
    assert officer.get("/triage", query_string={"page": value}).status_code == 200
    for name in ("authority", "assignee"):
        refused = officer.get("/triage", query_string={name: value})
        assert refused.status_code == 400, name
        assert "from the list" in refused.get_data(as_text=True)


@pytest.mark.parametrize("value", ["¹", HUGE, "٣"])
def test_the_api_list_refuses_odd_page_numbers(app: Flask, value: str) -> None:
    client = app.test_client()
    token = token_for(client, api_client(app, authority_code="AUTH-A"))
    response = client.get("/api/v1/requests", query_string={"page": value}, headers=bearer(token))
    assert response.status_code == 422
    assert "whole number" in response.get_data(as_text=True)
