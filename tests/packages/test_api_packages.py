"""Packages and recalls over the JSON API, on both databases, with a real encrypted package
(tests.support.recipient): list and read (the authority's own; another's is 404), download
whole and by Range with ETag, recorded as a Download naming the client and audited as the
client, the detached signature, acknowledgement of receipt (only after a download, once),
and recalls with their signed notice and acknowledgement."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.db import utcnow
from portal.packages.models import Download, Package, Recall
from portal.rfa.models import Rfa
from portal.state import portal_state
from tests.api.test_api_oauth import is_problem
from tests.support.api import ApiClient, api_client, bearer, token_for
from tests.support.recipient import Shipment

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]


def tokens(app: Flask, client: FlaskClient) -> tuple[ApiClient, str, str]:
    """A client of the package's authority (AUTH-A) and a token of one of AUTH-B."""
    mine = api_client(app, authority_code="AUTH-A")
    theirs = api_client(app, authority_code="AUTH-B")
    return mine, token_for(client, mine), token_for(client, theirs)


def test_list_and_read_are_the_authoritys_own(
    app: Flask, client: FlaskClient, ship: Shipment
) -> None:
    _api, token, other = tokens(app, client)
    listing = client.get("/api/v1/packages", headers=bearer(token)).get_json()
    assert [p["code"] for p in listing["items"]] == [ship.code]
    package = client.get(f"/api/v1/packages/{ship.code}", headers=bearer(token)).get_json()
    assert package["status"] == "released" and package["rfa"] == "RFA-2026-0501"
    assert package["file_sha256"] == ship.cipher.sha256
    assert package["downloads_counted"] == 0 and package["acknowledged_at"] is None
    assert client.get("/api/v1/packages", headers=bearer(other)).get_json()["items"] == []
    for path in ("", "/download", "/signature"):
        is_problem(client.get(f"/api/v1/packages/{ship.code}{path}", headers=bearer(other)), 404)
    is_problem(client.post(f"/api/v1/packages/{ship.code}/acknowledge", headers=bearer(other)), 404)


def test_download_whole_and_by_range_with_etag(
    app: Flask, client: FlaskClient, db: Session, ship: Shipment
) -> None:
    api, token, _other = tokens(app, client)
    url = f"/api/v1/packages/{ship.code}/download"
    whole = client.get(url, headers=bearer(token))
    assert whole.status_code == 200 and whole.data == ship.cipher.data
    etag = whole.headers["ETag"].strip('"')
    assert etag == ship.cipher.sha256 and whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(url, headers={**bearer(token), "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == ship.cipher.data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(ship.cipher.data)}"
    unchanged = client.get(url, headers={**bearer(token), "If-None-Match": f'"{etag}"'})
    assert unchanged.status_code == 304 and unchanged.data == b""
    head = client.head(url, headers=bearer(token))
    assert head.status_code == 200 and head.data == b""
    out_of_range = client.get(url, headers={**bearer(token), "Range": "bytes=999999999-"})
    is_problem(out_of_range, 416)
    rows = db.scalars(select(Download).order_by(Download.id)).all()
    assert [(r.range_start, r.bytes_sent, r.client_id, r.user_id) for r in rows] == [
        (None, len(ship.cipher.data), api.client_id, None),
        (1000, 1000, api.client_id, None),
    ]
    audited = db.scalars(
        select(AuditEvent.actor).where(AuditEvent.action == "package.downloaded")
    ).all()
    assert audited == [f"api:{api.client_id}"] * 2
    signature = client.get(f"/api/v1/packages/{ship.code}/signature", headers=bearer(token))
    assert signature.status_code == 200 and signature.data == ship.cipher.signature
    assert signature.mimetype == "application/pgp-signature"


def test_download_limit_and_withdrawal_are_the_pages_refusals(
    app: Flask, client: FlaskClient, db: Session, ship: Shipment
) -> None:
    _api, token, _other = tokens(app, client)
    package = db.get(Package, ship.package_id)
    assert package is not None
    package.download_limit = 1
    db.commit()
    url = f"/api/v1/packages/{ship.code}/download"
    assert client.get(url, headers=bearer(token)).status_code == 200
    refused = is_problem(client.get(url, headers=bearer(token)), 403)
    assert "download limit" in str(refused["detail"])
    resumed = client.get(url, headers={**bearer(token), "Range": "bytes=10-19"})
    assert resumed.status_code == 206  # resuming never counts
    package.status = "withdrawn"
    db.commit()
    assert "withdrawn" in str(is_problem(client.get(url, headers=bearer(token)), 403)["detail"])


def test_acknowledge_receipt_only_after_a_download_and_once(
    app: Flask, client: FlaskClient, db: Session, ship: Shipment
) -> None:
    api, token, _other = tokens(app, client)
    ack = f"/api/v1/packages/{ship.code}/acknowledge"
    early = is_problem(client.post(ack, headers=bearer(token)), 409)
    assert "Download the package" in str(early["detail"])
    read_only = token_for(client, api_client(app, scopes=["packages:read"]))
    is_problem(client.post(ack, headers=bearer(read_only)), 403)
    assert (
        client.get(f"/api/v1/packages/{ship.code}/download", headers=bearer(token)).status_code
        == 200
    )
    done = client.post(ack, headers=bearer(token))
    assert done.status_code == 200 and done.get_json()["acknowledged_at"] is not None
    db.expire_all()
    rfa = db.get(Rfa, ship.rfa_id)
    assert rfa is not None and rfa.status == "acknowledged"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "package.acknowledged"))
    assert event is not None and event.actor == f"api:{api.client_id}"
    assert "already acknowledged" in str(
        is_problem(client.post(ack, headers=bearer(token)), 409)["detail"]
    )


def test_recalls_listed_with_notice_and_acknowledged(
    app: Flask, client: FlaskClient, db: Session, ship: Shipment
) -> None:
    api, token, other = tokens(app, client)
    notice = b"-----BEGIN PGP SIGNED MESSAGE-----\nRecall PKG-2026-0501\n"
    recall = Recall(
        package_id=ship.package_id,
        reason="The provider withdrew its consent.",
        notice_sha256=portal_state(app).blobs.put_bytes(notice).sha256,
        created_at=utcnow(),
    )
    db.add(recall)
    package = db.get(Package, ship.package_id)
    assert package is not None
    package.status = "recalled"
    db.commit()
    listing = client.get("/api/v1/recalls", headers=bearer(token)).get_json()
    (entry,) = listing["items"]
    assert entry["package"] == ship.code and entry["notice"] == notice.decode()
    assert entry["acknowledged_at"] is None
    assert client.get("/api/v1/recalls", headers=bearer(other)).get_json()["items"] == []
    url = f"/api/v1/recalls/{recall.id}/acknowledge"
    is_problem(client.post(url, json={"disposition": "returned"}, headers=bearer(other)), 404)
    is_problem(client.post(url, json={"disposition": "kept"}, headers=bearer(token)), 422)
    is_problem(client.post(url, json=["returned"], headers=bearer(token)), 400)
    done = client.post(url, json={"disposition": "destroyed"}, headers=bearer(token))
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["disposition"] == "destroyed"
    again = client.post(url, json={"disposition": "destroyed"}, headers=bearer(token))
    assert "already acknowledged" in str(is_problem(again, 409)["detail"])
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "recall.acknowledged"))
    assert event is not None and event.actor == f"api:{api.client_id}"
    is_problem(
        client.post("/api/v1/recalls/99999999999/acknowledge", json={}, headers=bearer(token)), 404
    )
