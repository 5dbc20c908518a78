"""The requester's request pages over real HTTP: drafts, submission, validation, scoping,
withdrawal, the clarification thread, optimistic locking and CSRF."""

from __future__ import annotations

import re
import threading
import time
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.rfa.drafting import RfaFields, create_draft, next_code
from portal.rfa.models import Message, Rfa, RfaStatusChange
from portal.rfa.status import transition
from portal.state import portal_state
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]

_VERSION = re.compile(r'name="version" type="hidden" value="(\d+)"')


def offence(app: Flask, index: int = 0) -> str:
    return portal_state(app).policy.mandate.offences()[index]


def complete(app: Flask, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "their_reference": "WCU-2026/117",
        "legal_basis": "Mutual Legal Assistance Act (fictional), s. 12",
        "proceedings_type": "investigation",
        "offences": [offence(app), offence(app, 1)],
        "persons_concerned": "Unknown members of the 4th Brigade (fictional)",
        "summary_of_facts": "Detention of civilians at a school in Dremna (fictional).",
        "assistance_sought": "Witness statements and photographs of the detention site.",
        "period_from": "2023-06-01",
        "period_to": "2023-09-30",
        "places": "Dremna, Oskaran Highlands",
        "urgency": "normal",
        "urgency_justification": "",
        "deadline": "",
        "confidentiality": "Do not disclose the request to the suspects.",
    }
    data.update(overrides)
    return data


def signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def post_form(client: FlaskClient, page: str, url: str, data: dict[str, Any]) -> TestResponse:
    """POST ``data`` to ``url`` with the CSRF token (and version, if any) of ``page``."""
    response = client.get(page)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    fields = {"csrf_token": csrf_token(response), **data}
    found = _VERSION.search(body)
    if found is not None and "version" not in data:
        fields["version"] = found.group(1)
    return client.post(url, data=fields)


def the_rfa(db: Session, code: str) -> Rfa:
    db.expire_all()
    rfa = db.scalar(select(Rfa).where(Rfa.code == code))
    assert rfa is not None
    return rfa


def actions(db: Session, code: str) -> list[str]:
    return list(
        db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target == f"rfa:{code}")
            .order_by(AuditEvent.seq)
        )
    )


def new_draft(client: FlaskClient, data: dict[str, Any]) -> str:
    response = post_form(client, "/requests/new", "/requests/new", {**data, "action": "save"})
    assert response.status_code == 303, response.get_data(as_text=True)
    code = response.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"RFA-\d{4}-\d{4}", code)
    return code


@pytest.fixture
def requester(db: Session) -> Credentials:
    return make_user(db, "requester", authority_code="AUTH-A")


def test_requester_creates_edits_and_submits(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, {"their_reference": "WCU-DRAFT", "proceedings_type": "trial"})
    assert code == f"RFA-{utcnow().year}-0001"
    rfa = the_rfa(db, code)
    assert (rfa.status, rfa.their_reference, rfa.submitted_at) == ("draft", "WCU-DRAFT", None)
    assert actions(db, code) == ["rfa.create"]

    edit = f"/requests/{code}/edit"
    response = post_form(client, edit, edit, complete(app, action="save"))
    assert response.status_code == 303
    rfa = the_rfa(db, code)
    assert rfa.status == "draft"
    assert rfa.offences == [offence(app), offence(app, 1)]
    assert rfa.period_from == date(2023, 6, 1)

    response = post_form(client, edit, edit, complete(app, action="submit"))
    assert response.status_code == 303
    rfa = the_rfa(db, code)
    assert rfa.status == "submitted"
    assert rfa.submitted_at is not None
    steps = db.scalars(select(RfaStatusChange).where(RfaStatusChange.rfa_id == rfa.id)).all()
    assert [(s.from_status, s.to_status) for s in steps] == [("draft", "submitted")]
    assert actions(db, code) == ["rfa.create", "rfa.update", "rfa.transition"]
    details = " ".join(db.scalars(select(AuditEvent.details)))
    assert "WCU-2026/117" not in details and "Dremna" not in details

    page = client.get(f"/requests/{code}").get_data(as_text=True)
    assert "Submitted" in page and "Detention of civilians" in page
    listing = client.get("/requests").get_data(as_text=True)
    assert code in listing and "WCU-2026/117" in listing
    # Submitted requests are no longer editable.
    response = post_form(client, f"/requests/{code}", edit, complete(app, their_reference="X"))
    assert response.status_code == 303
    assert the_rfa(db, code).their_reference == "WCU-2026/117"


