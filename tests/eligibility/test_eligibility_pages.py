"""The legal officers' eligibility pages over real HTTP, on both databases: run a check,
read the items x rules matrix (statuses in words), filter it, see what changed since the
previous decision, export the PDF, and the assessments page; who may do what."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pdfminer.high_level import extract_text
from sqlalchemy import func, select

from portal.db import utcnow
from portal.eligibility.decision_view import cell_for
from portal.eligibility.models import Decision
from portal.eligibility.policy.engine import RuleResult
from portal.registry.models import Authority, Item, Provider
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.identifiers import LATIN_NAME, register

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

DECISION_URL = re.compile(r"/eligibility/decisions/([0-9a-f-]{36})$")


@dataclass
class Case:
    """A submitted request of authority NWU-T with three candidate items: one shared (its
    own consent), one shared redacted (names a witness at risk), one withheld (declined)."""

    rfa_id: int
    rfa_code: str
    items: list[str]  # item codes, in the order above
    authority_id: int
    provider_id: int
    shared_item_id: int
    officer: Credentials
    admin: Credentials
    requester: Credentials
    provider: Credentials


@pytest.fixture
def case(app: Flask) -> Case:
    with portal_state(app).sessions() as session:
        now = utcnow()
        authority = make.authority(session, "NWU-T")
        make.assessments(session, authority, now=now)
        provider = make.provider(session, "PRV-T", name="Provider Teal", public_name="Teal NGO")
        items = [make.item(session, provider) for _ in range(3)]
        earlier = now - timedelta(days=30)
        make.consent(session, provider, authority, item=items[0], at=earlier)
        make.consent(session, provider, authority, item=items[1], at=earlier)
        person = make.person(session, items[1], code="PER-1", pseudonym="Witness W-1")
        make.redaction_mark(session, items[1], person=person, code="M1")
        make.consent(session, provider, authority, "decline", item=items[2], at=earlier)
        rfa = make.rfa(
            session,
            authority,
            status="in_review",
            items=items,
            submitted_at=now - timedelta(days=4),
        )
        session.commit()
        found = Case(
            rfa_id=rfa.id,
            rfa_code=rfa.code,
            items=[item.code for item in items],
            authority_id=authority.id,
            provider_id=provider.id,
            shared_item_id=items[0].id,
            officer=make_user(session, "legal_officer"),
            admin=make_user(session, "admin"),
            requester=make_user(session, "requester", authority_code="NWU-T"),
            provider=make_user(session, "provider", provider_code="PRV-T"),
        )
    return found


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _run_check(client: FlaskClient, rfa_id: int) -> str:
    page = client.get(f"/eligibility/requests/{rfa_id}")
    assert page.status_code == 200
    response = client.post(
        f"/eligibility/requests/{rfa_id}/check", data={"csrf_token": csrf_token(page)}
    )
    assert response.status_code == 303
    found = DECISION_URL.search(response.headers["Location"])
    assert found is not None, response.headers["Location"]
    return found.group(1)


def _text(html: str) -> str:
    """The page's text with tags dropped and whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _decisions(app: Flask) -> int:
    with portal_state(app).sessions() as session:
        return int(session.scalar(select(func.count(Decision.id))) or 0)


# --- the officer's journey -------------------------------------------------------------------


