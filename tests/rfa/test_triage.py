"""The legal officer's triage over real HTTP, on both databases: the queue (order, filters),
assignment, status moves (an illegal one refused, nothing changed), repository search
(filters, pagination), candidates, consent requests per provider, and who may open it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.consent.models import ConsentRequest, ConsentRequestItem
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.notifications.models import Notification
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Message, Rfa, RfaItem, RfaStatusChange
from portal.rfa.search import ItemQuery, search
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

CODES = re.compile(r'href="/triage/(RFA-[0-9-]+)"')


@dataclass
class Desk:
    officer: Credentials
    other_officer: Credentials
    requester: Credentials
    provider: Credentials
    recipient: Credentials
    authority_a: int
    authority_b: int
    provider_a: int
    provider_b: int


def _rfa(
    session: Session,
    code: str,
    authority_id: int,
    *,
    status: str = "submitted",
    urgency: str = "normal",
    age_days: int = 0,
) -> Rfa:
    return make.rfa(
        session,
        make.stored(session, Authority, authority_id),
        code,
        status=status,
        their_reference=f"CONFIDENTIAL-REF-{code}",
        urgency=urgency,
        urgency_justification="" if urgency == "normal" else "Trial date set.",
        persons_concerned="Suspect Zed Fictional",
        submitted_at=None if status == "draft" else utcnow() - timedelta(days=age_days),
    )


def _item(
    session: Session,
    code: str,
    provider_id: int,
    *,
    title: str = "Statement",
    kind: str = "witness_statement",
    tags: list[str] | None = None,
    collected: date | None = None,
    place: str = "",
) -> Item:
    owner = make.stored(session, Provider, provider_id)
    return make.item(
        session, owner, code, title=title, kind=kind, tags=tags or [], collected_at=collected,
        place=place, sensitivity="low",
    )  # fmt: skip


@pytest.fixture
def desk(db: Session) -> Desk:
    officer = make_user(db, "legal_officer")
    other = make_user(db, "legal_officer")
    requester = make_user(db, "requester", authority_code="AUTH-A")
    recipient = make_user(db, "recipient", authority_code="AUTH-A")
    make_user(db, "requester", authority_code="AUTH-B")
    provider = make_user(db, "provider", provider_code="PRV-A")
    make_user(db, "provider", provider_code="PRV-B")
    ids = {a.code: a.id for a in db.scalars(select(Authority))}
    prov = {p.code: p.id for p in db.scalars(select(Provider))}
    return Desk(
        officer, other, requester, provider, recipient,
        ids["AUTH-A"], ids["AUTH-B"], prov["PRV-A"], prov["PRV-B"],
    )  # fmt: skip


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _post(client: FlaskClient, page: str, url: str, data: dict[str, object]) -> TestResponse:
    token = csrf_token(client.get(page))
    return client.post(url, data={"csrf_token": token, **data})


def _queue(client: FlaskClient, **args: str) -> list[str]:
    response = client.get("/triage", query_string=args)
    assert response.status_code == 200
    return CODES.findall(response.get_data(as_text=True))


# --- queue and assignment ------------------------------------------------------------------------


def test_queue_sorts_by_urgency_then_age_and_filters(app: Flask, db: Session, desk: Desk) -> None:
    a, b = desk.authority_a, desk.authority_b
    _rfa(db, "RFA-2026-0001", a, age_days=10)
    _rfa(db, "RFA-2026-0002", a, urgency="urgent", age_days=1)
    _rfa(db, "RFA-2026-0003", b, urgency="very_urgent", age_days=0)
    _rfa(db, "RFA-2026-0004", b, age_days=20, status="in_review")
    _rfa(db, "RFA-2026-0005", a, urgency="urgent", age_days=5, status="clarification_requested")
    _rfa(db, "RFA-2026-0006", a, status="draft")
    _rfa(db, "RFA-2026-0007", a, status="approved", urgency="very_urgent")
    officer = db.get(User, desk.officer.user_id)
    assert officer is not None
    db.scalars(select(Rfa).where(Rfa.code == "RFA-2026-0001")).one().assigned_to_id = officer.id
    db.commit()
    client = _signed_in(app, desk.officer)

    assert _queue(client) == [
        "RFA-2026-0003",  # very urgent
        "RFA-2026-0005",  # urgent, 5 days
        "RFA-2026-0002",  # urgent, 1 day
        "RFA-2026-0004",  # normal, 20 days
        "RFA-2026-0001",  # normal, 10 days
    ]
    assert _queue(client, status="in_review") == ["RFA-2026-0004"]
    assert _queue(client, authority=str(b)) == ["RFA-2026-0003", "RFA-2026-0004"]
    assert _queue(client, assignee="me") == ["RFA-2026-0001"]
    assert _queue(client, assignee=str(desk.officer.user_id)) == ["RFA-2026-0001"]
    assert "RFA-2026-0001" not in _queue(client, assignee="unassigned")
    assert len(_queue(client, assignee="unassigned")) == 4
    bad = client.get("/triage", query_string={"status": "approved"})
    assert bad.status_code == 400
    assert "Choose a status of the queue." in bad.get_data(as_text=True)


def test_assign_to_me_and_to_another_officer_is_audited(
    app: Flask, db: Session, desk: Desk
) -> None:
    rfa = _rfa(db, "RFA-2026-0010", desk.authority_a)
    db.commit()
    client = _signed_in(app, desk.officer)
    page = "/triage/RFA-2026-0010"

    response = _post(client, "/triage", "/triage/RFA-2026-0010/assign", {"assignee": "me"})
    assert response.status_code == 303
    assert _assignee(db, rfa.id) == desk.officer.user_id

    _post(client, page, page + "/assign", {"assignee": str(desk.other_officer.user_id)})
    assert _assignee(db, rfa.id) == desk.other_officer.user_id
    assert _queue(client, assignee=str(desk.other_officer.user_id)) == ["RFA-2026-0010"]

    # A requester is no assignee: refused, nothing changed.
    refused = _post(client, page, page + "/assign", {"assignee": str(desk.requester.user_id)})
    assert refused.status_code == 303
    followed = client.get(page)
    assert "only be assigned to an active legal officer" in followed.get_data(as_text=True)
    assert _assignee(db, rfa.id) == desk.other_officer.user_id
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "rfa.assign").order_by(AuditEvent.seq)
    ).all()
    assert [e.target for e in events] == ["rfa:RFA-2026-0010"] * 2


# --- status moves --------------------------------------------------------------------------------


def _changes(db: Session, rfa_id: int) -> int:
    return int(
        db.scalar(select(func.count(RfaStatusChange.id)).where(RfaStatusChange.rfa_id == rfa_id))
        or 0
    )


def _fresh(db: Session, rfa_id: int) -> Rfa:
    db.expire_all()
    rfa = db.get(Rfa, rfa_id)
    assert rfa is not None
    return rfa


def _status(db: Session, rfa_id: int) -> str:
    return _fresh(db, rfa_id).status


def _assignee(db: Session, rfa_id: int) -> int | None:
    return _fresh(db, rfa_id).assigned_to_id


def test_status_moves_and_an_illegal_one_refused(app: Flask, db: Session, desk: Desk) -> None:
    rfa = _rfa(db, "RFA-2026-0020", desk.authority_a)
    db.commit()
    client = _signed_in(app, desk.officer)
    page = "/triage/RFA-2026-0020"
    url = page + "/status"

    assert _post(client, page, url, {"action": "start_review"}).status_code == 303
    assert _status(db, rfa.id) == "in_review"

    # Starting the review again is illegal: the clear message, nothing changed.
    before = _changes(db, rfa.id)
    refused = _post(client, page, url, {"action": "start_review"})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "A request that is in review cannot become in review" in text
    assert _status(db, rfa.id) == "in_review" and _changes(db, rfa.id) == before

    # Clarification: an empty question is refused, a real one goes into the thread.
    empty = _post(client, page, url, {"action": "clarify", "message": "  "})
    assert empty.status_code == 409
    assert _status(db, rfa.id) == "in_review"
    asked = _post(client, page, url, {"action": "clarify", "message": "Which village?"})
    assert asked.status_code == 303
    assert _status(db, rfa.id) == "clarification_requested"
    assert db.scalars(select(Message.body).where(Message.rfa_id == rfa.id)).all() == [
        "Which village?"
    ]

    # Approval needs a decision record; the typed note is kept on the refusal page.
    back = _post(client, page, url, {"action": "start_review"})
    assert back.status_code == 303
    assert _status(db, rfa.id) == "in_review"
    early = _post(client, page, url, {"action": "decide", "outcome": "approved", "note": "Fine."})
    assert early.status_code == 409
    early_text = early.get_data(as_text=True)
    assert "Run an eligibility check before approving" in early_text
    assert "Fine." in early_text
    assert _status(db, rfa.id) == "in_review"

    officer = db.get(User, desk.officer.user_id)
    assert officer is not None
    run_check(
        db, _fresh(db, rfa.id), portal_state(app).policy,
        requested_by=officer, actor=audit.actor_label(officer),
    )  # fmt: skip
    db.commit()
    done = _post(client, page, url, {"action": "decide", "outcome": "approved", "note": "Fine."})
    assert done.status_code == 303
    assert _status(db, rfa.id) == "approved"
    last = db.scalars(
        select(RfaStatusChange)
        .where(RfaStatusChange.rfa_id == rfa.id)
        .order_by(RfaStatusChange.id.desc())
    ).first()
    assert last is not None and last.note == "Fine." and last.to_status == "approved"
    decided = client.get(page)
    assert decided.status_code == 200
    assert "Search the repository" not in decided.get_data(as_text=True)  # decided: no changes


def test_decline_needs_a_note(app: Flask, db: Session, desk: Desk) -> None:
    rfa = _rfa(db, "RFA-2026-0021", desk.authority_a, status="in_review")
    db.commit()
    client = _signed_in(app, desk.officer)
    page = "/triage/RFA-2026-0021"
    bare = _post(client, page, page + "/status", {"action": "decide", "outcome": "declined"})
    assert bare.status_code == 409
    assert _status(db, rfa.id) == "in_review"
    ok = _post(
        client, page, page + "/status",
        {"action": "decide", "outcome": "declined", "note": "Outside the mandate."},
    )  # fmt: skip
    assert ok.status_code == 303
    assert _status(db, rfa.id) == "declined"


def test_the_decision_note_is_labelled_as_seen_by_the_requester(
    app: Flask, db: Session, desk: Desk
) -> None:
    """The note is shown verbatim to the requester, so the officer's form says so."""
    _rfa(db, "RFA-2026-0022", desk.authority_a, status="in_review")
    db.commit()
    client = _signed_in(app, desk.officer)
    page = client.get("/triage/RFA-2026-0022").get_data(as_text=True)
    label = re.search(r'<label class="form-label" for="note">([^<]*)</label>', page)
    assert label is not None and "the requester sees it" in label.group(1)
    assert 'aria-describedby="note-hint"' in page and "word for word" in page
    note = "Outside the mandate: fictional reason."
    done = _post(
        client, "/triage/RFA-2026-0022", "/triage/RFA-2026-0022/status",
        {"action": "decide", "outcome": "declined", "note": note},
    )  # fmt: skip
    assert done.status_code == 303
    requester = _signed_in(app, desk.requester)
    assert note in requester.get("/requests/RFA-2026-0022").get_data(as_text=True)


