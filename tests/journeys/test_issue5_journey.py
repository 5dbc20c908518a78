"""Issue 5 done-when, through the Flask test client on both databases: a requester submits a
request with an attachment and a death-penalty assurance; a legal officer triages,
searches, adds a candidate, runs the eligibility check and asks the provider for consent;
the provider grants; the re-check shares the item; the provider revokes; the next check
withholds it. Every step is in the audit log and the chain verifies."""

from __future__ import annotations

import io
import json
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import audit
from portal.audit import AuditEvent
from portal.consent.models import Consent, ConsentRequest
from portal.db import utcnow
from portal.eligibility.decisions import load_result
from portal.eligibility.models import Decision
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Assurance, Attachment, Rfa
from tests.rfa.test_requests_pages import complete, new_draft, post_form, signed_in
from tests.rfa.test_uploads import pdf_bytes
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, make_user
from tests.support.revoking import revoke_on_page

pytest_plugins = ["tests.support.auth"]

AUTHORITY = "AUTH-J"
PROVIDER = "PRV-J"
TITLE = "Statement of witness J-7 on the Dremna school (fictional)"


def _setup(db: Session) -> tuple[Credentials, Credentials, Credentials]:
    requester = make_user(db, "requester", authority_code=AUTHORITY)
    officer = make_user(db, "legal_officer")
    provider = make_user(db, "provider", provider_code=PROVIDER)
    authority = db.scalars(select(Authority).where(Authority.code == AUTHORITY)).one()
    now = utcnow()
    # Fair trial and witness protection assessed; the State retains the death penalty, so
    # only the requester's written assurance lets anything be shared.
    findings = {
        "fair_trial": "satisfied",
        "witness_protection": "satisfied",
        "death_penalty": "not_satisfied",
    }
    make.assessments(db, authority, findings=findings, now=now, age_days=20)
    owner = db.scalars(select(Provider).where(Provider.code == PROVIDER)).one()
    make.item(
        db, owner, "ITM-J-0001", title=TITLE, original_filename="j7.txt", size_bytes=12,
        sensitivity="medium", tags=["detention", "school"], place="Dremna",
    )  # fmt: skip
    db.commit()
    return requester, officer, provider


def _post(client: FlaskClient, page: str, url: str, data: dict[str, object]) -> TestResponse:
    response = client.post(url, data={"csrf_token": csrf_token(client.get(page)), **data})
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return response


def _upload(client: FlaskClient, code: str, url: str, field: str, **data: object) -> None:
    page = f"/requests/{code}"
    upload = data.pop("file")
    response = client.post(
        f"{page}/{url}",
        data={"csrf_token": csrf_token(client.get(page)), **data, field: upload},
        content_type="multipart/form-data",
    )
    errors = re.findall(r'<li><a href="#[^"]*">([^<]*)</a></li>', response.get_data(as_text=True))
    assert response.status_code == 303, errors


def _check(client: FlaskClient, db: Session, rfa: Rfa, item: Item) -> str:
    """Run an eligibility check through its page; the item's outcome in the new decision."""
    page = f"/eligibility/requests/{rfa.id}"
    response = _post(client, page, f"{page}/check", {})
    decision_id = response.headers["Location"].rsplit("/", 1)[1]
    assert client.get(response.headers["Location"]).status_code == 200
    db.expire_all()
    decision = db.get(Decision, decision_id)
    assert decision is not None
    return load_result(decision).item(item.code).outcome


