"""Human labels for every enumerated value, from one module (issue 22): every stored value
has its words, nothing shows as a raw value, and the officer pages use them."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import ROLES, User
from portal.consent.models import CONSENT_REQUEST_STATUSES
from portal.eligibility.decisions import run_check
from portal.eligibility.policy.diff import Change
from portal.eligibility.policy.engine import ITEM_OUTCOMES, REQUEST_OUTCOMES
from portal.packages.models import PACKAGE_STATUSES, RENDITIONS, Package
from portal.pages import labels
from portal.registry.models import (
    ASSESSMENT_CRITERIA,
    ASSESSMENT_FINDINGS,
    AUTHORITY_KINDS,
    ITEM_KINDS,
    MARK_APPLIES,
    MARK_REVIEW,
    PERSON_ROLES,
    PROVIDER_KINDS,
)
from portal.rfa.models import PROCEEDINGS_TYPES, RFA_STATUSES, URGENCIES
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

#: Every enumeration the database stores -> the table that names its values.
ENUMS = {
    "rfa_status": RFA_STATUSES,
    "urgency": URGENCIES,
    "proceedings": PROCEEDINGS_TYPES,
    "role": ROLES,
    "provider_kind": PROVIDER_KINDS,
    "authority_kind": AUTHORITY_KINDS,
    "criterion": ASSESSMENT_CRITERIA,
    "finding": ASSESSMENT_FINDINGS,
    "item_kind": ITEM_KINDS,
    "item_outcome": ITEM_OUTCOMES,
    "request_outcome": REQUEST_OUTCOMES,
    "package_status": PACKAGE_STATUSES,
    "rendition": RENDITIONS,
    "consent_request_status": CONSENT_REQUEST_STATUSES,
    "mark_review": MARK_REVIEW,
    "mark_applies": MARK_APPLIES,
    "person_role": PERSON_ROLES,
}


@pytest.mark.parametrize("kind", sorted(ENUMS))
def test_every_stored_value_has_words(kind: str) -> None:
    table = labels.TABLES[kind]
    assert set(table) == set(ENUMS[kind]), f"{kind}: labels and stored values differ"
    for value in ENUMS[kind]:
        words = labels.label(kind, value)
        assert "_" not in words and words[:1].isupper(), (kind, value, words)


def test_the_words_people_asked_for() -> None:
    assert labels.label("provider_kind", "ngo") == "NGO"
    assert labels.label("provider_kind", "un_entity") == "UN entity"
    assert labels.label("rfa_status", "approved") == "Approved"
    assert labels.label("rfa_status", "some_new_state") == "Some new state"  # never raw
    assert labels.label("rfa_status", None) == ""
    with pytest.raises(KeyError):
        labels.label("no_such_table", "x")
    change = Change("outcome", None, None, "partially_eligible", "eligible", "")
    assert change.sentence() == "Request: from Partially eligible to Eligible."
    assert "->" not in change.sentence() and "_" not in change.sentence()


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _shown(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def test_officer_pages_show_words_not_raw_values(app: Flask, db: Session) -> None:
    officer = make_user(db, "legal_officer")
    admin = make_user(db, "admin")
    make.provider(db, "PRV-NGO", name="Aid Fictional", kind="ngo")
    make.provider(db, "PRV-UN", name="Agency Fictional", kind="un_entity")
    authority = make.authority(db, "AUTH-L", name="Lakeland Unit", kind="war_crimes_unit")
    make.rfa(db, authority, "RFA-2026-0901", status="partially_approved", urgency="very_urgent",
             urgency_justification="Trial soon.")  # fmt: skip
    db.commit()
    providers = _shown(_signed_in(app, admin), "/admin/providers")
    assert "NGO" in providers and "UN entity" in providers
    assert "Ngo" not in providers and "Un entity" not in providers
    authorities = _shown(_signed_in(app, admin), "/admin/authorities")
    assert "War crimes unit" in authorities
    client = _signed_in(app, officer)
    for url in ("/requests", "/triage/RFA-2026-0901", "/packages/requests/RFA-2026-0901"):
        text = _shown(client, url)
        for raw in ("partially_approved", "very_urgent", "war_crimes_unit"):
            assert raw not in text, (url, raw)
    packages = _shown(client, "/packages/requests/RFA-2026-0901")
    assert "Partially approved" in packages


def test_packages_made_name_their_authority_and_outcome_comes_first(
    app: Flask, db: Session
) -> None:
    creds = make_user(db, "legal_officer")
    officer = make.stored(db, User, creds.user_id)
    authority = make.authority(db, "AUTH-PM", name="Parkland Unit")
    provider = make.provider(db, "PRV-PM")
    rfa = make.rfa(db, authority, "RFA-2026-0902", status="approved",
                   items=[make.item(db, provider, "ITM-PM-1")])  # fmt: skip
    decision = run_check(db, rfa, portal_state(app).policy, requested_by=officer,
                         actor=audit.actor_label(officer))  # fmt: skip
    failed = Package(
        code="PKG-2026-0901", rfa_id=rfa.id, decision_id=decision.id,
        authority_id=authority.id, status="failed", assembled_by_id=officer.id,
    )  # fmt: skip
    db.add(failed)
    db.commit()
    client = _signed_in(app, creds)
    made = client.get("/packages/requests/RFA-2026-0902").get_data(as_text=True)
    row = made[made.index("PKG-2026-0901") :].split("</tr>")[0]
    assert "<td>AUTH-PM</td>" in row  # the Authority cell is filled
    page = client.get(f"/eligibility/decisions/{decision.id}").get_data(as_text=True)
    head = page[page.index('class="data-table decision-matrix"') :].split("</tr>")[0]
    columns = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', head)
    assert columns[:2] == ["Item", "Outcome"]  # key columns first: never behind the scroll