# --- search and candidates ---------------------------------------------------------------------


def _results(client: FlaskClient, code: str, **args: str) -> tuple[list[str], str]:
    response = client.get(f"/triage/{code}/search", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    return re.findall(r'<th scope="row">(ITM-[A-Z0-9-]+)</th>', text), text


def test_search_filters_pagination_and_candidates(app: Flask, db: Session, desk: Desk) -> None:
    _rfa(db, "RFA-2026-0030", desk.authority_a, status="in_review")
    pa, pb = desk.provider_a, desk.provider_b
    _item(db, "ITM-S1", pa, title="Statement of Witness Alpha", tags=["Shelling", "market"],
          collected=date(2024, 3, 1), place="North Market")  # fmt: skip
    _item(db, "ITM-S2", pa, title="Photo of the market", kind="photo", tags=["market"],
          collected=date(2024, 6, 1), place="South Square")  # fmt: skip
    _item(db, "ITM-S3", pb, title="Report 50% done_", kind="analytical_report",
          tags=["shelling"], collected=date(2025, 1, 1), place="North Market")  # fmt: skip
    for n in range(55):
        _item(db, f"ITM-F{n:02d}", pb, title=f"Filler {n}", kind="other")
    db.commit()
    client = _signed_in(app, desk.officer)
    code = "RFA-2026-0030"

    assert _results(client, code, title="witness ALPHA")[0] == ["ITM-S1"]
    assert _results(client, code, title="50%")[0] == ["ITM-S3"]  # wildcards are literal
    assert _results(client, code, title="done_")[0] == ["ITM-S3"]
    assert _results(client, code, title="%")[0] == ["ITM-S3"]
    assert _results(client, code, tags="shelling")[0] == ["ITM-S1", "ITM-S3"]
    assert _results(client, code, tags="shelling, market")[0] == ["ITM-S1"]
    assert _results(client, code, tags="shell")[0] == []  # whole tags only
    assert _results(client, code, kind="photo")[0] == ["ITM-S2"]
    assert _results(client, code, provider=str(pa))[0] == ["ITM-S1", "ITM-S2"]
    assert _results(client, code, **{"from": "2024-05-01", "to": "2024-12-31"})[0] == ["ITM-S2"]
    assert _results(client, code, place="north market")[0] == ["ITM-S1", "ITM-S3"]
    bad = client.get(f"/triage/{code}/search", query_string={"from": "2024-13-01"})
    assert bad.status_code == 400
    assert "Enter the start date as YYYY-MM-DD." in bad.get_data(as_text=True)
    backwards = client.get(
        f"/triage/{code}/search", query_string={"from": "2025-01-01", "to": "2024-01-01"}
    )
    assert backwards.status_code == 400

    # Pagination: 50 a page, the next page starts after the last item shown.
    first, text = _results(client, code, kind="other")
    assert len(first) == 50
    after = re.search(r'rel="next" href="[^"]*after=(\d+)', text)
    assert after is not None
    second, text2 = _results(client, code, kind="other", after=after.group(1))
    assert len(second) == 5 and not set(first) & set(second)
    assert 'rel="next"' not in text2
    page = search(db, ItemQuery(kind="other"), limit=20)
    assert len(page.items) == 20 and page.next_after == page.items[-1].id

    # Add two candidates, see them marked, remove one.
    ids = {i.code: i.id for i in db.scalars(select(Item))}
    search_page = f"/triage/{code}/search?title=market"
    added = _post(
        client, search_page, f"/triage/{code}/candidates",
        {"item_id": [str(ids["ITM-S1"]), str(ids["ITM-S2"])], "query": "title=market"},
    )  # fmt: skip
    assert added.status_code == 303
    assert added.headers["Location"].endswith(f"/triage/{code}/search?title=market")
    _found, marked = _results(client, code, provider=str(pa))
    assert marked.count('class="triage-candidate">Candidate<') == 2
    # Adding again changes nothing; an unknown item is refused and nothing is added.
    again = _post(client, search_page, f"/triage/{code}/candidates",
                  {"item_id": [str(ids["ITM-S1"]), "999999"]})  # fmt: skip
    assert again.status_code == 303
    rows = db.scalars(select(RfaItem.item_id).order_by(RfaItem.item_id)).all()
    assert rows == sorted([ids["ITM-S1"], ids["ITM-S2"]])

    detail = f"/triage/{code}"
    removed = _post(client, detail, detail + "/candidates/remove", {"item_id": ids["ITM-S2"]})
    assert removed.status_code == 303
    assert db.scalars(select(RfaItem.item_id)).all() == [ids["ITM-S1"]]
    missing = _post(client, detail, detail + "/candidates/remove", {"item_id": ids["ITM-S2"]})
    assert missing.status_code == 400
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("rfa.candidates.%"))
    ).all()
    assert sorted(actions) == ["rfa.candidates.add", "rfa.candidates.remove"]


