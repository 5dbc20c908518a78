"""Every endpoint declares a permission, and every endpoint answers every kind of visitor as
this file — written independently of ``authz.PERMISSIONS`` — says it must.

Visitors: anonymous, each role, and for the external roles a second user of *another*
authority or provider. Adding an endpoint without a permission, or without a row in
``EXPECTED``, fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from portal import audit
from portal.accounts.creation import NewUser
from portal.accounts.models import User
from portal.authz.permissions import PUBLIC, declared_permission, public
from portal.config import REPO_ROOT
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.support import factories
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

#: The only endpoints anyone may reach without signing in, and why.
PUBLIC_ENDPOINTS = {
    "auth.login": "the sign-in form",
    "auth.login_totp": "second sign-in step; refuses anyone without a fresh first step",
    "public.healthz": "load balancers and monitors",
    "public.readyz": "monitors",
    "enrol.start": "the invitation token in the URL is the credential",
    "enrol.authenticator": "the invitation token in the URL is the credential",
    "enrol.qr": "the invitation token in the URL is the credential",
    "api.openapi_json": "the API's description, like any API documentation",
    "api.token": "OAuth token endpoint: the client credentials are the credential",
    "api.revoke": "OAuth revocation endpoint: the client credentials are the credential",
    # The mechanism's public signing key, its history and transition statements (issue 20).
    "signing_key.page": "the public signing-key page",
    "signing_key.well_known_key": "the current public signing key",
    "signing_key.well_known_history": "the signing keys' history",
    "signing_key.public_key": "a public signing key of the history",
    "signing_key.statement": "a transition statement (public)",
    "signing_key.statement_signature": "a transition statement's signatures (public)",
    **{  # the transparency log: signed checkpoints, proofs, public digests (issue 20)
        f"transparency.{name}": "the public transparency log"
        for name in (
            "latest_checkpoint",
            "latest_checkpoint_text",
            "latest_checkpoint_signature",
            "checkpoint_by_size",
            "checkpoint_text",
            "checkpoint_signature",
            "inclusion",
            "consistency",
            "leaf_records",
            "leaf_record",
        )
    },
}

WHO = (
    "anonymous",
    "admin",
    "legal_officer",
    "requester",
    "requester_other",
    "recipient",
    "recipient_other",
    "provider",
    "provider_other",
)
SIGNED_IN = WHO[1:]

OK = "ok"  # 2xx, or a redirect somewhere other than the sign-in page
LOGIN = "login"  # redirect to the sign-in page


def only(*allowed: str) -> dict[str, object]:
    """Signed-in visitors in ``allowed`` get through; other signed-in ones get 403; the
    anonymous visitor is sent to sign in."""
    return {who: OK if who in allowed else (LOGIN if who == "anonymous" else 403) for who in WHO}


def everyone_signed_in() -> dict[str, object]:
    return only(*SIGNED_IN)


def anyone() -> dict[str, object]:
    return dict.fromkeys(WHO, OK)


STAFF = ("admin", "legal_officer")
#: Case content (requests, attachments, messages, items, decisions, packages) is for the
#: parties and legal officers: admins run the portal (IT) and get 403 (issue 18).
OFFICER = ("legal_officer",)

#: (endpoint, method) -> who -> outcome.
EXPECTED: dict[tuple[str, str], dict[str, object]] = {
    ("public.healthz", "GET"): anyone(),
    ("public.readyz", "GET"): dict.fromkeys(WHO, 503),  # no worker in these tests: not ready
    # The public signing-key page and files: anyone; no key is recorded in this world.
    ("signing_key.page", "GET"): anyone(),
    ("signing_key.well_known_key", "GET"): dict.fromkeys(WHO, 404),
    ("signing_key.well_known_history", "GET"): anyone(),
    ("signing_key.public_key", "GET"): dict.fromkeys(WHO, 404),
    ("signing_key.statement", "GET"): dict.fromkeys(WHO, 404),
    ("signing_key.statement_signature", "GET"): dict.fromkeys(WHO, 404),
    **{  # no checkpoint signed in these tests: 404 for everyone, never a sign-in page
        (endpoint, "GET"): dict.fromkeys(WHO, 404)
        for endpoint in PUBLIC_ENDPOINTS
        if endpoint.startswith("transparency.")
    },
    ("transparency.consistency", "GET"): anyone(),  # 400: it asks for ?first=M
    ("auth.login", "GET"): anyone(),
    ("enrol.start", "GET"): anyone(),
    ("enrol.authenticator", "GET"): anyone(),  # redirects back to the password step
    ("enrol.qr", "GET"): dict.fromkeys(WHO, 404),  # no QR before a password is chosen
    ("dashboard.index", "GET"): everyone_signed_in(),
    # The legal officer's worklists (issue 22): case work, not for admins.
    ("dashboard.worklist", "GET"): only("legal_officer"),
    # The audit log (issue 22): who did what to which object, for admins (IT) only.
    ("audit.index", "GET"): only("admin"),
    ("audit.export", "GET"): only("admin"),
    ("audit.verify", "POST"): only("admin"),
    ("account.view", "GET"): everyone_signed_in(),
    ("account.change_password", "POST"): everyone_signed_in(),
    ("account.change_language", "POST"): everyone_signed_in(),
    ("account.regenerate_recovery_codes", "POST"): everyone_signed_in(),
    ("admin.users", "GET"): only("admin"),
    ("admin.user_detail", "GET"): only("admin"),
    ("admin.invite_user", "GET"): only("admin"),
    ("admin.invite_user", "POST"): only("admin"),
    ("admin.change_user_role", "POST"): only("admin"),
    ("admin.deactivate_user", "POST"): only("admin"),
    ("admin.reactivate_user", "POST"): only("admin"),
    ("admin.reset_user_2fa", "POST"): only("admin"),
    ("admin.unlock_user", "POST"): only("admin"),
    ("admin.cancel", "POST"): only("admin"),
    # The matrix's target user is a requester, whose account needs no approval: 409.
    ("admin.approve_user", "POST"): {**only("admin"), "admin": 409},
    ("admin.authorities", "GET"): only(*STAFF),
    ("admin.authority_detail", "GET"): only(*STAFF),
    ("admin.providers", "GET"): only(*STAFF),
    ("admin.provider_detail", "GET"): only(*STAFF),
    ("eligibility.requests", "GET"): only(*OFFICER),
    ("eligibility.request_detail", "GET"): only(*OFFICER),
    ("eligibility.check", "POST"): only("legal_officer"),
    ("eligibility.decision", "GET"): only(*OFFICER),
    ("eligibility.decision_pdf_export", "GET"): only(*OFFICER),
    ("eligibility.assessments", "GET"): only(*STAFF),
    ("requests.index", "GET"): only("requester", "requester_other", *OFFICER),
    ("requests.new", "GET"): only("requester", "requester_other"),
    ("requests.new", "POST"): only("requester", "requester_other"),
    ("requests.detail", "GET"): {**only("requester", *OFFICER), "requester_other": 404},
    # The matrix's request is submitted: its edit page sends the requester back to it.
    ("requests.edit", "GET"): {**only("requester"), "requester_other": 404},
    ("requests.edit", "POST"): {**only("requester"), "requester_other": 404},
    ("requests.withdraw_request", "POST"): {**only("requester"), "requester_other": 404},
    ("requests.message", "POST"): {**only("requester", "legal_officer"), "requester_other": 404},
    ("requests.acknowledgement", "GET"): {**only("requester", *OFFICER), "requester_other": 404},
    ("reports.index", "GET"): only(*STAFF),
    ("reports.report_pdf", "GET"): only(*STAFF),
    ("reports.report_csv", "GET"): only(*STAFF),
    ("requests.attach", "POST"): {**only("requester", "legal_officer"), "requester_other": 404},
    ("requests.add_assurance", "POST"): {
        **only("requester", "legal_officer"),
        "requester_other": 404,
    },
    ("requests.attachment_file", "GET"): {**only("requester", *OFFICER), "requester_other": 404},
    ("requests.assurance_file", "GET"): {**only("requester", *OFFICER), "requester_other": 404},
    # Providers only (staff read consent on the eligibility pages); the matrix's consent
    # request and grant are PRV-A's, so the other provider gets 404 for them.
    ("consent.index", "GET"): only("provider", "provider_other"),
    ("consent.given", "GET"): only("provider", "provider_other"),
    ("consent.where", "GET"): only("provider", "provider_other"),
    ("consent.answer", "POST"): {**only("provider"), "provider_other": 404},
    ("consent.confirm_revoke", "GET"): {**only("provider"), "provider_other": 404},
    ("consent.revoke", "POST"): {**only("provider"), "provider_other": 404},
    ("consent.standing", "POST"): only("provider", "provider_other"),
    ("consent.naming", "POST"): only("provider", "provider_other"),
    # The legal officer's triage (admins administer; they do not triage).
    ("triage.index", "GET"): only("legal_officer"),
    ("triage.detail", "GET"): only("legal_officer"),
    ("triage.search_items", "GET"): only("legal_officer"),
    ("triage.assign_request", "POST"): only("legal_officer"),
    ("triage.move", "POST"): only("legal_officer"),
    ("triage.add", "POST"): only("legal_officer"),
    ("triage.remove", "POST"): only("legal_officer"),
    ("triage.ask_consent", "POST"): only("legal_officer"),
    ("triage.bulk_assign_requests", "POST"): only("legal_officer"),  # 400: nothing chosen
    ("triage.bulk_move_requests", "POST"): only("legal_officer"),
    # The receiving authority's pages: AUTH-A's released package and recall; AUTH-B's
    # recipient gets 404 for them. Empty forms are refused with a message (OK).
    ("recipient.index", "GET"): only("recipient", "recipient_other"),
    ("recipient.detail", "GET"): {**only("recipient"), "recipient_other": 404},
    ("recipient.download", "GET"): {**only("recipient"), "recipient_other": 404},
    ("recipient.signature", "GET"): {**only("recipient"), "recipient_other": 404},
    ("recipient.release_statement", "GET"): {**only("recipient"), "recipient_other": 404},
    ("recipient.acknowledge", "POST"): {**only("recipient"), "recipient_other": 404},
    ("recipient.recalls_page", "GET"): only("recipient", "recipient_other"),
    ("recipient.notice", "GET"): {**only("recipient"), "recipient_other": 404},
    ("recipient.acknowledge_recall", "POST"): {**only("recipient"), "recipient_other": 404},
    # Recipient keys (staff). Empty forms are refused with a message (OK).
    ("keys.index", "GET"): only(*STAFF),
    ("keys.import_new", "POST"): only(*STAFF),
    ("keys.detail", "GET"): only(*STAFF),
    # Verifying is a legal officer's (never the importer's: see the four-eyes tests below).
    ("keys.verify", "POST"): only(*OFFICER),
    ("keys.revoke", "POST"): only(*STAFF),
    # The register of protected identifiers: legal officers only (admins too get 403: the
    # values identify persons at risk). Empty forms are refused with a message (OK).
    ("register.index", "GET"): only("legal_officer"),
    ("register.person", "GET"): only("legal_officer"),
    ("register.add", "POST"): only("legal_officer"),
    ("register.retire", "POST"): only("legal_officer"),
    # The officers' package pages: legal officers only (admins do not read case content).
    ("packages.index", "GET"): only(*OFFICER),
    ("packages.for_rfa", "GET"): only(*OFFICER),
    ("packages.create", "POST"): only("legal_officer"),
    ("packages.clear_item", "POST"): only("legal_officer"),
    ("packages.detail", "GET"): only(*OFFICER),
    ("packages.release", "POST"): only("legal_officer"),
    ("packages.retry", "POST"): only("legal_officer"),
    ("packages.check_mark_by_eye", "POST"): only("legal_officer"),
    ("packages.check_pixels_by_eye", "POST"): only("legal_officer"),
    ("packages.item_original", "GET"): only("legal_officer"),
    # Redaction review: pages and marks of a request's items, four eyes (legal officers).
    ("review.item_page", "GET"): only("legal_officer"),
    ("review.page_image", "GET"): only("legal_officer"),
    ("review.find_names", "POST"): only("legal_officer"),
    ("review.propose_term", "POST"): only("legal_officer"),
    ("review.propose_box", "POST"): only("legal_officer"),
    ("review.edit", "POST"): only("legal_officer"),
    ("review.confirm", "POST"): only("legal_officer"),
    ("review.confirm_all", "POST"): only("legal_officer"),
    ("review.remove", "POST"): only("legal_officer"),
    ("review.cancel_removal", "POST"): only("legal_officer"),
    ("review.confirm_removal", "POST"): only("legal_officer"),
    ("preview.item_page", "GET"): only("legal_officer"),
    ("preview.make", "POST"): only("legal_officer"),
    ("preview.page_image", "GET"): only("legal_officer"),
    # the world's package is released: its kept renditions are gone (a 404), and for anyone
    # but a legal officer the route is refused before the package is looked at
    ("preview.package_item", "GET"): {**only("legal_officer"), "legal_officer": 404},
    ("preview.package_page_image", "GET"): {**only("legal_officer"), "legal_officer": 404},
    # The API's OAuth clients (admins only).
    ("api_clients.index", "GET"): only("admin"),
    ("api_clients.register", "POST"): only("admin"),
    ("api_clients.revoke", "POST"): only("admin"),
    # The JSON API: its description is public; the token endpoint refuses a request
    # without a grant type (400, counted OK); everything else wants a bearer token, which
    # no browser session is (401 problem+json, never a redirect to the sign-in page).
    ("api.openapi_json", "GET"): anyone(),
    ("api.token", "POST"): anyone(),
    ("api.revoke", "POST"): dict.fromkeys(WHO, 401),
    ("api.create", "POST"): dict.fromkeys(WHO, 401),
    ("api.list_requests", "GET"): dict.fromkeys(WHO, 401),
    ("api.get_request", "GET"): dict.fromkeys(WHO, 401),
    ("api.list_messages", "GET"): dict.fromkeys(WHO, 401),
    ("api.post_request_message", "POST"): dict.fromkeys(WHO, 401),
    ("api.list_packages", "GET"): dict.fromkeys(WHO, 401),
    ("api.get_package", "GET"): dict.fromkeys(WHO, 401),
    ("api.download", "GET"): dict.fromkeys(WHO, 401),
    ("api.signature", "GET"): dict.fromkeys(WHO, 401),
    ("api.acknowledge", "POST"): dict.fromkeys(WHO, 401),
    ("api.list_recalls", "GET"): dict.fromkeys(WHO, 401),
    ("api.acknowledge_recall", "POST"): dict.fromkeys(WHO, 401),
    # Last, because it ends the visitor's sessions; everyone ends on the sign-in page.
    ("notifications.index", "GET"): everyone_signed_in(),
    ("notifications.read_all", "POST"): everyone_signed_in(),
    # the world's notification belongs to "requester"; anyone else's mark-read is a 404
    ("notifications.read", "POST"): {
        **dict.fromkeys(SIGNED_IN, 404),
        "anonymous": LOGIN,
        "requester": OK,
    },
    ("auth.logout", "POST"): dict.fromkeys(WHO, LOGIN),
}

#: Second-step POST and first-step POST are exercised by tests/accounts/test_login.py (generic
#: failure for everyone); enrolment POSTs by tests/accounts/test_enrolment.py.
NOT_IN_MATRIX = {
    ("auth.login", "POST"),
    ("auth.login_totp", "GET"),
    ("auth.login_totp", "POST"),
    ("enrol.start", "POST"),
    ("enrol.authenticator", "POST"),
}


def _routes(app: Flask) -> Iterator[tuple[Rule, str]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def undeclared_endpoints(app: Flask) -> list[str]:
    """Endpoints whose view declares no permission, and public ones not on the list."""
    problems = []
    for rule, _method in _routes(app):
        action = declared_permission(app.view_functions[rule.endpoint])
        if action is None:
            problems.append(f"{rule.endpoint}: declares no permission")
        elif action == PUBLIC and rule.endpoint not in PUBLIC_ENDPOINTS:
            problems.append(f"{rule.endpoint}: public but not in PUBLIC_ENDPOINTS")
    return sorted(set(problems))


def test_every_endpoint_declares_a_permission(app: Flask) -> None:
    assert undeclared_endpoints(app) == []


def test_an_endpoint_without_a_permission_fails_the_check_and_is_denied(
    app: Flask, client: FlaskClient
) -> None:
    app.add_url_rule("/forgotten", "forgotten", lambda: "secret page")
    assert undeclared_endpoints(app) == ["forgotten: declares no permission"]
    assert client.get("/forgotten").status_code == 403
    with portal_state(app).sessions() as session:
        admin = make_user(session, "admin")
    login(client, admin)
    assert client.get("/forgotten").status_code == 403


def test_an_unlisted_public_endpoint_fails_the_check(app: Flask) -> None:
    app.add_url_rule("/open", "open_page", public("testing the check")(lambda: "open"))
    assert undeclared_endpoints(app) == ["open_page: public but not in PUBLIC_ENDPOINTS"]


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    routes = {(rule.endpoint, method) for rule, method in _routes(app)}
    assert routes - set(EXPECTED) - NOT_IN_MATRIX == set(), "add the new routes to EXPECTED"
    assert set(EXPECTED) - routes == set(), "EXPECTED names routes that no longer exist"


@dataclass
class World:
    clients: dict[str, FlaskClient]
    url_values: dict[str, Any]


@pytest.fixture
def world(app: Flask) -> World:
    from portal.accounts.invitations import invite

    with portal_state(app).sessions() as session:
        creds: dict[str, Credentials] = {
            "admin": make_user(session, "admin"),
            "legal_officer": make_user(session, "legal_officer"),
            "requester": make_user(session, "requester", authority_code="AUTH-A"),
            "requester_other": make_user(session, "requester", authority_code="AUTH-B"),
            "recipient": make_user(session, "recipient", authority_code="AUTH-A"),
            "recipient_other": make_user(session, "recipient", authority_code="AUTH-B"),
            "provider": make_user(session, "provider", provider_code="PRV-A"),
            "provider_other": make_user(session, "provider", provider_code="PRV-B"),
        }
        target = make_user(session, "requester", authority_code="AUTH-A")
        admin = session.get(User, creds["admin"].user_id)
        assert admin is not None
        to_cancel, _ = invite(
            session,
            NewUser("cancel.me@example.test", "Cancel Me", "requester", authority_code="AUTH-A"),
            invited_by=admin,
        )
        _, token = invite(
            session,
            NewUser("new.user@example.test", "New User", "provider", provider_code="PRV-A"),
            invited_by=admin,
        )
        officer = session.get(User, creds["legal_officer"].user_id)
        assert officer is not None
        authority = session.scalars(select(Authority).where(Authority.code == "AUTH-A")).one()
        rfa = factories.rfa(session, authority, "RFA-2026-0900", their_reference="A-REF-1")
        decision = run_check(
            session,
            rfa,
            portal_state(app).policy,
            requested_by=officer,
            actor=audit.actor_label(officer),
        )
        url_values = {
            "rfa_id": rfa.id,
            "rfa_code": rfa.code,
            "decision_id": decision.id,
            "user_id": target.user_id,
            "authority_id": authority.id,
            "provider_id": session.scalar(select(Provider.id).where(Provider.code == "PRV-A")),
            "invitation_id": to_cancel.id,
            "token": token,
            "size": 1,  # the transparency log's
            "index": 0,
        }
        url_values.update(_consent_values(session, rfa))
        url_values.update(_upload_values(app, session, rfa))
        url_values.update(
            _recipient_values(app, session, rfa, decision.id, officer.id, creds["admin"].user_id)
        )
        url_values["notification_id"] = _notification_for(session, creds["requester"])
        url_values["key_id"] = _key_for(session, url_values["authority_id"])
        url_values.update(_identifier_values(app, session))
        url_values["item_id"] = session.scalar(select(Item.id).where(Item.code == "ITM-MATRIX-1"))
        url_values["client_pk"] = _api_client_for(session, url_values["authority_id"], admin)
        url_values["code"] = rfa.code  # API paths name requests and packages "code"
        url_values["fingerprint"] = "0" * 40  # no signing key is recorded in this world
        url_values["worklist_name"] = "release"
        session.commit()
    clients = {"anonymous": app.test_client()}
    for who, cred in creds.items():
        clients[who] = app.test_client()
        login(clients[who], cred)
    return World(clients=clients, url_values=url_values)


def _api_client_for(session: Session, authority_id: int, admin: User) -> int:
    """An API client of AUTH-A, for the admin's client pages."""
    from portal.api.clients import register_client

    authority = session.get(Authority, authority_id)
    assert authority is not None
    return register_client(session, authority, "Matrix client", ["rfa:read"], by=admin).client.id


