"""Requests for assistance over the JSON API, on both databases: a submission makes the same
request as the form would (same function, same validation messages), nothing is saved when
refused, the list is the authority's own and paged, another authority's request is 404,
and the clarification thread reads and writes like the page's."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.rfa.drafting import RfaFields, post_message
from portal.rfa.models import Message, Rfa
from portal.rfa.status import transition
from tests.api.test_api_oauth import is_problem
from tests.rfa.test_requests_pages import complete, post_form, signed_in
from tests.support.api import api_client, bearer, token_for
from tests.support.auth import login, make_user

pytest_plugins = ["tests.support.auth"]


def as_json(form: dict[str, Any]) -> dict[str, Any]:
    """The form's entries as an API body (empty dates are left out)."""
    return {k: v for k, v in form.items() if v != "" or k not in ("deadline",)}


def rfa_of(db: Session, code: str) -> Rfa:
    db.expire_all()
    rfa = db.scalar(select(Rfa).where(Rfa.code == code))
    assert rfa is not None
    return rfa


def test_submission_makes_the_same_request_as_the_form(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    api = api_client(app, authority_code="AUTH-A")
    token = token_for(client, api)
    response = client.post("/api/v1/requests", json=as_json(complete(app)), headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/requests/{body['code']}")
    assert body["status"] == "submitted" and body["offences"] == complete(app)["offences"]

    requester = make_user(db, "requester", authority_code="AUTH-A")
    browser = signed_in(app, requester)
    page = post_form(browser, "/requests/new", "/requests/new", complete(app, action="submit"))
    assert page.status_code == 303
    by_form = rfa_of(db, page.headers["Location"].rsplit("/", 1)[1])
    by_api = rfa_of(db, body["code"])
    assert RfaFields.of(by_api) == RfaFields.of(by_form)
    assert (by_api.status, by_api.authority_id) == (by_form.status, by_form.authority_id)
    assert by_api.submitted_at is not None and by_api.created_by_id is None
    actors = db.execute(
        select(AuditEvent.actor, AuditEvent.action)
        .where(AuditEvent.target == f"rfa:{by_api.code}")
        .order_by(AuditEvent.seq)
    ).all()
    assert [tuple(a) for a in actors] == [
        (f"api:{api.client_id}", "rfa.create"),
        (f"api:{api.client_id}", "rfa.transition"),
    ]
    # The authority's requesters see it on their pages like any other of theirs.
    assert body["code"] in browser.get("/requests").get_data(as_text=True)


def test_invalid_submission_gives_the_forms_messages_and_saves_nothing(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    token = token_for(client, api_client(app))
    cases = [
        ({"summary_of_facts": ""}, "summary_of_facts", "Enter a summary of the facts."),
        ({"offences": ["Jaywalking"]}, "offences", "Jaywalking is not one."),
        ({"urgency": "urgent"}, "urgency_justification", "Explain why the request is urgent."),
        ({"period_from": "1 June"}, "period_from", "Enter a date as YYYY-MM-DD."),
        ({"offences": "torture"}, "offences", "must be a list"),
        ({"their_reference": 12}, "their_reference", "must be a string"),
        ({"colour": "blue"}, "colour", "not part of a request"),
    ]
    for changes, field, message in cases:
        entries = {**as_json(complete(app)), **changes}
        response = client.post("/api/v1/requests", json=entries, headers=bearer(token))
        problem = is_problem(response, 422)
        assert problem["type"] == "urn:sharing-portal:problem:validation-failed"
        errors = problem["errors"]
        assert isinstance(errors, dict)
        assert any(message in m for m in errors[field]), (changes, errors)
        assert db.scalar(select(func.count()).select_from(Rfa)) == 0, changes
    for body in (None, [1, 2], "text"):
        response = client.post("/api/v1/requests", json=body, headers=bearer(token))
        is_problem(response, 400)
    assert db.scalar(select(func.count()).select_from(Rfa)) == 0


def test_list_is_the_authoritys_own_and_paged(app: Flask, client: FlaskClient) -> None:
    mine = token_for(client, api_client(app, authority_code="AUTH-A"))
    theirs = token_for(client, api_client(app, authority_code="AUTH-B"))
    codes = []
    for n in range(3):
        entries = as_json(complete(app, their_reference=f"REF-{n}"))
        codes.append(
            client.post("/api/v1/requests", json=entries, headers=bearer(mine)).get_json()["code"]
        )
    listing = client.get("/api/v1/requests", headers=bearer(mine)).get_json()
    assert [r["code"] for r in listing["items"]] == list(reversed(codes))
    assert (listing["page"], listing["pages"], listing["total"]) == (1, 1, 3)
    assert listing["items"][0]["status_label"] == "submitted"
    other = client.get("/api/v1/requests", headers=bearer(theirs)).get_json()
    assert other["items"] == [] and other["total"] == 0
    is_problem(client.get(f"/api/v1/requests/{codes[0]}", headers=bearer(theirs)), 404)
    is_problem(client.get(f"/api/v1/requests/{codes[0]}/messages", headers=bearer(theirs)), 404)
    posted = client.post(
        f"/api/v1/requests/{codes[0]}/messages", json={"body": "Hi"}, headers=bearer(theirs)
    )
    is_problem(posted, 404)
    is_problem(client.get("/api/v1/requests?page=0", headers=bearer(mine)), 422)
    beyond = client.get("/api/v1/requests?page=7", headers=bearer(mine)).get_json()
    assert beyond["page"] == 1  # past the end: the last page, as on the pages


def test_clarification_thread_read_and_answer(app: Flask, client: FlaskClient, db: Session) -> None:
    api = api_client(app, authority_code="AUTH-A")
    token = token_for(client, api)
    code = client.post(
        "/api/v1/requests", json=as_json(complete(app)), headers=bearer(token)
    ).get_json()["code"]
    officer_creds = make_user(db, "legal_officer")
    officer = db.get(User, officer_creds.user_id)
    assert officer is not None
    rfa = rfa_of(db, code)
    transition(db, rfa, "in_review", by=officer)
    transition(db, rfa, "clarification_requested", by=officer)
    post_message(db, rfa, officer, "Which school in Dremna?")
    db.commit()

    thread = client.get(f"/api/v1/requests/{code}/messages", headers=bearer(token)).get_json()
    assert [(m["body"], m["author_role"]) for m in thread["items"]] == [
        ("Which school in Dremna?", "legal_officer")
    ]
    bad = client.post(
        f"/api/v1/requests/{code}/messages", json={"body": "  "}, headers=bearer(token)
    )
    assert is_problem(bad, 422)["errors"] == {"body": ["Write a message."]}
    answer = client.post(
        f"/api/v1/requests/{code}/messages",
        json={"body": "The primary school.", "return_to_review": True},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert rfa_of(db, code).status == "in_review"
    again = client.post(
        f"/api/v1/requests/{code}/messages",
        json={"body": "Also this.", "return_to_review": True},
        headers=bearer(token),
    )
    is_problem(again, 409)  # no clarification is pending any more; nothing was posted
    assert db.scalar(select(func.count()).select_from(Message)) == 2
    detail = client.get(f"/api/v1/requests/{code}", headers=bearer(token)).get_json()
    assert detail["status"] == "in_review" and detail["status_label"] == "in review"
    read_only = token_for(client, api_client(app, authority_code="AUTH-A", scopes=["rfa:read"]))
    refused = client.post(
        f"/api/v1/requests/{code}/messages", json={"body": "x"}, headers=bearer(read_only)
    )
    is_problem(refused, 403)

    # On the page, a message posted through the API is credited to the authority's system.
    browser = app.test_client()
    login(browser, officer_creds)
    page = browser.get(f"/requests/{code}").get_data(as_text=True)
    assert "The authority's system (API)" in page  # a translated string, not escaped again
    assert "Former user" not in page