def test_a_decided_request_shows_its_flagged_items_and_lets_an_officer_take_one_out(
    app: Flask, db: Session, desk: Desk
) -> None:
    """After a revocation the request is transmitted, not open: the page still offers to take
    the withdrawn item out, says it was flagged, and says a new check is needed."""
    rfa = _rfa(db, "RFA-2026-0031", desk.authority_a, status="transmitted")
    kept, withdrawn = _item(db, "ITM-K1", desk.provider_a), _item(db, "ITM-K2", desk.provider_a)
    make.candidate(db, rfa, kept)
    make.candidate(db, rfa, withdrawn, needs_recheck=True)
    db.commit()
    client = _signed_in(app, desk.officer)
    detail = "/triage/RFA-2026-0031"
    page = client.get(detail).get_data(as_text=True)
    assert page.count("Consent changed since the last check") == 1
    assert 'Remove<span class="visually-hidden"> ITM-K2</span>' in page
    assert "Search the repository" not in page  # nothing can be added after the decision

    removed = _post(client, detail, detail + "/candidates/remove", {"item_id": withdrawn.id})
    assert removed.status_code == 303
    assert "Run the eligibility check again" in client.get(detail).get_data(as_text=True)
    assert db.scalars(select(RfaItem.item_id).where(RfaItem.rfa_id == rfa.id)).all() == [kept.id]

    closed = _rfa(db, "RFA-2026-0032", desk.authority_a, status="closed")
    make.candidate(db, closed, kept)
    db.commit()
    finished = "/triage/RFA-2026-0032"
    assert "Remove<span" not in client.get(finished).get_data(as_text=True)
    refused = _post(client, finished, finished + "/candidates/remove", {"item_id": kept.id})
    assert refused.status_code == 400
    assert "can no longer change" in refused.get_data(as_text=True)