def _identifier_values(app: Flask, session: Session) -> dict[str, Any]:
    """A person at risk with one protected identifier, for the register's pages."""
    from tests.support.identifiers import LATIN_NAME, register

    person = factories.person(session)
    row = register(session, portal_state(app).sealer, person, LATIN_NAME)
    return {"person_code": person.code, "identifier_code": row.code}


def _key_for(session: Session, authority_id: int) -> int:
    """An unverified key of AUTH-A, for the key pages."""
    from portal.registry.models import RecipientKey

    armored = (REPO_ROOT / "keys_example" / "NWU-NL.pub.asc").read_text("ascii")
    key = RecipientKey(
        authority_id=authority_id, fingerprint="A0250D36642C79CB4339C0D7062724629530B911",
        armored=armored, algorithm="ed25519", uid="Matrix key",
    )  # fmt: skip
    session.add(key)
    session.flush()
    return key.id


def _upload_values(app: Flask, session: Session, rfa: Rfa) -> dict[str, Any]:
    """An attachment and a death-penalty assurance of the matrix's request."""
    from datetime import date

    from portal.rfa.models import Assurance, Attachment

    blob = portal_state(app).blobs.put_bytes(b"matrix attachment\n")
    attachment = Attachment(
        rfa_id=rfa.id, filename="m.txt", media_type="text/plain", size_bytes=blob.size,
        sha256=blob.sha256,
    )  # fmt: skip
    assurance = Assurance(
        rfa_id=rfa.id, sha256=blob.sha256, filename="a.txt", given_by="Ministry",
        given_at=date(2026, 1, 1),
    )  # fmt: skip
    session.add_all([attachment, assurance])
    session.flush()
    return {"attachment_id": attachment.id, "assurance_id": assurance.id}


