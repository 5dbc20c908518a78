"""The published figures (portal.reports.figures) on both databases, and the Figures page with its
PDF and CSV exports over HTTP."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from pdfminer.high_level import extract_text
from sqlalchemy.orm import Session

from portal import audit
from portal.consent.models import ConsentRequest, ConsentRequestItem
from portal.eligibility.decisions import run_check
from portal.eligibility.policy import load_policy
from portal.packages.models import Package
from portal.registry.models import Authority
from portal.reports.figures import (
    CSV_COLUMNS,
    PackageRow,
    PeriodInvalid,
    period_figures,
    safe_cell,
    to_csv,
)
from portal.rfa.models import Rfa, RfaStatusChange
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import login, make_user
from tests.support.ledger_world import assessed_authority

pytest_plugins = ["tests.support.auth"]

POLICIES = Path(__file__).resolve().parents[2] / "policies"
START, END = date(2026, 1, 1), date(2026, 6, 30)
EVIL = '=HYPERLINK("http://evil.example","x")'


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Builder:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.a = assessed_authority(session, "AUTH-XN")
        self.b = assessed_authority(session, "AUTH-YS", country="YS", name=EVIL)

    def rfa(self, authority: Authority, submitted: str | None, *moves: tuple[str, str]) -> Rfa:
        rfa = make.rfa(
            self.session,
            authority,
            status=moves[-1][0] if moves else ("submitted" if submitted else "draft"),
            submitted_at=at(submitted) if submitted else None,
        )
        for to_status, when in moves:
            self.session.add(
                RfaStatusChange(rfa_id=rfa.id, to_status=to_status, changed_at=at(when))
            )
        self.session.flush()
        return rfa


def build(session: Session) -> Builder:
    """The data the expected figures below are worked out from (period: first half of 2026)."""
    w = Builder(session)
    r1 = w.rfa(w.a, "2026-01-10", ("transmitted", "2026-01-20"), ("closed", "2026-03-01"))
    w.rfa(w.a, "2026-02-01", ("transmitted", "2026-02-05"))
    w.rfa(w.b, "2026-03-01", ("withdrawn", "2026-07-15"))  # withdrawn after the period
    w.rfa(w.b, "2025-12-20", ("transmitted", "2026-01-01T00:00:00"))  # submitted before
    w.rfa(w.a, "2026-07-01")  # after the period
    w.rfa(w.a, None)  # a draft
    w.rfa(w.b, "2025-06-01", ("closed", "2025-12-31T23:59:59"))  # over before the period

    officer, releaser = make.user(session), make.user(session)
    decision = run_check(
        session, r1, load_policy(POLICIES), requested_by=officer, actor=audit.actor_label(officer)
    )
    for n, (authority, status, released) in enumerate(
        [
            (w.a, "released", "2026-02-01"),
            (w.a, "recalled", "2026-03-01"),
            (w.a, "released", "2026-06-30T23:59:00"),
            (w.b, "withdrawn", "2026-04-01"),
            (w.b, "released", "2025-12-31"),  # before the period
            (w.a, "assembled", None),  # never released
        ]
    ):
        session.add(
            Package(
                code=f"PKG-2026-{n + 1:04d}",
                rfa_id=r1.id,
                decision_id=decision.id,
                authority_id=authority.id,
                status=status,
                assembled_by_id=officer.id,
                released_by_id=releaser.id if released else None,
                released_at=at(released) if released else None,
                expires_at=at(released) + timedelta(days=30) if released else None,
            )
        )
    session.flush()

    provider = make.provider(session)
    items = [make.item(session, provider) for _ in range(6)]

    def consent_request(status: str, created: str, asked: list[int]) -> ConsentRequest:
        request = ConsentRequest(
            rfa_id=r1.id, provider_id=provider.id, authority_id=w.a.id, status=status,
            created_at=at(created),
        )  # fmt: skip
        session.add(request)
        session.flush()
        session.add_all(
            [ConsentRequestItem(consent_request_id=request.id, item_id=items[i].id) for i in asked]
        )
        session.flush()
        return request

    def answer(request: ConsentRequest, index: int, event: str) -> None:
        make.consent(
            session, provider, w.a, event, item=items[index], at=at("2026-05-01"),
            consent_request_id=request.id,
        )  # fmt: skip

    open_request = consent_request("open", "2026-04-01", [0, 1, 2, 3])
    answer(open_request, 1, "grant")
    answer(open_request, 0, "grant")
    answer(open_request, 3, "decline")
    consent_request("withdrawn", "2026-05-01", [4])
    consent_request("open", "2025-11-01", [5])  # before the period
    # The ORM guard refuses changing a consent event; the latest answer wins instead.
    answer(open_request, 0, "decline")
    session.commit()
    return w


def test_period_figures(session: Session) -> None:
    build(session)
    figures = period_figures(session, START, END)
    assert figures.received == 3
    assert [(c.label, c.value) for c in figures.received_by_authority] == [
        ("Authority AUTH-XN", 2),
        (EVIL, 1),
    ]
    assert [(c.label, c.value) for c in figures.received_by_state] == [("XN", 2), ("YS", 1)]
    assert figures.closed == 1
    assert figures.ongoing == 3
    assert figures.transmitted == 3
    assert figures.median_days_to_transmission == 10.0  # 4, 10 and 12 days
    assert figures.packages == (PackageRow("XN", 2, 0, 1), PackageRow("YS", 0, 1, 0))
    assert figures.packages_shared == 4
    consent = figures.consent
    assert (consent.requests, consent.pending, consent.granted, consent.declined) == (2, 1, 1, 2)
    assert consent.unanswered == 1


def test_an_empty_period_and_a_wrong_one(session: Session) -> None:
    build(session)
    figures = period_figures(session, date(2030, 1, 1), date(2030, 12, 31))
    assert (figures.received, figures.closed, figures.transmitted) == (0, 0, 0)
    assert figures.median_days_to_transmission is None
    assert figures.ongoing == 3  # the two transmitted and the one of July 2026
    with pytest.raises(PeriodInvalid, match="must not be before"):
        period_figures(session, END, START)
    with pytest.raises(PeriodInvalid, match="ten years"):
        period_figures(session, date(2000, 1, 1), date(2026, 1, 1))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("plain", "plain"), ("", ""), ("12", "12")],
)  # fmt: skip
def test_csv_cells_never_start_a_formula(cell: str, expected: str) -> None:
    assert safe_cell(cell) == expected


def test_csv_has_stable_columns_and_one_row_per_figure(session: Session) -> None:
    build(session)
    rows = list(csv.reader(io.StringIO(to_csv(period_figures(session, START, END)))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    by_key = {(r[2], r[3], r[4]): r[5] for r in rows[1:]}
    assert len(by_key) == len(rows) - 1  # one row per figure
    assert by_key[("requests", "received", "")] == "3"
    assert by_key[("requests", "received_by_authority", "'" + EVIL)] == "1"
    assert by_key[("requests", "median_days_submission_to_transmission", "")] == "10.0"
    assert by_key[("packages", "shared_recalled", "XN")] == "1"
    assert by_key[("consent", "items_declined", "")] == "2"
    assert {r[0] for r in rows[1:]} == {"2026-01-01"} and {r[1] for r in rows[1:]} == {"2026-06-30"}


# --- pages --------------------------------------------------------------------------------------


def test_figures_page_pdf_and_csv(app: Flask) -> None:
    with portal_state(app).sessions() as session:
        build(session)
        officer = make_user(session, "legal_officer")
    client = app.test_client()
    login(client, officer)
    query = {"from": START.isoformat(), "to": END.isoformat()}

    page = client.get("/figures", query_string=query)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'role="img"' in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)  # no inline script
    assert "Requests received by State" in html and "Median days" in html
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in html

    default = client.get("/figures").get_data(as_text=True)
    assert f'value="{date.today().year}-01-01"' in default

    bad = client.get("/figures", query_string={"from": "2026-13-01", "to": "2026-01-01"})
    assert bad.status_code == 400
    assert "Enter the start of the period" in bad.get_data(as_text=True)
    reversed_period = client.get(
        "/figures", query_string={"from": "2026-06-01", "to": "2026-01-01"}
    )
    assert reversed_period.status_code == 400
    assert "must not be before" in reversed_period.get_data(as_text=True)

    pdf = client.get("/figures/report.pdf", query_string=query)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    assert "figures-2026-01-01-to-2026-06-30.pdf" in pdf.headers["Content-Disposition"]
    text = extract_text(io.BytesIO(pdf.data))
    assert "Requests for assistance" in text and "Packages shared by jurisdiction" in text
    assert "Received by State" in text

    exported = client.get("/figures/report.csv", query_string=query)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.get_data(as_text=True).startswith(",".join(CSV_COLUMNS))
    assert client.get("/figures/report.csv", query_string={"to": "x"}).status_code == 400
