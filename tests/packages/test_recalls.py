"""Recalls end to end over real HTTP, on both databases: a provider revokes consent for an
item of a downloaded package; the package is recalled and a notice clearsigned by the
mechanism's key is issued at once (checked with gpg: good signature, signer fingerprint);
the recipient is sent to the recall page at sign-in and sees a banner everywhere until it
acknowledges; the legal officers and the provider are told and the provider's page shows
the acknowledgement. Without a signing key the revocation still succeeds and the notice is
issued later, when the recipient opens the recall page."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.notifications.models import Notification
from portal.packages.assembly.jobs import IMMEDIATE_CONFIG, jobs_for
from portal.packages.models import Package, PackageItem, Recall
from portal.registry.models import Item
from portal.registry.openpgp import temporary_keyring
from portal.rfa.models import Rfa
from tests.support.auth import Credentials, csrf_token, login, make_user
from tests.support.recipient import (
    SIGNING_FINGERPRINT,
    SIGNING_KEY,
    SIGNING_PASSPHRASE,
    SIGNING_PUBLIC,
    Shipment,
    signed_in,
)
from tests.support.revoking import revoke_on_page

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]

BANNER = "recall notice to acknowledge"


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return _immediate(
        make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    )


def _immediate(app: Flask) -> Flask:
    """Jobs run as they are queued, in this process (the worker's code, without a worker):
    the notice is signed by the ``issue_recall_notices`` job, never by the view itself."""
    app.config[IMMEDIATE_CONFIG] = True
    return app


def _revoke(app: Flask, ship: Shipment) -> FlaskClient:
    provider = signed_in(app, ship.provider)
    done = revoke_on_page(
        provider, ship.consent_id, "The witness asked us to withdraw.", follow_redirects=True
    )
    assert "recalled: 1" in done.get_data(as_text=True)
    return provider


def _recall(db: Session, ship: Shipment) -> Recall:
    db.expire_all()
    recall = db.scalar(select(Recall).where(Recall.package_id == ship.package_id))
    assert recall is not None
    return recall


def _gpg_signer(text: bytes) -> str | None:
    """The primary fingerprint of a good signature on ``text`` (None when not good)."""
    with temporary_keyring() as gpg:
        gpg.import_keys(SIGNING_PUBLIC.read_text())
        verified = gpg.verify(text)
        if not verified.valid:
            return None
        return str(verified.pubkey_fingerprint or verified.fingerprint).upper()


def _sign_in_fresh(app: Flask, creds: Credentials) -> tuple[FlaskClient, str]:
    client = app.test_client()
    response = login(client, creds)
    page = client.get(response.headers["Location"], follow_redirects=False)
    return client, page.headers.get("Location", "")


def test_recall_notice_signed_shown_at_sign_in_and_acknowledged(
    app: Flask, db: Session, ship: Shipment
) -> None:
    downloader = signed_in(app, ship.recipient)
    assert downloader.get(f"/received/{ship.code}/download").status_code == 200
    provider = _revoke(app, ship)

    recall = _recall(db, ship)
    package = db.get(Package, ship.package_id)
    assert package is not None and package.status == "recalled"
    assert recall.notice_sha256 is not None  # issued right after the revocation
    issued = db.scalars(select(AuditEvent).where(AuditEvent.action == "recall.notice_issued"))
    assert [json.loads(e.details)["signer"] for e in issued] == [SIGNING_FINGERPRINT]
    recalled = db.scalars(
        select(Notification.user_id).where(Notification.subject.endswith("has been recalled"))
    )
    assert set(recalled) == {ship.recipient.user_id, ship.colleague.user_id}

    client, landing = _sign_in_fresh(app, ship.recipient)
    assert landing.endswith("/received/recalls")
    page = client.get("/received/recalls").get_data(as_text=True)
    assert ship.code in page and "Not yet acknowledged" in page
    assert BANNER in client.get("/account").get_data(as_text=True)
    assert client.get(f"/received/{ship.code}/download").status_code == 403

    notice = client.get(f"/received/recalls/{recall.id}/notice")
    assert notice.status_code == 200
    assert "attachment" in notice.headers["Content-Disposition"]
    assert b"RECALL NOTICE" in notice.data and ship.code.encode() in notice.data
    assert _gpg_signer(notice.data) == SIGNING_FINGERPRINT
    # Item by item: the withdrawn item as the package holds it, and the package's own digest.
    (held,) = db.scalars(select(PackageItem).where(PackageItem.package_id == ship.package_id))
    item = db.get(Item, ship.item_id)
    assert item is not None and package.file_sha256
    shared_sha = held.rendition_sha256 or held.source_sha256
    body = notice.data.decode()
    assert f"Package SHA-256: {package.file_sha256}" in body
    assert f"Withdrawn item: {item.code}\n" in body
    assert f"  Path:    {held.path}\n  SHA-256: {shared_sha}\n" in body
    assert "No other item of the package remains shareable." in body
    assert _gpg_signer(notice.data.replace(held.path.encode(), b"data/other.pdf")) is None
    assert f'<code class="digest">{held.path}</code>' in page and shared_sha in page

    url = f"/received/recalls/{recall.id}/acknowledge"
    token = csrf_token(client.get("/received/recalls"))
    vague = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "returned or destroyed" in vague.get_data(as_text=True)
    assert _recall(db, ship).acknowledged_at is None
    done = client.post(
        url, data={"csrf_token": token, "disposition": "destroyed"}, follow_redirects=True
    )
    text = done.get_data(as_text=True)
    assert "Recall acknowledged" in text and BANNER not in text
    recall = _recall(db, ship)
    assert recall.acknowledged_by_id == ship.recipient.user_id
    assert recall.details is not None and recall.details["disposition"] == "destroyed"
    (event,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "recall.acknowledged"))
    assert json.loads(event.details) == {"recall": recall.id, "disposition": "destroyed"}
    told = {
        n.user_id
        for n in db.scalars(
            select(Notification).where(Notification.subject.contains("acknowledged"))
        )
    }
    assert {ship.officer.user_id, ship.provider.user_id} <= told

    again = client.post(
        url, data={"csrf_token": token, "disposition": "returned"}, follow_redirects=True
    )
    assert "already acknowledged" in again.get_data(as_text=True)
    _, landing = _sign_in_fresh(app, ship.colleague)
    assert not landing.endswith("/received/recalls")
    where = provider.get("/consent/where").get_data(as_text=True)
    assert "Yes: acknowledged by the authority" in where


def test_the_request_timeline_shows_the_recall_in_words_for_each_side(
    app: Flask, db: Session, ship: Shipment
) -> None:
    assert signed_in(app, ship.recipient).get(f"/received/{ship.code}/download").status_code == 200
    _revoke(app, ship)
    rfa = db.get(Rfa, ship.rfa_id)
    assert rfa is not None
    officer_page = signed_in(app, ship.officer).get(f"/requests/{rfa.code}").get_data(as_text=True)
    assert "Material withdrawn by its provider" in officer_page
    assert f"Package {ship.code} recalled: the provider withdrew consent for 1 item(s)." in (
        officer_page
    )
    requester = make_user(db, "requester", authority_code="AUTH-A")
    page = signed_in(app, requester).get(f"/requests/{rfa.code}").get_data(as_text=True)
    assert "Material withdrawn by its provider" in page
    assert "signed recall notice" in page and ship.code not in page.split("Status history")[1]


def test_the_web_process_queues_the_notice_and_the_worker_signs_it(
    make_app: Callable[..., Flask], db: Session, ship: Shipment
) -> None:
    queued = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    recipient = signed_in(queued, ship.recipient)
    assert recipient.get(f"/received/{ship.code}/download").status_code == 200
    _revoke(queued, ship)
    assert _recall(db, ship).notice_sha256 is None  # the view did not sign it
    huey = jobs_for(queued).huey
    pending = huey.pending()
    assert [task.name for task in pending] == ["issue_recall_notices"]
    huey.execute(pending[0])  # what a worker does with it
    recall = _recall(db, ship)
    assert recall.notice_sha256 is not None
    notice = recipient.get(f"/received/recalls/{recall.id}/notice")
    assert _gpg_signer(notice.data) == SIGNING_FINGERPRINT


def test_other_authority_sees_no_recall(app: Flask, db: Session, ship: Shipment) -> None:
    assert signed_in(app, ship.recipient).get(f"/received/{ship.code}/download").status_code == 200
    _revoke(app, ship)
    recall = _recall(db, ship)
    other, landing = _sign_in_fresh(app, ship.other_recipient)
    assert not landing.endswith("/received/recalls")
    assert BANNER not in other.get("/received/recalls").get_data(as_text=True)
    assert other.get(f"/received/recalls/{recall.id}/notice").status_code == 404
    token = csrf_token(other.get("/received/recalls"))
    refused = other.post(
        f"/received/recalls/{recall.id}/acknowledge",
        data={"csrf_token": token, "disposition": "destroyed"},
    )
    assert refused.status_code == 404
    assert _recall(db, ship).acknowledged_at is None


def test_notice_issued_lazily_when_no_key_was_configured(
    make_app: Callable[..., Flask], db: Session, ship: Shipment, app: Flask
) -> None:
    keyless = _immediate(make_app())  # same database and blob store, no signing key
    client = signed_in(keyless, ship.recipient)
    assert client.get(f"/received/{ship.code}/download").status_code == 200
    provider = _revoke(keyless, ship)
    recall = _recall(db, ship)
    assert recall.notice_sha256 is None  # the revocation went through all the same
    where = provider.get("/consent/where").get_data(as_text=True)
    assert "Yes: not yet acknowledged by the authority" in where

    page = client.get("/received/recalls").get_data(as_text=True)
    assert "Not ready yet" in page
    assert client.get(f"/received/recalls/{recall.id}/notice").status_code == 404
    token = csrf_token(client.get("/received/recalls"))
    refused = client.post(
        f"/received/recalls/{recall.id}/acknowledge",
        data={"csrf_token": token, "disposition": "destroyed"},
        follow_redirects=True,
    )
    assert "has not been issued yet" in refused.get_data(as_text=True)
    assert _recall(db, ship).acknowledged_at is None

    keyed = signed_in(app, ship.colleague)  # the portal with the key configured
    page = keyed.get("/received/recalls").get_data(as_text=True)
    assert "Download the signed notice" in page
    notice = keyed.get(f"/received/recalls/{_recall(db, ship).id}/notice")
    assert _gpg_signer(notice.data) == SIGNING_FINGERPRINT
