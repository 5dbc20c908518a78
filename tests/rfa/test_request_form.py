"""The request form answers every error of a submission at once (issue 22): a summary at the
top linking each message to its field, the entries kept, a draft refusing a past deadline,
and the labels in the requester's language."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.db import utcnow
from portal.rfa.models import Rfa
from tests.rfa.test_requests_pages import complete, post_form, signed_in
from tests.support.auth import Credentials, make_user
from tests.web.test_languages import compiled_catalogs

__all__ = ["compiled_catalogs"]  # the .mo files as `make translations` builds them (autouse)

pytest_plugins = ["tests.support.auth"]

SUMMARY = re.compile(r'<div class="error-summary".*?</div>', re.S)


def _summary_links(page: str) -> list[tuple[str, str]]:
    found = SUMMARY.search(page)
    assert found, "no error summary"
    return re.findall(r'<a href="#([\w-]+)">([^<]+)</a>', found.group(0))


def test_a_submission_with_only_a_reference_lists_every_missing_field_at_once(
    app: Flask, db: Session
) -> None:
    client = signed_in(app, make_user(db, "requester", authority_code="AUTH-F"))
    response = post_form(
        client,
        "/requests/new",
        "/requests/new",
        {"their_reference": "WCU-ONLY", "urgency": "urgent", "period_from": "1 June",
         "action": "submit"},
    )  # fmt: skip
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    links = dict(_summary_links(page))
    assert set(links) == {
        "legal_basis", "proceedings_type", "offences", "summary_of_facts",
        "assistance_sought", "period_from", "period_to", "urgency_justification",
    }  # fmt: skip
    assert links["period_from"] == "Enter a date as YYYY-MM-DD."  # one message per field
    assert links["urgency_justification"] == "Explain why the request is urgent."
    for target in links:  # every link lands on its field, which says what is wrong
        assert f'id="{target}"' in page and f'id="{target}-error"' in page
    assert 'value="WCU-ONLY"' in page  # the entries are kept
    assert 'aria-invalid="true"' in page
    assert db.scalar(select(func.count(Rfa.id))) == 0


def test_a_draft_refuses_a_deadline_in_the_past_with_its_other_errors(
    app: Flask, db: Session
) -> None:
    client = signed_in(app, make_user(db, "requester", authority_code="AUTH-G"))
    yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
    response = post_form(
        client,
        "/requests/new",
        "/requests/new",
        {"their_reference": "", "deadline": yesterday, "action": "save"},
    )
    assert response.status_code == 400
    links = dict(_summary_links(response.get_data(as_text=True)))
    assert links["deadline"] == "The deadline must not be in the past."
    assert links["their_reference"] == "Enter your reference for this request."
    assert links["proceedings_type"] == "Choose the type of proceedings."
    assert db.scalar(select(func.count(Rfa.id))) == 0
    today = utcnow().date().isoformat()
    saved = post_form(
        client,
        "/requests/new",
        "/requests/new",
        complete(app, deadline=today, action="save"),
    )
    assert saved.status_code == 303


def test_the_form_is_styled_and_speaks_the_requesters_language(app: Flask, db: Session) -> None:
    creds: Credentials = make_user(db, "requester", authority_code="AUTH-AR")
    user = db.scalars(select(User).where(User.email == creds.email)).one()
    user.locale = "ar"
    db.commit()
    client = signed_in(app, creds)
    page = client.get("/requests/new").get_data(as_text=True)
    assert "ملخص الوقائع" in page and ">Summary of the facts<" not in page
    summary = re.search(r"<textarea[^>]*id=\"summary_of_facts\"[^>]*>", page)
    assert summary and "form-control--long" in summary.group(0) and 'rows="12"' in summary.group(0)
    assert re.search(r'<select class="form-control" id="proceedings_type"', page)
    assert re.search(r'<legend class="form-label">[^<]+</legend>', page)  # offences grouped
    assert f'min="{utcnow().date().isoformat()}"' in page  # the deadline picker too
    response = post_form(client, "/requests/new", "/requests/new", {"action": "submit"})
    links = _summary_links(response.get_data(as_text=True))
    assert links and not any(re.search(r"[A-Za-z]{3,}", message) for _id, message in links)