# --- consent requests ----------------------------------------------------------------------------


def test_consent_requests_one_per_provider_with_only_missing_items(
    app: Flask, db: Session, desk: Desk
) -> None:
    rfa = _rfa(db, "RFA-2026-0040", desk.authority_a, status="in_review")
    pa, pb = desk.provider_a, desk.provider_b
    granted = _item(db, "ITM-C1", pa)
    needs_a = _item(db, "ITM-C2", pa)
    needs_b = _item(db, "ITM-C3", pb)
    other_auth = _item(db, "ITM-C4", pb)
    not_candidate = _item(db, "ITM-C5", pa)
    for item in (granted, needs_a, needs_b, other_auth):
        make.candidate(db, rfa, item)
    owner_a, owner_b = make.stored(db, Provider, pa), make.stored(db, Provider, pb)
    authority_a = make.stored(db, Authority, desk.authority_a)
    make.consent(db, owner_a, authority_a, item=granted, code="CNS-T-1")
    # consent for another authority does not count for this request
    make.consent(db, owner_b, make.stored(db, Authority, desk.authority_b), item=other_auth,
                 code="CNS-T-2")  # fmt: skip
    db.commit()
    client = _signed_in(app, desk.officer)
    page = "/triage/RFA-2026-0040"

    response = _post(client, page, page + "/consent-requests", {})
    assert response.status_code == 303
    made = db.scalars(select(ConsentRequest).order_by(ConsentRequest.provider_id)).all()
    assert [(r.provider_id, r.authority_id, r.status) for r in made] == sorted(
        [(pa, desk.authority_a, "open"), (pb, desk.authority_a, "open")]
    )
    items = {
        r.provider_id: sorted(
            db.scalars(
                select(ConsentRequestItem.item_id).where(
                    ConsentRequestItem.consent_request_id == r.id
                )
            )
        )
        for r in made
    }
    assert items == {pa: [needs_a.id], pb: sorted([needs_b.id, other_auth.id])}
    assert not_candidate.id not in items[pa]
    for r in made:
        assert "RFA-2026-0040" in r.note and "CONFIDENTIAL" not in r.note
        assert "Zed" not in r.note
    assert (
        db.scalar(
            select(func.count(AuditEvent.seq)).where(AuditEvent.action == "consent_request.create")
        )
        == 2
    )

    # Asking again: everything is asked already; refused, nothing new.
    again = _post(client, page, page + "/consent-requests", {})
    assert again.status_code == 400
    assert "open consent request" in again.get_data(as_text=True)
    assert db.scalar(select(func.count(ConsentRequest.id))) == 2

    # The provider's users are told, without the request code.
    told = db.scalars(
        select(Notification).where(Notification.user_id == desk.provider.user_id)
    ).all()
    assert [(n.subject, n.link) for n in told] == [("New consent request", "/consent")]

    # The provider sees the request among its own consent requests.
    provider_page = _signed_in(app, desk.provider).get("/consent")
    assert provider_page.status_code == 200
    text = provider_page.get_data(as_text=True)
    assert "ITM-C2" in text and "ITM-C3" not in text and "CONFIDENTIAL" not in text