def test_officer_runs_a_check_and_reads_the_matrix(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    listing = officer.get("/eligibility/requests").get_data(as_text=True)
    assert case.rfa_code in listing and "Not checked yet" in listing

    decision_id = _run_check(officer, case.rfa_id)
    page = officer.get(f"/eligibility/decisions/{decision_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    text = _text(html)
    assert "Eligibility check recorded for" in text  # the flash after the redirect
    assert f"Eligibility decision on {case.rfa_code}" in text
    assert "Outcome: Partially eligible" in text
    with portal_state(app).sessions() as session:
        stored = session.get(Decision, decision_id)
        assert stored is not None
        assert stored.snapshot_sha256 in html and stored.policy_revision in html
    assert "Authority NWU-T" in text and "mechanism-sharing-rules" in text
    assert "This is the first decision on" in text

    # Statuses as text, with a class for colour; the row outcome in words.
    assert '<span class="rule-status rule-status--pass">✓ pass</span>' in html
    assert '<span class="rule-status rule-status--fail">✗ fail</span>' in html
    assert '<span class="rule-status rule-status--redact">redact</span>' in html
    assert re.search(r'class="outcome outcome--withhold">Withhold<', html)
    assert re.search(r'class="outcome outcome--share_redacted">Share redacted<', html)
    # Accessible table: caption, column and row headers, counts.
    assert "<caption>" in html and '<th scope="col">Provider consent</th>' in html
    assert html.count('<th scope="row"><code>ITM-') == 3
    assert "share 1; share redacted 1; needs review 0; withhold 1." in text
    # Explanations: the item's own, and every rule's in a details element.
    assert "declined consent for Authority NWU-T" in text
    assert "<details>" in html and "Identifies a witness at risk" in text
    assert f'href="/eligibility/decisions/{decision_id}.pdf"' in html

    # The request page lists the decision in its history, with who ran it.
    history = _text(officer.get(f"/eligibility/requests/{case.rfa_id}").get_data(as_text=True))
    assert "Partially eligible" in history and "Test legal officer" in history
    listing = _text(officer.get("/eligibility/requests").get_data(as_text=True))
    assert "Partially eligible" in listing


def test_a_second_check_shows_what_changed(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    first = _run_check(officer, case.rfa_id)
    with portal_state(app).sessions() as session:
        make.consent(
            session,
            make.stored(session, Provider, case.provider_id),
            make.stored(session, Authority, case.authority_id),
            "revoke",
            item=make.stored(session, Item, case.shared_item_id),
            code="CNS-REVOKE",
            reason="The witness withdrew their agreement.",
        )
        session.commit()
    second = _run_check(officer, case.rfa_id)
    assert second != first

    text = _text(officer.get(f"/eligibility/decisions/{second}").get_data(as_text=True))
    assert "What changed since the previous decision" in text
    assert f"{case.items[0]}: from Share to Withhold." in text
    assert "was revoked on" in text and "The witness withdrew their agreement." in text
    assert "This is the first decision" not in text

    old = _text(officer.get(f"/eligibility/decisions/{first}").get_data(as_text=True))
    assert "This is not the latest decision" in old and "This is the first decision" in old
    history = officer.get(f"/eligibility/requests/{case.rfa_id}").get_data(as_text=True)
    assert history.index(second) < history.index(first)  # newest first


def test_filters_show_only_items_with_that_outcome(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    decision_id = _run_check(officer, case.rfa_id)
    url = f"/eligibility/decisions/{decision_id}"

    html = officer.get(url, query_string={"outcome": "withhold"}).get_data(as_text=True)
    assert case.items[2] in html
    assert case.items[0] not in html and case.items[1] not in html
    assert "Items with the outcome “Withhold” (1 of 3)" in _text(html)
    assert f'href="{url}?outcome=withhold" aria-current="true"' in html
    assert f'href="{url}?outcome=share_redacted"' in html  # the other filters are links

    html = officer.get(url, query_string={"outcome": "needs_review"}).get_data(as_text=True)
    assert not any(code in html for code in case.items)
    assert "No item has this outcome" in html

    bad = officer.get(url, query_string={"outcome": "<b>maybe</b>"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "There is no item outcome called “&lt;b&gt;maybe&lt;/b&gt;”" in html  # escaped
    assert all(code in html for code in case.items)  # every item is shown instead


def test_pdf_export_is_a_real_pdf_of_the_decision(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    decision_id = _run_check(officer, case.rfa_id)
    response = officer.get(f"/eligibility/decisions/{decision_id}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="decision-{case.rfa_code}-{decision_id}.pdf"'
    body = response.get_data()
    assert body.startswith(b"%PDF-")
    text = " ".join(extract_text(io.BytesIO(body)).split())
    assert f"Eligibility decision on {case.rfa_code}" in text
    assert "Outcome: Partially eligible" in text
    assert "declined consent for Authority NWU-T" in text
    assert decision_id in text and "This is the first decision" in text
    assert "✓ pass" in text and "✗ fail" in text


# --- who may do what ---------------------------------------------------------------------------


def test_external_users_get_403_and_unknown_decisions_404(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    decision_id = _run_check(officer, case.rfa_id)
    pages = [
        "/eligibility/requests",
        f"/eligibility/requests/{case.rfa_id}",
        f"/eligibility/decisions/{decision_id}",
        f"/eligibility/decisions/{decision_id}.pdf",
        "/eligibility/assessments",
    ]
    for creds in (case.requester, case.provider):
        client = _signed_in(app, creds)
        for url in pages:
            assert client.get(url).status_code == 403, url
        token = csrf_token(client.get("/account"))
        post = client.post(f"/eligibility/requests/{case.rfa_id}/check", data={"csrf_token": token})
        assert post.status_code == 403
    anonymous = app.test_client()
    for url in pages:
        response = anonymous.get(url)
        assert response.status_code in (302, 303) and "/login" in response.headers["Location"]

    missing = "00000000-0000-4000-8000-000000000000"
    assert officer.get(f"/eligibility/decisions/{missing}").status_code == 404
    assert officer.get(f"/eligibility/decisions/{missing}.pdf").status_code == 404
    assert officer.get("/eligibility/requests/999999").status_code == 404
    assert _decisions(app) == 1


def test_a_check_without_a_csrf_token_is_refused(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    response = officer.post(f"/eligibility/requests/{case.rfa_id}/check")
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    wrong = officer.post(
        f"/eligibility/requests/{case.rfa_id}/check", data={"csrf_token": "forged"}
    )
    assert wrong.status_code == 400
    assert _decisions(app) == 0


def test_admins_neither_read_nor_run_checks(app: Flask, case: Case) -> None:
    """Admins (IT) do not read case content (issue 18): the request's eligibility page and its
    decisions are refused them, and so is running a check."""
    officer = _signed_in(app, case.officer)
    decision_id = _run_check(officer, case.rfa_id)
    admin = _signed_in(app, case.admin)
    page = admin.get("/account")  # a form of the admin's own, for its CSRF token

    assert admin.get(f"/eligibility/requests/{case.rfa_id}").status_code == 403
    assert admin.get(f"/eligibility/decisions/{decision_id}").status_code == 403
    assert admin.get(f"/eligibility/decisions/{decision_id}.pdf").status_code == 403
    post = admin.post(
        f"/eligibility/requests/{case.rfa_id}/check", data={"csrf_token": csrf_token(page)}
    )
    assert post.status_code == 403
    assert _decisions(app) == 1


# --- lists -------------------------------------------------------------------------------------


def test_requests_list_is_newest_first_paged_and_hides_drafts(app: Flask, case: Case) -> None:
    with portal_state(app).sessions() as session:
        authority = make.stored(session, Authority, case.authority_id)
        year_ago = utcnow() - timedelta(days=365)
        made = [  # distinct times: the last made is the newest
            make.rfa(
                session,
                authority,
                status="in_review",
                submitted_at=year_ago + timedelta(hours=index),
            )
            for index in range(55)
        ]
        draft = make.rfa(session, authority, status="draft")
        session.commit()
        newest, oldest, draft_id, draft_code = made[-1].code, made[0].code, draft.id, draft.code

    officer = _signed_in(app, case.officer)
    first = officer.get("/eligibility/requests").get_data(as_text=True)
    assert "Page 1 of 2" in first and 'href="/eligibility/requests?page=2"' in first
    # The case's request (submitted days ago) comes before all of these (a year ago).
    assert first.index(case.rfa_code) < first.index(newest)
    assert oldest not in first and draft_code not in first
    second = officer.get("/eligibility/requests?page=2").get_data(as_text=True)
    assert oldest in second and newest not in second
    beyond = officer.get("/eligibility/requests?page=9").get_data(as_text=True)
    assert "There is no page 9" in beyond
    assert officer.get(f"/eligibility/requests/{draft_id}").status_code == 404


def test_assessments_page_flags_expired_stale_and_missing(app: Flask, case: Case) -> None:
    now = utcnow()
    with portal_state(app).sessions() as session:
        old = make.authority(session, "NWU-OLD")
        make.assessments(session, old, now=now, age_days=800, valid_days=400)  # older than 730 days
        expired = make.authority(session, "NWU-EXP", kind="court", country="XE")
        make.assessment(
            session, expired, "fair_trial", now=now, age_days=400, valid_days=-3, code="EXP-FT",
            basis="Review of the judiciary (fictional).", assessed_by="Officer Tomas Brel",
        )  # fmt: skip
        session.commit()
        assert old.id is not None
    expired_on = (now - timedelta(days=3)).strftime("%Y-%m-%d")

    officer = _signed_in(app, case.officer)
    text = _text(officer.get("/eligibility/assessments").get_data(as_text=True))
    current = text[text.index("Authority NWU-T (NWU-T)") :]
    assert current.count("Current") == 3
    stale = text[text.index("Authority NWU-OLD") : text.index("Authority NWU-T")]
    assert stale.count("Older than the policy's maximum age of 730 days") == 3
    assert "Officer Ilse Marwick" in stale
    lapsed = text[text.index("Authority NWU-EXP") : text.index("Authority NWU-OLD")]
    assert f"Expired on {expired_on}" in lapsed and "Officer Tomas Brel" in lapsed
    assert lapsed.count("No assessment on file") == 2
    assert "fair trial: 730 days" in text


# --- the matrix cells (pure) -------------------------------------------------------------------


def _result(status: str, effect: str, action: str | None) -> RuleResult:
    return RuleResult("r", status, "c", action, effect, "Why.", (), ())


def test_every_cell_states_its_status_in_words() -> None:
    cases = {
        ("pass", "share", None): ("✓ pass", "pass"),
        ("not_applicable", "share", None): ("\N{EN DASH} not applicable", "na"),
        ("redact", "share_redacted", "redact"): ("redact", "redact"),
        ("fail", "share_redacted", "redact"): ("redact", "redact"),
        ("fail", "needs_review", "manual_review"): ("review", "review"),
        ("fail", "withhold", "withhold"): ("✗ fail", "fail"),
        ("redact", "withhold", "withhold"): ("✗ fail", "fail"),  # cannot be redacted
        ("fail", "withhold", "block_request"): ("✗ fail: blocks", "fail"),
    }
    for (status, effect, action), (label, tone) in cases.items():
        cell = cell_for(_result(status, effect, action), "r")
        assert (cell.label, cell.tone, cell.explanation) == (label, tone, "Why.")
    assert cell_for(None, "r").label == "\N{EN DASH} not applied"


def test_the_decision_says_when_the_register_protects_a_person(app: Flask) -> None:
    """An item naming a person at risk with no mark but a registered identifier, for an
    authority without witness-protection capacity: shared redacted, and the page and the PDF
    say the register protects them (never the identifier itself)."""
    state = portal_state(app)
    with state.sessions() as session:
        now = utcnow()
        authority = make.authority(session, "NWU-R")
        findings = {"fair_trial": "satisfied", "death_penalty": "satisfied"}
        protection = {"witness_protection": "not_satisfied"}
        make.assessments(session, authority, findings={**findings, **protection}, now=now)
        provider = make.provider(session)
        subject = make.item(session, provider)
        make.consent(session, provider, authority, item=subject, at=now - timedelta(days=30))
        person = make.person(session, subject, pseudonym="Witness W-7")
        register(session, state.sealer, person, LATIN_NAME)
        rfa = make.rfa(session, authority, status="in_review", items=[subject])
        session.commit()
        rfa_id, officer = rfa.id, make_user(session, "legal_officer")
    client = _signed_in(app, officer)
    decision_id = _run_check(client, rfa_id)

    said = (
        "Protected by the register of protected identifiers, not by a mark: Witness W-7 "
        "(1 current identifier). Registered identifiers are redacted from every text and PDF "
        "shared with Authority NWU-R, and every package is checked for them."
    )
    page = _text(client.get(f"/eligibility/decisions/{decision_id}").get_data(as_text=True))
    assert "share redacted 1" in page and said in page
    pdf = client.get(f"/eligibility/decisions/{decision_id}.pdf").get_data()
    printed = " ".join(extract_text(io.BytesIO(pdf)).split())
    assert said in printed
    assert LATIN_NAME not in page and LATIN_NAME not in printed