def test_request_to_consent_to_revocation(app: Flask, db: Session) -> None:
    requester_creds, officer_creds, provider_creds = _setup(db)

    # 1. The requester drafts, submits, attaches a file and records the assurance.
    requester = signed_in(app, requester_creds)
    code = new_draft(requester, complete(app))
    edit = f"/requests/{code}/edit"
    assert post_form(requester, edit, edit, complete(app, action="submit")).status_code == 303
    _upload(requester, code, "attachments", "file", file=(io.BytesIO(b"Annex 1\n"), "annex.txt"))
    _upload(
        requester, code, "assurances", "document",
        file=(io.BytesIO(pdf_bytes()), "assurance.pdf"),
        given_by="Ministry of Justice (fictional)", given_at=utcnow().date().isoformat(),
    )  # fmt: skip
    rfa = db.scalars(select(Rfa).where(Rfa.code == code)).one()
    assert rfa.status == "submitted"
    assert len(db.scalars(select(Attachment).where(Attachment.rfa_id == rfa.id)).all()) == 1
    assert len(db.scalars(select(Assurance).where(Assurance.rfa_id == rfa.id)).all()) == 1
    ack = requester.get(f"/requests/{code}/acknowledgement.pdf")
    assert ack.status_code == 200 and ack.data.startswith(b"%PDF-")

    # 2. A legal officer finds it in the queue, takes it, starts the review and searches.
    officer = signed_in(app, officer_creds)
    assert code in officer.get("/triage").get_data(as_text=True)
    detail = f"/triage/{code}"
    _post(officer, detail, f"{detail}/assign", {"assignee": "me"})
    _post(officer, detail, f"{detail}/status", {"action": "start_review"})
    found = officer.get(f"{detail}/search", query_string={"title": "witness J-7", "tags": "school"})
    assert found.status_code == 200 and "ITM-J-0001" in found.get_data(as_text=True)
    item = db.scalars(select(Item).where(Item.code == "ITM-J-0001")).one()
    _post(
        officer, f"{detail}/search?title=witness", f"{detail}/candidates",
        {"item_id": [str(item.id)], "query": "title=witness"},
    )  # fmt: skip

    # 3. The first check withholds the item: the provider has not consented.
    assert _check(officer, db, rfa, item) == "withhold"

    # 4. The officer asks the provider for consent; the provider sees the request by code only.
    _post(officer, detail, f"{detail}/consent-requests", {})
    consent_request = db.scalars(
        select(ConsentRequest).where(ConsentRequest.rfa_id == rfa.id)
    ).one()
    provider = signed_in(app, provider_creds)
    inbox = provider.get("/consent").get_data(as_text=True)
    assert code in inbox and TITLE in inbox
    assert rfa.their_reference not in inbox and rfa.summary_of_facts not in inbox

    # 5. The provider grants; the re-check shares the item.
    _post(
        provider, "/consent", f"/consent/requests/{consent_request.id}",
        {"action": "grant", "item": [str(item.id)]},
    )  # fmt: skip
    assert _check(officer, db, rfa, item) == "share"
    # ... because of the assurance: the State retains the death penalty.
    latest = db.scalars(
        select(Decision).where(Decision.rfa_id == rfa.id).order_by(Decision.created_at.desc())
    ).first()
    assert latest is not None and '"assured"' in latest.results_json
    assert "Ministry of Justice (fictional)" in latest.snapshot_json

    # 6. The provider revokes; the next check withholds the item again.
    grant_event = db.scalars(
        select(Consent).where(Consent.item_id == item.id, Consent.event == "grant")
    ).one()
    revoked = revoke_on_page(provider, grant_event.id, "The witness asked us to stop sharing.")
    assert revoked.status_code == 303
    assert _check(officer, db, rfa, item) == "withhold"

    # 7. Every step is in the audit log, in order, and the chain verifies.
    db.expire_all()
    steps = [
        (event.action, event.target)
        for event in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if event.action not in ("user.create", "auth.login")
    ]
    rfa_target, request_target = f"rfa:{code}", f"consent_request:{consent_request.id}"
    assert [action for action, _ in steps] == [
        "rfa.create", "rfa.transition", "rfa.attachment.add", "rfa.assurance.add",
        "rfa.assign", "rfa.transition", "rfa.candidates.add", "decision.recorded",
        "consent_request.create", "consent.grant", "decision.recorded",
        "consent.revoke", "consent.revocation_applied", "decision.recorded",
    ]  # fmt: skip
    assert all(t == rfa_target for a, t in steps if a.startswith("rfa."))
    assert (("consent_request.create", request_target)) in steps
    transitions = db.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "rfa.transition")
        .order_by(AuditEvent.seq)
    ).all()  # fmt: skip
    moves = [(d["from"], d["to"]) for d in (json.loads(text) for text in transitions)]
    assert moves == [("draft", "submitted"), ("submitted", "in_review")]
    assert audit.verify(db).ok