# --- who may -------------------------------------------------------------------------------------


def test_external_users_get_403_on_triage_pages(app: Flask, db: Session, desk: Desk) -> None:
    _rfa(db, "RFA-2026-0050", desk.authority_a)
    db.commit()
    for creds in (desk.requester, desk.provider, desk.recipient):
        client = _signed_in(app, creds)
        for url in ("/triage", "/triage/RFA-2026-0050", "/triage/RFA-2026-0050/search"):
            assert client.get(url).status_code == 403, (creds.email, url)
        token = csrf_token(client.get("/account"))
        posted = client.post("/triage/RFA-2026-0050/status",
                             data={"csrf_token": token, "action": "start_review"})  # fmt: skip
        assert posted.status_code == 403
    assert _status(db, db.scalars(select(Rfa.id)).one()) == "submitted"


def test_request_page_links_officers_to_triage(app: Flask, db: Session, desk: Desk) -> None:
    _rfa(db, "RFA-2026-0060", desk.authority_a)
    db.commit()
    link = 'href="/triage/RFA-2026-0060"'
    officer_page = _signed_in(app, desk.officer).get("/requests/RFA-2026-0060")
    assert link in officer_page.get_data(as_text=True)
    requester_page = _signed_in(app, desk.requester).get("/requests/RFA-2026-0060")
    assert requester_page.status_code == 200
    assert link not in requester_page.get_data(as_text=True)