def _recipient_values(
    app: Flask, session: Session, rfa: Rfa, decision_id: str, assembler: int, releaser: int
) -> dict[str, Any]:
    """AUTH-A's released package (file and signature in the blob store) and a recalled
    one with its (stand-in) notice, for the recipient pages."""
    from datetime import timedelta

    from portal.packages.models import Package, PackageItem, Recall

    blobs = portal_state(app).blobs
    now = utcnow()
    packages = []
    for code, status in (("PKG-2026-0901", "released"), ("PKG-2026-0902", "recalled")):
        package = Package(
            code=code, rfa_id=rfa.id, decision_id=decision_id,
            authority_id=rfa.authority_id, status=status,
            file_sha256=blobs.put_bytes(f"{code} ciphertext".encode()).sha256,
            signature_sha256=blobs.put_bytes(f"{code} signature".encode()).sha256,
            release_statement_sha256=blobs.put_bytes(f"{code} statement".encode()).sha256,
            assembled_by_id=assembler, released_by_id=releaser, released_at=now,
            expires_at=now + timedelta(days=30),
        )  # fmt: skip
        packages.append(package)
    session.add_all(packages)
    session.flush()
    recall = Recall(
        package_id=packages[1].id, reason="Matrix recall",
        notice_sha256=blobs.put_bytes(b"matrix recall notice").sha256,
    )  # fmt: skip
    session.add(recall)
    provider = session.scalars(select(Provider).where(Provider.code == "PRV-A")).one()
    data = _tiny_png()  # a photo: the review pages show it as page 1
    item = factories.item(
        session, provider, "ITM-MATRIX-2", sha256=blobs.put_bytes(data).sha256,
        size_bytes=len(data), media_type="image/png", original_filename="matrix.png",
    )  # fmt: skip
    mark = factories.redaction_mark(session, item, code="M-1")
    factories.candidate(session, rfa, item)
    shared = PackageItem(
        package_id=packages[0].id, item_id=item.id, rendition="redacted",
        path="data/items/ITM-MATRIX-2/matrix.pdf", source_sha256=item.sha256,
    )  # fmt: skip
    session.add(shared)
    session.flush()
    return {
        "package_code": packages[0].code,
        "recall_id": recall.id,
        "item_code": item.code,
        "mark_code": mark.code,
        "page": 1,
    }