def test_submitting_straight_from_the_new_form(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    response = post_form(client, "/requests/new", "/requests/new", complete(app, action="submit"))
    assert response.status_code == 303
    code = response.headers["Location"].rsplit("/", 1)[1]
    assert the_rfa(db, code).status == "submitted"


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"summary_of_facts": "", "offences": []}, "Enter a summary of the facts."),
        ({"offences": []}, "Choose at least one offence."),
        ({"urgency": "urgent"}, "Explain why the request is urgent."),
        ({"period_to": "2023-05-01"}, "The end of the period must not be before its start."),
        ({"period_from": "1 June"}, "Enter a date as YYYY-MM-DD."),
        ({"offences": ["Jaywalking"]}, "Jaywalking is not one."),
    ],
)
def test_invalid_submission_is_refused_and_changes_nothing(
    app: Flask,
    db: Session,
    requester: Credentials,
    changes: dict[str, Any],
    field_message: str,
) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, {"their_reference": "WCU-KEEP", "proceedings_type": "trial"})
    before = the_rfa(db, code)
    version, events = before.version, actions(db, code)

    edit = f"/requests/{code}/edit"
    response = post_form(client, edit, edit, complete(app, action="submit", **changes))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "There is a problem" in page and field_message in page
    assert "Detention of civilians" in page or "summary_of_facts" in changes  # entries kept
    after = the_rfa(db, code)
    assert (after.status, after.version, after.their_reference) == ("draft", version, "WCU-KEEP")
    assert actions(db, code) == events