# --- paging --------------------------------------------------------------------------------------


def test_queue_is_paged_fifty_at_a_time_in_a_stable_order(
    app: Flask, db: Session, desk: Desk
) -> None:
    for n in range(120):
        _rfa(db, f"RFA-2026-{n + 1:04d}", desk.authority_a, age_days=n % 7)
    _rfa(db, "RFA-2026-0999", desk.authority_b, urgency="very_urgent")
    db.scalars(
        select(Rfa).where(Rfa.code == "RFA-2026-0007")
    ).one().assigned_to_id = desk.officer.user_id
    db.commit()
    client = _signed_in(app, desk.officer)
    pages = [_queue(client, page=str(p)) for p in (1, 2, 3)]
    assert [len(p) for p in pages] == [50, 50, 21]
    everything = [code for page in pages for code in page]
    assert len(set(everything)) == 121  # no request on two pages, none left out
    assert everything[0] == "RFA-2026-0999"  # most urgent first, whatever the page size
    text = client.get("/triage", query_string={"page": "2"}).get_data(as_text=True)
    assert "Page 2 of 3" in text
    assert 'href="/triage?page=1" rel="prev"' in text and 'href="/triage?page=3"' in text
    # Filters are kept in the page links; a page past the end shows the last one.
    filtered = client.get("/triage", query_string={"authority": str(desk.authority_a)})
    assert f"page=2&amp;authority={desk.authority_a}" in filtered.get_data(as_text=True)
    # Counted with the filters: authority B has one request, the officer one, so one page
    # each, and their page 2 is that page (not an empty page 2 of 121 requests).
    assert _queue(client, authority=str(desk.authority_b), page="2") == ["RFA-2026-0999"]
    assert _queue(client, assignee="me", page="2") == ["RFA-2026-0007"]
    assert _queue(client, page="99") == pages[2]
    assert _queue(client, page="-1") == pages[0] and _queue(client, page="x") == pages[0]


def test_search_pages_say_where_they_are_and_go_back(app: Flask, db: Session, desk: Desk) -> None:
    _rfa(db, "RFA-2026-0040", desk.authority_a)
    for n in range(120):
        _item(db, f"ITM-P{n:03d}", desk.provider_a, title=f"Paged {n}", kind="other")
    db.commit()
    client = _signed_in(app, desk.officer)
    code = "RFA-2026-0040"
    seen: list[list[str]] = []
    text = client.get(f"/triage/{code}/search", query_string={"kind": "other"}).get_data(
        as_text=True
    )
    for number in (1, 2, 3):
        assert f"Page {number} of 3" in text and "120 items match." in text
        seen.append(re.findall(r'<th scope="row">(ITM-P\d+)</th>', text))
        found = re.search(r'rel="next" href="([^"]+)"', text)
        if found is None:
            break
        text = client.get(found.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert [len(s) for s in seen] == [50, 50, 20]
    assert 'rel="next"' not in text
    # Previous from the last page is the second page, and previous from there the first.
    back = re.search(r'rel="prev" href="([^"]+)"', text)
    assert back is not None
    text = client.get(back.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'<th scope="row">(ITM-P\d+)</th>', text) == seen[1]
    back = re.search(r'rel="prev" href="([^"]+)"', text)
    assert back is not None and "after=" not in back.group(1)
    text = client.get(back.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'<th scope="row">(ITM-P\d+)</th>', text) == seen[0]
    assert 'rel="prev"' not in text