def _tiny_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (40, 30), "white").save(out, format="PNG")
    return out.getvalue()


def _consent_values(session: Session, rfa: Rfa) -> dict[str, Any]:
    """A PRV-A item, a consent request about it and a grant, for the consent pages."""
    from portal.consent.models import ConsentRequest, ConsentRequestItem

    provider = session.scalars(select(Provider).where(Provider.code == "PRV-A")).one()
    item = factories.item(session, provider, "ITM-MATRIX-1", title="Matrix statement")
    request = ConsentRequest(rfa_id=rfa.id, provider_id=provider.id, authority_id=rfa.authority_id)
    session.add(request)
    session.flush()
    authority = factories.stored(session, Authority, rfa.authority_id)
    consent = factories.consent(session, provider, authority, item=item, code="CNS-2026-900001")
    session.add(ConsentRequestItem(consent_request_id=request.id, item_id=item.id))
    session.flush()
    return {"request_id": request.id, "consent_id": consent.id}


def _notification_for(session: Session, creds: Credentials) -> int:
    from portal.notifications.service import notify

    user = session.get(User, creds.user_id)
    assert user is not None
    (notification,) = notify(session, [user], "Matrix notification", None)
    return notification.id


def _outcome(response: TestResponse) -> object:
    if response.status_code == 400 and "Form expired" not in response.get_data(as_text=True):
        return OK  # the view ran and refused the empty form (a CSRF failure is not OK)
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers.get("Location", "")
        return LOGIN if location.split("?")[0].endswith("/login") else OK
    if response.status_code < 300:
        return OK
    return response.status_code


