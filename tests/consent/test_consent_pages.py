"""The provider's consent pages over real HTTP, on both databases: answering a consent
request item by item, revoking (reason required), standing consent, where the material
went, scoping (another provider gets 404, other roles 403) and CSRF refusal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.consent.models import Consent, ConsentRequest, ConsentRequestItem
from portal.db import stored_utc, utcnow
from portal.eligibility.decisions import run_check
from portal.packages.models import Download, Package, PackageItem
from portal.registry.models import UNNAMED_PROVIDER, Authority, Provider
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.revoking import revoke_on_page, seen_digest

pytest_plugins = ["tests.support.auth"]

CONFIDENTIAL = "Suspect Zeta Quill"


@dataclass
class Setup:
    provider: Credentials
    other_provider: Credentials
    requester: Credentials
    recipient: Credentials
    officer: Credentials
    request_id: int
    rfa_id: int
    item_ids: list[int]
    authority_id: int


@pytest.fixture
def setup(db: Session) -> Setup:
    provider = make_user(db, "provider", provider_code="PRV-A")
    other_provider = make_user(db, "provider", provider_code="PRV-B")
    requester = make_user(db, "requester", authority_code="AUTH-A")
    recipient = make_user(db, "recipient", authority_code="AUTH-A")
    officer = make_user(db, "legal_officer")
    owner = db.scalars(select(Provider).where(Provider.code == "PRV-A")).one()
    authority = db.scalars(select(Authority).where(Authority.code == "AUTH-A")).one()
    items = [make.item(db, owner, f"ITM-PG-{n}", title=f"Statement {n}") for n in range(1, 4)]
    rfa = make.rfa(
        db, authority, "RFA-2026-0777", status="in_review", their_reference="THEIR-REF-SECRET",
        persons_concerned=CONFIDENTIAL,
    )  # fmt: skip
    request = ConsentRequest(
        rfa_id=rfa.id, provider_id=owner.id, authority_id=authority.id, note="Please answer."
    )
    db.add(request)
    db.flush()
    db.add_all(ConsentRequestItem(consent_request_id=request.id, item_id=i.id) for i in items)
    db.commit()
    return Setup(
        provider,
        other_provider,
        requester,
        recipient,
        officer,
        request.id,
        rfa.id,
        [i.id for i in items],
        authority.id,
    )


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _post(client: FlaskClient, url: str, data: dict[str, object]) -> str:
    token = csrf_token(client.get("/consent/given"))
    response = client.post(url, data={"csrf_token": token, **data}, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _events(db: Session) -> list[tuple[str, int | None]]:
    db.expire_all()
    return [(c.event, c.item_id) for c in db.scalars(select(Consent).order_by(Consent.id)).all()]


def test_provider_answers_item_by_item_and_the_request_becomes_answered(
    app: Flask, db: Session, setup: Setup
) -> None:
    client = _signed_in(app, setup.provider)
    inbox = client.get("/consent").get_data(as_text=True)
    assert "RFA-2026-0777" in inbox and "ITM-PG-1" in inbox and "Please answer." in inbox
    assert CONFIDENTIAL not in inbox and "THEIR-REF-SECRET" not in inbox
    url = f"/consent/requests/{setup.request_id}"
    first, second, third = setup.item_ids

    page = _post(
        client, url, {"action": "grant", "item": [first, second], "conditions": "Court only"}
    )
    assert "Consent granted for 2 item(s)." in page
    refused = _post(client, url, {"action": "decline", "item": [third], "reason": "  "})
    assert "Nothing was saved: give a reason" in refused
    assert _events(db) == [("grant", first), ("grant", second)]
    page = _post(client, url, {"action": "decline", "item": [third], "reason": "Too risky."})
    assert "The request is now answered." in page
    assert _events(db) == [("grant", first), ("grant", second), ("decline", third)]
    request = db.get(ConsentRequest, setup.request_id)
    assert request is not None and request.status == "answered"
    assert "There are no open consent requests." in client.get("/consent").get_data(as_text=True)


def test_bad_input_is_refused_and_loses_nothing(app: Flask, db: Session, setup: Setup) -> None:
    client = _signed_in(app, setup.provider)
    url = f"/consent/requests/{setup.request_id}"
    assert "select at least one item" in _post(client, url, {"action": "grant"})
    assert "could not be read" in _post(client, url, {"action": "grant", "item": ["x"]})
    assert "not part of this consent request" in _post(
        client, url, {"action": "grant", "item": [999_999]}
    )
    assert "expiry date must be a date" in _post(
        client, url, {"action": "grant", "item": [setup.item_ids[0]], "expires_on": "soon"}
    )
    assert "choose grant or decline" in _post(
        client, url, {"action": "maybe", "item": [setup.item_ids[0]]}
    )
    assert _events(db) == []


def _package(
    app: Flask, db: Session, setup: Setup, code: str, status: str, item_id: int, *, downloaded: bool
) -> Package:
    """A package of the request for ``item_id`` as assembly and release leave it."""
    officer = db.get(User, setup.officer.user_id)
    rfa = db.get(Rfa, setup.rfa_id)
    assert officer is not None and rfa is not None
    decision = run_check(db, rfa, portal_state(app).policy, requested_by=officer, actor="t")
    other_officer = make_user(db, "legal_officer").user_id
    now = utcnow()
    package = Package(
        code=code,
        rfa_id=rfa.id,
        decision_id=decision.id,
        authority_id=setup.authority_id,
        status=status,
        assembled_by_id=officer.id,
        released_by_id=other_officer if status != "assembled" else None,
        released_at=now if status != "assembled" else None,
        expires_at=now + timedelta(days=30),
    )
    db.add(package)
    db.flush()
    db.add(
        PackageItem(
            package_id=package.id,
            item_id=item_id,
            rendition="as_is",
            path="data/items/x",
            source_sha256="0" * 64,
        )
    )
    if downloaded:
        db.add(Download(package_id=package.id, bytes_sent=1))
    db.commit()
    return package


def test_revoking_shows_what_it_does_then_needs_a_reason_and_a_confirmation(
    app: Flask, db: Session, setup: Setup
) -> None:
    client = _signed_in(app, setup.provider)
    url = f"/consent/requests/{setup.request_id}"
    _post(client, url, {"action": "grant", "item": setup.item_ids})
    grant_id = db.scalars(select(Consent.id).order_by(Consent.id)).first()
    released = _package(app, db, setup, "PKG-2026-0081", "released", setup.item_ids[0],
                        downloaded=True)  # fmt: skip
    given = client.get("/consent/given").get_data(as_text=True)
    assert f"/consent/given/{grant_id}/revoke" in given and "Granted" in given

    confirm = f"/consent/given/{grant_id}/revoke"
    page = client.get(confirm)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "ITM-PG-1" in text and "Test authority AUTH-A" in text
    assert "Recalled: the authority is asked to destroy every copy" in text
    assert released.released_at is not None
    assert released.released_at.strftime("%Y-%m-%d") in text
    # By authority name and date, nothing more: no package or request code, no case detail.
    for secret in ("PKG-2026-0081", "RFA-2026-0777", "THEIR-REF-SECRET", CONFIDENTIAL):
        assert secret not in text
    seen = seen_digest(page)

    def post(**data: str) -> TestResponse:
        return client.post(confirm, data={"csrf_token": csrf_token(page), "seen": seen, **data})

    blank = post(reason=" ", confirm="yes")
    assert blank.status_code == 400
    assert "Give a reason for revoking. Nothing was changed." in blank.get_data(as_text=True)
    unticked = post(reason="Withdrawn.")
    assert unticked.status_code == 400
    assert "Tick the box" in unticked.get_data(as_text=True)
    assert ">Withdrawn.</textarea>" in unticked.get_data(as_text=True)  # kept for the retry
    assert [e for e, _ in _events(db)] == ["grant"] * 3

    # A package made since the page was opened changes what revoking does: look again.
    _package(app, db, setup, "PKG-2026-0082", "assembled", setup.item_ids[0], downloaded=False)
    stale = post(reason="Withdrawn.", confirm="yes")
    assert stale.status_code == 409
    assert "has changed since you opened this page" in stale.get_data(as_text=True)
    assert "Stopped before it is sent" in stale.get_data(as_text=True)
    assert [e for e, _ in _events(db)] == ["grant"] * 3

    done = revoke_on_page(client, grant_id, "Withdrawn.", follow_redirects=True)
    assert "Consent revoked" in done.get_data(as_text=True)
    assert "blocked: 1, withdrawn: 0, recalled: 1" in done.get_data(as_text=True)
    assert _events(db)[-1] == ("revoke", setup.item_ids[0])
    again = client.get(confirm, follow_redirects=True).get_data(as_text=True)
    assert "no active grant to revoke" in again
    revoke_id = db.scalars(select(Consent.id).where(Consent.event == "revoke")).one()
    not_a_grant = client.get(f"/consent/given/{revoke_id}/revoke", follow_redirects=True)
    assert "is a revoke, not a grant" in not_a_grant.get_data(as_text=True)
    assert len(_events(db)) == 4


def test_standing_consent_per_authority(app: Flask, db: Session, setup: Setup) -> None:
    client = _signed_in(app, setup.provider)
    url = f"/consent/standing/{setup.authority_id}"
    assert "Tick the box" in _post(client, url, {"conditions": "x"})
    page = _post(client, url, {"confirm": "yes", "expires_on": "2999-01-31"})
    assert "Standing consent CNS-" in page
    assert _events(db) == [("grant", None)]
    given = client.get("/consent/given").get_data(as_text=True)
    # Shown as chosen ("valid until 2999-01-31": through that day); stored as the exclusive
    # end the consent rule compares with the clock (issue 22).
    assert "Revoke" in given and '<time datetime="2999-01-31">2999-01-31</time>' in given
    assert "2999-02-01" not in given
    stored = db.scalars(select(Consent.expires_at)).one()
    assert stored is not None and stored_utc(stored) == datetime(2999, 2, 1, tzinfo=UTC)
    assert (
        client.post(
            url.replace(str(setup.authority_id), "999999"),
            data={"csrf_token": csrf_token(client.get("/consent/given")), "confirm": "yes"},
        ).status_code
        == 404
    )


def test_other_providers_get_404_and_other_roles_403(app: Flask, db: Session, setup: Setup) -> None:
    owner = _signed_in(app, setup.provider)
    _post(
        owner, f"/consent/requests/{setup.request_id}", {"action": "grant", "item": setup.item_ids}
    )
    grant_id = db.scalars(select(Consent.id)).first()
    other = _signed_in(app, setup.other_provider)
    assert "ITM-PG-1" not in other.get("/consent").get_data(as_text=True)
    assert "ITM-PG-1" not in other.get("/consent/given").get_data(as_text=True)
    token = csrf_token(other.get("/consent"))
    for url, data in (
        (f"/consent/requests/{setup.request_id}", {"action": "decline", "reason": "x"}),
        (f"/consent/given/{grant_id}/revoke", {"reason": "x"}),
    ):
        assert other.post(url, data={"csrf_token": token, **data}).status_code == 404
    for creds in (setup.requester, setup.recipient, setup.officer):
        client = _signed_in(app, creds)
        for url in ("/consent", "/consent/given", "/consent/where"):
            assert client.get(url).status_code == 403
    assert [e for e, _ in _events(db)] == ["grant"] * 3


def test_posts_without_a_csrf_token_are_refused(app: Flask, db: Session, setup: Setup) -> None:
    client = _signed_in(app, setup.provider)
    response = client.post(
        f"/consent/requests/{setup.request_id}",
        data={"action": "grant", "item": setup.item_ids},
    )
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    assert _events(db) == []


def test_where_my_material_went(app: Flask, db: Session, setup: Setup) -> None:
    client = _signed_in(app, setup.provider)
    assert "None of your items" in client.get("/consent/where").get_data(as_text=True)
    for n, status in enumerate(("assembled", "recalled"), start=1):
        _package(app, db, setup, f"PKG-2026-009{n}", status, setup.item_ids[n - 1],
                 downloaded=True)  # fmt: skip
    page = client.get("/consent/where").get_data(as_text=True)
    assert "PKG-2026-0091" in page and "PKG-2026-0092" in page
    assert "Recalled</td>" in page and "Awaiting release" in page
    assert "Test authority AUTH-A" in page
    other = _signed_in(app, setup.other_provider)
    assert "PKG-2026-009" not in other.get("/consent/where").get_data(as_text=True)
    assert db.scalar(select(func.count(Package.id))) == 2


def test_a_provider_chooses_not_to_be_named_to_authorities(
    app: Flask, db: Session, setup: Setup
) -> None:
    client = _signed_in(app, setup.provider)
    given = client.get("/consent/given").get_data(as_text=True)
    assert 'id="named-yes" checked' in given
    page = _post(client, "/consent/naming", {"named": "maybe"})
    assert "Choose how authorities see you. Nothing was changed." in page
    page = _post(client, "/consent/naming", {"named": "no"})
    assert "Authorities now see no name for you" in page
    assert 'id="named-no" checked' in page
    provider = db.scalars(select(Provider).where(Provider.code == "PRV-A")).one()
    db.refresh(provider)
    assert provider.named_to_authorities is False
    assert provider.name_for_authorities == UNNAMED_PROVIDER
    _post(client, "/consent/naming", {"named": "no"})  # no change: no second audit event
    page = _post(client, "/consent/naming", {"named": "yes"})
    assert f"Authorities now see you as {provider.public_name}." in page
    changes = db.scalars(select(AuditEvent).where(AuditEvent.action == "provider.naming")).all()
    assert [json.loads(e.details)["named_to_authorities"] for e in changes] == [False, True]
    assert all(e.target == "provider:PRV-A" for e in changes)
