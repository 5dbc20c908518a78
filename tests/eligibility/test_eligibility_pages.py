"""The legal officers' eligibility pages over real HTTP, on both databases: run a check,
read the items x rules matrix (statuses in words), filter it, see what changed since the
previous decision, export the PDF, and the assessments page; who may do what."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pdfminer.high_level import extract_text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.canonical import sha256_hex
from portal.consent.models import Consent
from portal.db import utcnow
from portal.eligibility.decision_view import cell_for
from portal.eligibility.models import Decision
from portal.eligibility.policy.engine import RuleResult
from portal.registry.models import (
    Assessment,
    Authority,
    Item,
    ItemPerson,
    Person,
    Provider,
    RedactionMark,
)
from portal.rfa.models import Rfa, RfaItem
from portal.state import portal_state
from tests.support.auth import Credentials, csrf_token, login, make_user

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


class Rows:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.numbers = itertools.count(1)
        self.now = utcnow()

    def add(self, row: object) -> object:
        self.session.add(row)
        self.session.flush()
        return row

    def authority(self, code: str, *, days_old: int = 40, valid_days: int = 300) -> Authority:
        authority = Authority(
            code=code, name=f"Authority {code}", kind="war_crimes_unit", country="XN"
        )
        self.add(authority)
        for criterion in ("fair_trial", "death_penalty", "witness_protection"):
            self.add(
                Assessment(
                    code=f"{code}-{criterion}",
                    authority_id=authority.id,
                    criterion=criterion,
                    finding="satisfied",
                    basis=f"Fictional basis for {criterion}.",
                    assessed_at=self.now - timedelta(days=days_old),
                    valid_until=self.now + timedelta(days=valid_days),
                    assessed_by="Officer Ilse Marwick",
                )
            )
        return authority

    def item(self, provider: Provider) -> Item:
        n = next(self.numbers)
        item = Item(
            code=f"ITM-{n:05d}",
            provider_id=provider.id,
            kind="witness_statement",
            title=f"Statement {n}",
            media_type="text/plain",
            original_filename=f"s{n}.txt",
            size_bytes=10,
            sha256=sha256_hex(str(n)),
            sensitivity="high",
            tags=[],
        )
        self.add(item)
        return item

    def consent(
        self,
        provider: Provider,
        authority: Authority,
        kind: str,
        item: Item | None,
        *,
        at: datetime,
    ) -> None:
        n = next(self.numbers)
        self.add(
            Consent(
                code=f"CNS-{n:05d}",
                provider_id=provider.id,
                item_id=item.id if item else None,
                authority_id=authority.id,
                event=kind,
                reason=None if kind == "grant" else f"Reason number {n}.",
                recorded_at=at,
            )
        )

    def rfa(self, authority: Authority, items: list[Item], *, status: str = "in_review") -> Rfa:
        n = next(self.numbers)
        rfa = Rfa(
            code=f"RFA-2026-{n:04d}",
            authority_id=authority.id,
            status=status,
            their_reference=f"REF-{n}",
            proceedings_type="investigation",
            offences=["War crime of torture"],
            period_from=date(2023, 6, 1),
            period_to=date(2023, 12, 31),
            submitted_at=None if status == "draft" else self.now - timedelta(days=10 - n % 10),
        )
        self.add(rfa)
        for item in items:
            self.add(RfaItem(rfa_id=rfa.id, item_id=item.id))
        return rfa


@pytest.fixture
def case(app: Flask) -> Case:
    with portal_state(app).sessions() as session:
        rows = Rows(session)
        authority = rows.authority("NWU-T")
        provider = Provider(code="PRV-T", name="Provider Teal", kind="ngo", public_name="Teal NGO")
        rows.add(provider)
        items = [rows.item(provider) for _ in range(3)]
        earlier = rows.now - timedelta(days=30)
        rows.consent(provider, authority, "grant", items[0], at=earlier)
        rows.consent(provider, authority, "grant", items[1], at=earlier)
        person = Person(code="PER-1", pseudonym="Witness W-1", role="witness", at_risk=True)
        rows.add(person)
        rows.add(ItemPerson(item_id=items[1].id, person_id=person.id))
        rows.add(
            RedactionMark(
                code="M1",
                item_id=items[1].id,
                person_id=person.id,
                kind="term",
                term="A name",
                reason="Identifies a witness at risk",
                applies="always",
                review="confirmed",
            )
        )
        rows.consent(provider, authority, "decline", items[2], at=earlier)
        rfa = rows.rfa(authority, items)
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
        session.add(
            Consent(
                code="CNS-REVOKE",
                provider_id=case.provider_id,
                item_id=case.shared_item_id,
                authority_id=case.authority_id,
                event="revoke",
                reason="The witness withdrew their agreement.",
                recorded_at=utcnow(),
            )
        )
        session.commit()
    second = _run_check(officer, case.rfa_id)
    assert second != first

    text = _text(officer.get(f"/eligibility/decisions/{second}").get_data(as_text=True))
    assert "What changed since the previous decision" in text
    assert f"{case.items[0]}: share -> withhold." in text
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


def test_admin_can_read_but_not_run_a_check(app: Flask, case: Case) -> None:
    officer = _signed_in(app, case.officer)
    decision_id = _run_check(officer, case.rfa_id)
    admin = _signed_in(app, case.admin)

    page = admin.get(f"/eligibility/requests/{case.rfa_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Only legal officers run eligibility checks" in html
    assert "Run eligibility check" not in html
    assert admin.get(f"/eligibility/decisions/{decision_id}").status_code == 200
    assert admin.get(f"/eligibility/decisions/{decision_id}.pdf").status_code == 200

    post = admin.post(
        f"/eligibility/requests/{case.rfa_id}/check", data={"csrf_token": csrf_token(page)}
    )
    assert post.status_code == 403
    assert _decisions(app) == 1


# --- lists -------------------------------------------------------------------------------------


def test_requests_list_is_newest_first_paged_and_hides_drafts(app: Flask, case: Case) -> None:
    with portal_state(app).sessions() as session:
        rows = Rows(session)
        authority = session.get(Authority, case.authority_id)
        assert authority is not None
        rows.numbers = itertools.count(100)
        made = [rows.rfa(authority, []) for _ in range(55)]
        for index, rfa in enumerate(made):  # distinct times: the last made is the newest
            rfa.submitted_at = rows.now - timedelta(days=365) + timedelta(hours=index)
        draft = rows.rfa(authority, [], status="draft")
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
        rows = Rows(session)
        old = rows.authority("NWU-OLD", days_old=800, valid_days=400)  # older than 730 days
        expired = Authority(code="NWU-EXP", name="Authority NWU-EXP", kind="court", country="XE")
        rows.add(expired)
        rows.add(
            Assessment(
                code="EXP-FT",
                authority_id=expired.id,
                criterion="fair_trial",
                finding="satisfied",
                basis="Review of the judiciary (fictional).",
                assessed_at=now - timedelta(days=400),
                valid_until=now - timedelta(days=3),
                assessed_by="Officer Tomas Brel",
            )
        )
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