def _request(
    app: Flask, client: FlaskClient, rule: Rule, method: str, values: dict[str, Any]
) -> TestResponse:
    with app.test_request_context():
        from flask import url_for

        url = url_for(rule.endpoint, **{k: values[k] for k in rule.arguments})
    if method == "GET":
        return client.get(url)
    # A valid CSRF token for this browser (signed-in browsers are sent on from /login to a
    # page whose sign-out form carries one) and no form fields: the request reaches the view.
    token = csrf_token(client.get("/login", follow_redirects=True))
    return client.post(url, data={"csrf_token": token})


def test_access_matrix(app: Flask, world: World) -> None:
    rules = {rule.endpoint: rule for rule, _ in _routes(app)}
    failures = []
    for (endpoint, method), expected_by_who in EXPECTED.items():
        for who in WHO:
            response = _request(app, world.clients[who], rules[endpoint], method, world.url_values)
            got = _outcome(response)
            want = expected_by_who[who]
            if got != want:
                failures.append(f"{method} {endpoint} as {who}: expected {want}, got {got}")
            assert response.status_code != 500, f"{method} {endpoint} as {who}: server error"
    assert failures == [], "\n".join(failures)


def test_matrix_helpers_are_strict() -> None:
    rows: list[Callable[..., dict[str, object]]] = [everyone_signed_in, anyone]
    for make in rows:
        assert set(make()) == set(WHO)
    assert only("admin")["legal_officer"] == 403
    assert only("admin")["anonymous"] == LOGIN