def test_a_draft_needs_a_reference(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    response = post_form(client, "/requests/new", "/requests/new", {"action": "save"})
    assert response.status_code == 400
    assert "Enter your reference for this request." in response.get_data(as_text=True)
    assert db.scalar(select(func.count(Rfa.id))) == 0


def test_other_authorities_and_roles_are_kept_out(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    post_form(
        client, f"/requests/{code}/edit", f"/requests/{code}/edit", complete(app, action="submit")
    )
    assert the_rfa(db, code).status == "submitted"

    other = signed_in(app, make_user(db, "requester", authority_code="AUTH-B"))
    assert other.get(f"/requests/{code}").status_code == 404
    assert code not in other.get("/requests").get_data(as_text=True)
    response = post_form(other, "/requests", f"/requests/{code}/messages", {"body": "Hello"})
    assert response.status_code == 404
    assert db.scalar(select(func.count(Message.id))) == 0

    provider = signed_in(app, make_user(db, "provider"))
    assert provider.get(f"/requests/{code}").status_code == 403
    assert provider.get("/requests").status_code == 403


def test_staff_see_submitted_requests_but_not_drafts(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    draft = new_draft(client, {"their_reference": "WCU-D", "proceedings_type": "trial"})
    officer = signed_in(app, make_user(db, "legal_officer"))
    assert officer.get(f"/requests/{draft}").status_code == 404
    assert draft not in officer.get("/requests").get_data(as_text=True)


def test_withdraw_works_once(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    page, url = f"/requests/{code}", f"/requests/{code}/withdraw"
    assert "Withdraw the request" not in client.get(page).get_data(as_text=True)
    response = post_form(client, page, url, {"reason": "Not needed.", "confirm": "y"})
    assert response.status_code == 409
    assert "cannot become withdrawn" in response.get_data(as_text=True)
    edit = f"/requests/{code}/edit"
    post_form(client, edit, edit, complete(app, action="submit"))
    assert the_rfa(db, code).status == "submitted"

    response = post_form(client, page, url, {"reason": "Case closed nationally."})
    assert response.status_code == 400
    assert "Tick the box to confirm the withdrawal." in response.get_data(as_text=True)
    assert the_rfa(db, code).status == "submitted"

    response = post_form(client, page, url, {"reason": "Case closed.", "confirm": "y"})
    assert response.status_code == 303
    assert the_rfa(db, code).status == "withdrawn"
    step = db.scalars(select(RfaStatusChange).where(RfaStatusChange.to_status == "withdrawn")).one()
    assert step.note == "Case closed."
    assert "Case closed." in client.get(page).get_data(as_text=True)

    response = post_form(client, page, url, {"reason": "Again.", "confirm": "y"})
    assert response.status_code == 409
    assert "cannot become withdrawn" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(RfaStatusChange.id))) == 2


def test_clarification_round_trip(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    post_form(
        client, f"/requests/{code}/edit", f"/requests/{code}/edit", complete(app, action="submit")
    )
    officer_creds = make_user(db, "legal_officer")
    officer = signed_in(app, officer_creds)
    page, url = f"/requests/{code}", f"/requests/{code}/messages"

    response = post_form(officer, page, url, {"body": "Which school in Dremna?", "action": "post"})
    assert response.status_code == 303
    rfa = the_rfa(db, code)
    staff = db.get(User, officer_creds.user_id)
    assert staff is not None
    transition(db, rfa, "in_review", by=staff)
    transition(db, rfa, "clarification_requested", by=staff, note="See the thread.")
    db.commit()

    seen = client.get(page).get_data(as_text=True)
    assert "Which school in Dremna?" in seen and "(Legal officer)" in seen
    assert "Answer and return to review" in seen
    # Only a requester's answer returns it to review.
    response = post_form(officer, page, url, {"body": "Well?", "action": "answer"})
    assert response.status_code == 409
    assert the_rfa(db, code).status == "clarification_requested"

    response = post_form(client, page, url, {"body": "The primary school.", "action": "answer"})
    assert response.status_code == 303
    assert the_rfa(db, code).status == "in_review"
    bodies = db.scalars(select(Message.body).order_by(Message.id)).all()
    assert bodies == ["Which school in Dremna?", "The primary school."]
    assert actions(db, code)[-3:] == ["rfa.transition", "rfa.message", "rfa.transition"]

    response = post_form(client, page, url, {"body": "   "})
    assert response.status_code == 400
    assert "Write a message." in response.get_data(as_text=True)


def test_stale_edit_is_refused_and_loses_nothing(
    app: Flask, db: Session, requester: Credentials
) -> None:
    first = signed_in(app, requester)
    second = signed_in(app, make_user(db, "requester", authority_code="AUTH-A"))
    code = new_draft(first, complete(app))
    edit = f"/requests/{code}/edit"
    stale_page = first.get(edit)
    stale_token = csrf_token(stale_page)
    found = _VERSION.search(stale_page.get_data(as_text=True))
    assert found is not None
    stale_version = found.group(1)

    response = post_form(second, edit, edit, complete(app, places="Saved by second", action="save"))
    assert response.status_code == 303

    response = first.post(
        edit,
        data={
            "csrf_token": stale_token,
            "version": stale_version,
            **complete(app, places="Typed by first", action="save"),
        },
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else saved this request" in page
    assert "Typed by first" in page  # the entries are still in the form
    assert the_rfa(db, code).places == "Saved by second"


def test_csrf_is_required(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    response = client.post("/requests/new", data=complete(app, action="save"))
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(Rfa.id))) == 0


def test_codes_count_up_per_year(app: Flask, db: Session, requester: Credentials) -> None:
    author = db.get(User, requester.user_id)
    assert author is not None
    mandate = portal_state(app).policy.mandate
    fields = RfaFields(their_reference="R", proceedings_type="trial")
    first = create_draft(db, author, fields, mandate)
    db.commit()
    year = utcnow().year
    assert first.code == f"RFA-{year}-0001"
    assert next_code(db, year) == f"RFA-{year}-0002"
    assert next_code(db, year + 1) == f"RFA-{year + 1}-0001"


def test_concurrent_drafts_get_distinct_codes(app: Flask, requester: Credentials) -> None:
    """Two transactions allocating at once on PostgreSQL: the second waits on the unique
    code, gets the violation when the first commits, and retries with the next number."""
    state = portal_state(app)
    if state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with its database lock; no clash can happen")
    fields = RfaFields(their_reference="R", proceedings_type="trial")
    codes: list[str] = []
    failures: list[BaseException] = []

    def second_writer() -> None:
        try:
            with state.sessions() as session:
                author = session.get(User, requester.user_id)
                assert author is not None
                codes.append(create_draft(session, author, fields, state.policy.mandate).code)
                session.commit()
        except BaseException as exc:  # reported to the main thread
            failures.append(exc)

    with state.sessions() as first:
        author = first.get(User, requester.user_id)
        assert author is not None
        codes.append(create_draft(first, author, fields, state.policy.mandate).code)
        worker = threading.Thread(target=second_writer)
        worker.start()
        time.sleep(0.5)  # the second insert is now waiting on the first's uncommitted code
        first.commit()
    worker.join(timeout=30)
    assert not worker.is_alive() and failures == []
    year = utcnow().year
    assert codes == [f"RFA-{year}-0001", f"RFA-{year}-0002"]


def test_request_list_is_paged(app: Flask, db: Session, requester: Credentials) -> None:
    author = db.get(User, requester.user_id)
    assert author is not None
    mandate = portal_state(app).policy.mandate
    for n in range(61):
        create_draft(db, author, RfaFields(their_reference=f"REF-{n}", proceedings_type="trial"),
                     mandate)  # fmt: skip
    db.commit()
    client = signed_in(app, requester)
    codes = re.compile(r'href="/requests/(RFA-\d{4}-\d{4})"')
    first = client.get("/requests").get_data(as_text=True)
    second = client.get("/requests?page=2").get_data(as_text=True)
    one, two = codes.findall(first), codes.findall(second)
    assert (len(one), len(two)) == (50, 11) and not set(one) & set(two)
    assert "Page 1 of 2" in first and 'href="/requests?page=2" rel="next"' in first
    assert "Page 2 of 2" in second and 'href="/requests?page=1" rel="prev"' in second
    assert "61 requests" in first
    # Another authority's requester sees none of them.
    other = signed_in(app, make_user(db, "requester", authority_code="AUTH-B"))
    assert codes.findall(other.get("/requests").get_data(as_text=True)) == []
