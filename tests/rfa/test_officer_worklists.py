"""The legal officer's daily work over real HTTP, on both databases (issue 22): the requests
list (columns, search, filters, sorting, pages), bulk assignment and bulk status moves with a
result per row, and the dashboard's worklists with their counts and lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.consent.models import ConsentRequest
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.packages.models import Package
from portal.registry.models import Authority
from portal.rfa.models import Rfa, RfaStatusChange
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

ROW_CODES = re.compile(r'<th scope="row"[^>]*><a href="/triage/(RFA-[0-9-]+)"')


@dataclass
class Office:
    officer: Credentials
    colleague: Credentials
    requester: Credentials
    north: Authority
    south: Authority


@pytest.fixture
def office(db: Session) -> Office:
    officer = make_user(db, "legal_officer")
    colleague = make_user(db, "legal_officer")
    make.stored(db, User, colleague.user_id).display_name = "Carl Colleague"
    requester = make_user(db, "requester", authority_code="AUTH-N")
    make_user(db, "requester", authority_code="AUTH-S")
    by_code = {a.code: a for a in db.scalars(select(Authority))}
    north, south = by_code["AUTH-N"], by_code["AUTH-S"]
    north.name, south.name = "Northland War Crimes Unit", "Southland Prosecution"
    db.commit()
    return Office(officer, colleague, requester, north, south)


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _codes(client: FlaskClient, **args: str) -> list[str]:
    response = client.get("/requests", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)
    return ROW_CODES.findall(response.get_data(as_text=True))


def _post(client: FlaskClient, page: str, url: str, data: dict[str, object]) -> TestResponse:
    token = csrf_token(client.get(page))
    return client.post(url, data={"csrf_token": token, **data})


def _rfa(db: Session, authority: Authority, code: str, **fields: object) -> Rfa:
    return make.rfa(db, authority, code, **fields)


# --- the requests list ---------------------------------------------------------------------------


def test_officers_list_has_authority_status_deadline_assignee_and_no_your_reference(
    app: Flask, db: Session, office: Office
) -> None:
    today = utcnow().date()
    _rfa(db, office.north, "RFA-2026-0001", deadline=today + timedelta(days=3))
    _rfa(db, office.south, "RFA-2026-0002", status="partially_approved")
    _rfa(db, office.north, "RFA-2026-0003", status="draft")
    db.commit()
    page = _signed_in(app, office.officer).get("/requests").get_data(as_text=True)
    assert "Your reference" not in page
    for heading in ("Request", "Authority", "Status", "Deadline", "Assigned to"):
        assert f">{heading}" in page
    assert "Northland War Crimes Unit" in page and "Southland Prosecution" in page
    shown = re.sub(r"<[^>]+>", " ", page)  # the text people read, not attributes
    assert "Partially approved" in shown and "partially_approved" not in shown
    assert (today + timedelta(days=3)).isoformat() in page
    assert "RFA-2026-0003" not in page  # staff never see drafts
    # The requester's page is as it was.
    mine = _signed_in(app, office.requester).get("/requests").get_data(as_text=True)
    assert "Your reference" in mine and 'name="q"' not in mine


def test_search_filters_sorting_and_pages(app: Flask, db: Session, office: Office) -> None:
    today = utcnow().date()
    officer_id = office.officer.user_id
    _rfa(db, office.north, "RFA-2026-0011", their_reference="NL-ALPHA-7",
         deadline=today + timedelta(days=20))  # fmt: skip
    _rfa(db, office.south, "RFA-2026-0012", summary_of_facts="Shelling of the Fictional bridge",
         deadline=today - timedelta(days=2), assigned_to_id=officer_id)  # fmt: skip
    _rfa(db, office.north, "RFA-2026-0013", status="in_review", deadline=today + timedelta(days=5))
    _rfa(db, office.south, "RFA-2026-0014", status="closed", deadline=today - timedelta(days=9))
    for n in range(52):  # pages of 50
        _rfa(db, office.north, f"RFA-2025-{n + 1:04d}", status="closed")
    db.commit()
    client = _signed_in(app, office.officer)

    assert _codes(client, q="nl-alpha") == ["RFA-2026-0011"]  # their reference, any case
    assert _codes(client, q="fictional BRIDGE") == ["RFA-2026-0012"]  # summary of facts
    assert _codes(client, q="RFA-2026-0013") == ["RFA-2026-0013"]
    assert _codes(client, q="100%_") == []  # LIKE wildcards are literal
    south = str(office.south.id)
    assert sorted(_codes(client, authority=south)) == ["RFA-2026-0012", "RFA-2026-0014"]
    assert _codes(client, status="in_review") == ["RFA-2026-0013"]
    assert _codes(client, assignee="me") == ["RFA-2026-0012"]
    assert "RFA-2026-0012" not in _codes(client, assignee="nobody")
    # Due windows count active requests only: the closed, overdue one is not due.
    assert _codes(client, due="overdue") == ["RFA-2026-0012"]
    assert _codes(client, due="7", sort="deadline", dir="asc") == ["RFA-2026-0012", "RFA-2026-0013"]
    assert _codes(client, due="30", sort="deadline", dir="desc") == [
        "RFA-2026-0011", "RFA-2026-0013", "RFA-2026-0012",
    ]  # fmt: skip
    by_authority = _codes(client, sort="authority", q="RFA-2026")
    assert by_authority[-2:] == ["RFA-2026-0012", "RFA-2026-0014"]  # Southland last
    first = _codes(client, sort="reference", dir="asc")
    assert first[0] == "RFA-2025-0001" and len(first) == 50
    second = client.get("/requests", query_string={"sort": "reference", "dir": "asc", "page": "2"})
    text = second.get_data(as_text=True)
    assert ROW_CODES.findall(text)[-1] == "RFA-2026-0014"
    assert "Page 2 of 2" in text and 'aria-sort="ascending"' in text
    assert "sort=reference" in text and "dir=asc" in text  # the pager keeps the sort


def test_unusable_filter_values_are_named_and_ignored_never_a_500(
    app: Flask, db: Session, office: Office
) -> None:
    _rfa(db, office.north, "RFA-2026-0021")
    db.commit()
    client = _signed_in(app, office.officer)
    response = client.get(
        "/requests",
        query_string={"status": "nonsense", "due": "tomorrow", "sort": "x", "authority": "a"},
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    for message in ("Choose a status", "Choose a due window", "Choose a column", "authority"):
        assert message in text
    assert "RFA-2026-0021" in text  # the list, without the unusable values


# --- bulk actions --------------------------------------------------------------------------------


def _results(response: TestResponse) -> dict[str, str]:
    rows = re.findall(
        r'<tr class="row-result row-result--(\w+)">\s*<th scope="row"><a [^>]*>([^<]+)</a></th>'
        r"\s*<td>[^<]*</td>\s*<td[^>]*>([^<]*)</td>",
        response.get_data(as_text=True),
    )
    return {code: f"{result}: {reason}" for result, code, reason in rows}


def test_bulk_assignment_reports_every_row(app: Flask, db: Session, office: Office) -> None:
    a = _rfa(db, office.north, "RFA-2026-0031")
    b = _rfa(db, office.south, "RFA-2026-0032", status="in_review")
    closed = _rfa(db, office.north, "RFA-2026-0033", status="closed")
    db.commit()
    client = _signed_in(app, office.officer)
    response = _post(
        client, "/triage", "/triage/bulk/assign",
        {"rfa": [a.code, b.code, closed.code, "RFA-1999-0001"],
         "assignee": str(office.colleague.user_id)},
    )  # fmt: skip
    assert response.status_code == 200
    results = _results(response)
    assert results[a.code].startswith("done") and results[b.code].startswith("done")
    assert results[closed.code] == "refused: Only requests in the queue can be assigned."
    assert results["RFA-1999-0001"] == "refused: No such request."
    assert "2 of 4 requests assigned to Carl Colleague" in response.get_data(as_text=True)
    db.expire_all()
    assignees = {r.code: r.assigned_to_id for r in db.scalars(select(Rfa))}
    assert assignees[a.code] == assignees[b.code] == office.colleague.user_id
    assert assignees[closed.code] is None
    assigned = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "rfa.assign")
    )
    assert assigned == 2
    assert audit.verify(db).ok
    # Nothing chosen, or a requester as assignee: refused as a whole, nothing changed.
    none = _post(client, "/triage", "/triage/bulk/assign", {"assignee": "me"})
    assert none.status_code == 400 and "Choose at least one request" in none.get_data(as_text=True)
    wrong = _post(
        client, "/triage", "/triage/bulk/assign",
        {"rfa": [a.code], "assignee": str(office.requester.user_id)},
    )  # fmt: skip
    assert wrong.status_code == 400
    assert "active legal officer" in wrong.get_data(as_text=True)


def test_bulk_status_move_goes_through_the_status_machine_row_by_row(
    app: Flask, db: Session, office: Office
) -> None:
    submitted = _rfa(db, office.north, "RFA-2026-0041")
    asking = _rfa(db, office.north, "RFA-2026-0042", status="clarification_requested")
    reviewing = _rfa(db, office.south, "RFA-2026-0043", status="in_review")
    draft = _rfa(db, office.north, "RFA-2026-0044", status="draft")
    db.commit()
    client = _signed_in(app, office.officer)
    codes = [submitted.code, asking.code, reviewing.code, draft.code]
    response = _post(
        client, "/requests", "/triage/bulk/status", {"rfa": codes, "to_status": "in_review"}
    )
    assert response.status_code == 200
    results = _results(response)
    assert results[submitted.code].startswith("done")
    assert results[asking.code].startswith("done")
    assert results[reviewing.code].startswith("refused: A request that is in review cannot become")
    assert results[draft.code] == "refused: No such request."  # drafts are not the officer's
    db.expire_all()
    statuses = {r.code: r.status for r in db.scalars(select(Rfa))}
    assert statuses[submitted.code] == statuses[asking.code] == "in_review"
    assert statuses[draft.code] == "draft"
    steps = db.scalar(select(func.count()).select_from(RfaStatusChange))
    assert steps == 2
    # Every row refused: 409, and the page says so.
    again = _post(
        client, "/requests", "/triage/bulk/status", {"rfa": [reviewing.code], "to_status": "closed"}
    )
    assert again.status_code == 409
    assert "0 of 1 request moved to closed" in again.get_data(as_text=True)
    bad = _post(client, "/requests", "/triage/bulk/status", {"rfa": codes, "to_status": "approved"})
    assert bad.status_code == 400
    assert "Choose a status to move the requests to." in bad.get_data(as_text=True)


def test_the_queue_shows_deadlines_and_offers_bulk_actions(
    app: Flask, db: Session, office: Office
) -> None:
    today = utcnow().date()
    _rfa(db, office.north, "RFA-2026-0051", deadline=today - timedelta(days=1))
    db.commit()
    page = _signed_in(app, office.officer).get("/triage").get_data(as_text=True)
    assert ">Deadline</th>" in page
    assert (today - timedelta(days=1)).isoformat() in page and "overdue" in page
    assert 'form="bulk-form"' in page and "/triage/bulk/assign" in page


# --- the dashboard -------------------------------------------------------------------------------


def _count(page: str, text: str) -> int:
    found = re.search(r'<span class="worklist__number">(\d+)</span> ' + re.escape(text), page)
    assert found is not None, text
    return int(found.group(1))


def test_dashboard_counts_and_lists_each_worklist(app: Flask, db: Session, office: Office) -> None:
    today = utcnow().date()
    officer = make.stored(db, User, office.officer.user_id)
    colleague = make.stored(db, User, office.colleague.user_id)
    provider = make.provider(db, "PRV-W", name="Witness Aid Fictional")
    item = make.item(db, provider, "ITM-W-1")
    mine = _rfa(db, office.north, "RFA-2026-0061", assigned_to_id=officer.id,
                deadline=today + timedelta(days=30))  # fmt: skip
    _rfa(db, office.north, "RFA-2026-0062", deadline=today - timedelta(days=1))
    _rfa(db, office.south, "RFA-2026-0063", deadline=today + timedelta(days=6))
    _rfa(db, office.south, "RFA-2026-0064", status="closed", deadline=today)
    checked = _rfa(db, office.north, "RFA-2026-0065", status="approved", items=[item])
    db.flush()
    decision = run_check(
        db, checked, portal_state(app).policy, requested_by=officer,
        actor=audit.actor_label(officer), now=utcnow() - timedelta(hours=2),
    )  # fmt: skip
    make.consent(db, provider, office.north, item=item)  # after the decision: stale
    db.add(ConsentRequest(
        rfa_id=mine.id, provider_id=provider.id, authority_id=office.north.id,
        purpose="criminal_proceedings", note="For request.", status="open",
        created_by_id=officer.id, created_at=utcnow(),
    ))  # fmt: skip
    for code, by in (("PKG-2026-0001", colleague), ("PKG-2026-0002", officer)):
        db.add(Package(
            code=code, rfa_id=checked.id, decision_id=decision.id,
            authority_id=office.north.id, status="assembled", assembled_by_id=by.id,
        ))  # fmt: skip
    make.redaction_mark(db, item, review="pending", proposed_by_id=colleague.id)
    make.redaction_mark(db, make.item(db, provider, "ITM-W-2"), review="pending",
                        proposed_by_id=officer.id)  # fmt: skip
    db.commit()

    page = _signed_in(app, office.officer).get("/").get_data(as_text=True)
    assert _count(page, "assigned to you") == 1
    assert _count(page, "awaiting your release") == 1  # not the one this officer assembled
    assert _count(page, "overdue") == 1
    assert _count(page, "overdue or due within 7 days") == 2
    assert _count(page, "decisions to check again") == 1
    assert _count(page, "consent answers pending") == 1
    assert _count(page, "items with redaction marks to confirm") == 1  # not its own proposal
    assert "PKG-2026-0001" in page and "PKG-2026-0002" not in page
    assert "ITM-W-1" in page and "ITM-W-2" not in page
    assert "Witness Aid Fictional" in page
    assert 'href="/requests?assignee=me"' in page

    # The counts link to lists that hold the same rows.
    client = _signed_in(app, office.officer)
    assert _codes(client, assignee="me") == ["RFA-2026-0061"]
    assert sorted(_codes(client, due="7")) == ["RFA-2026-0062", "RFA-2026-0063"]
    release = client.get("/worklists/release").get_data(as_text=True)
    assert "PKG-2026-0001" in release and "PKG-2026-0002" not in release
    assert "RFA-2026-0065" in client.get("/worklists/stale").get_data(as_text=True)
    assert "RFA-2026-0061" in client.get("/worklists/consent").get_data(as_text=True)
    assert "ITM-W-1" in client.get("/worklists/marks").get_data(as_text=True)
    assert client.get("/worklists/nothing").status_code == 404

    # A new check settles the stale decision.
    run_check(db, checked, portal_state(app).policy, requested_by=officer,
              actor=audit.actor_label(officer))  # fmt: skip
    db.commit()
    again = _signed_in(app, office.officer).get("/").get_data(as_text=True)
    assert _count(again, "decisions to check again") == 0


def test_other_roles_dashboards_have_no_worklists(app: Flask, db: Session, office: Office) -> None:
    page = _signed_in(app, office.requester).get("/").get_data(as_text=True)
    assert "worklist" not in page
    assert _signed_in(app, office.requester).get("/worklists/release").status_code == 403