# --- the four-eyes paths (issue 18): no one person redirects evidence ---------------------


def _post(client: FlaskClient, page: str, action: str, **data: Any) -> TestResponse:
    token = csrf_token(client.get(page))
    return client.post(
        action, data={"csrf_token": token, **data}, content_type="multipart/form-data"
    )


def _verification() -> dict[str, str]:
    return {
        "confirmed_by": "Duty officer A. Vell",
        "method": "phone",
        "when": utcnow().strftime("%Y-%m-%dT%H:%M"),
        "fingerprint_matches": "yes",
    }


def test_four_eyes_on_keys_import_by_one_verify_by_another(app: Flask) -> None:
    from portal.registry.models import RecipientKey

    with portal_state(app).sessions() as session:
        creds = {
            "admin": make_user(session, "admin"),
            "officer": make_user(session, "legal_officer"),
            "other_officer": make_user(session, "legal_officer"),
        }
        make_user(session, "recipient", authority_code="AUTH-A")
    clients = {}
    for who, cred in creds.items():
        clients[who] = app.test_client()
        login(clients[who], cred)
    keys = REPO_ROOT / "keys_example"
    for who, name in (("admin", "NWU-NL"), ("officer", "ECT-EV")):
        imported = _post(
            clients[who], "/keys", "/keys",
            authority="AUTH-A", armored=(keys / f"{name}.pub.asc").read_text("ascii"),
        )  # fmt: skip
        assert imported.status_code == 303, (who, imported.get_data(as_text=True)[:2000])
    with portal_state(app).sessions() as session:
        by_importer = {k.imported_by_id: k.id for k in session.scalars(select(RecipientKey)).all()}
    admins_key = by_importer[creds["admin"].user_id]
    officers_key = by_importer[creds["officer"].user_id]

    # the admin imports but never verifies; the importing officer cannot verify their own
    page = f"/keys/{admins_key}"
    assert _post(clients["admin"], page, f"{page}/verify", **_verification()).status_code == 403
    page = f"/keys/{officers_key}"
    own = _post(clients["officer"], page, f"{page}/verify", **_verification())
    assert own.status_code == 400 and "You imported this key" in own.get_data(as_text=True)
    # another legal officer verifies both
    for key_id in (admins_key, officers_key):
        page = f"/keys/{key_id}"
        done = _post(clients["other_officer"], page, f"{page}/verify", **_verification())
        assert done.status_code == 303
    with portal_state(app).sessions() as session:
        for key in session.scalars(select(RecipientKey)):
            assert key.verified_by_id == creds["other_officer"].user_id != key.imported_by_id


def test_four_eyes_on_accounts_invite_by_one_approve_by_another(app: Flask) -> None:
    import re

    from portal.accounts import totp
    from portal.accounts.invitations import choose_password, complete_enrolment, open_enrolment

    with portal_state(app).sessions() as session:
        inviter, approver = make_user(session, "admin"), make_user(session, "admin")
        make_user(session, "recipient", authority_code="AUTH-A")
    first, second = app.test_client(), app.test_client()
    login(first, inviter)
    login(second, approver)
    created = _post(
        first, "/admin/users/invite", "/admin/users/invite",
        email="mira.tovey@auth-a.example", display_name="Mira Tovey", role="recipient",
        authority="AUTH-A", provider="",
    )  # fmt: skip
    assert created.status_code == 200
    found = re.search(r'value="http://localhost/enrol/([^"]+)"', created.get_data(as_text=True))
    assert found is not None  # test mode shows the link; a real portal only mails it
    with portal_state(app).sessions() as session:
        enrolment = open_enrolment(session, found.group(1))
        assert enrolment is not None
        secret = totp.new_secret()
        user, _ = complete_enrolment(
            session, enrolment,
            password_hash=choose_password(enrolment, "lantern quarry violet 58", profile="fast"),
            totp_secret=secret, code=totp.code_at(secret, utcnow()),
        )  # fmt: skip
        session.commit()
        newcomer = Credentials(user.email, "lantern quarry violet 58", secret, user.id)
    page = f"/admin/users/{newcomer.user_id}"
    # the new account cannot sign in, so cannot approve itself or anything else
    stranger = app.test_client()
    assert login_fails(stranger, newcomer)
    assert _post(first, page, f"{page}/approve").status_code == 403  # the inviter
    assert _post(second, page, f"{page}/approve").status_code == 303  # a second admin
    assert _post(second, page, f"{page}/approve").status_code == 409  # approving twice
    mine = f"/admin/users/{approver.user_id}"
    assert _post(second, mine, f"{mine}/approve").status_code == 409  # nothing to self-approve


def login_fails(client: FlaskClient, creds: Credentials) -> bool:
    from tests.support.auth import post_password

    return post_password(client, creds.email, creds.password).status_code == 401
