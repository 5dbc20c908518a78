"""Package downloads over real HTTP (Flask test client), on both databases: the whole file,
resumed ranges (206 with the right bytes, 416 out of range), ETag / If-None-Match / If-Range,
the detached signature (verified with gpg), and refusals: another authority (404), withdrawn,
recalled, expired, download limit; every download recorded and audited."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.notifications import service as notifications
from portal.packages.assembly.gpgstream import verify_detached
from portal.packages.downloads import DownloadPlan, DownloadRefused, record_download
from portal.packages.models import Download, Package
from portal.state import portal_state
from tests.support.auth import make_user
from tests.support.package_world import flip_a_bit
from tests.support.recipient import (
    SIGNING_FINGERPRINT,
    SIGNING_PUBLIC,
    Cipher,
    Shipment,
    make_shipment,
    signed_in,
)

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]


def _url(ship: Shipment, what: str = "download") -> str:
    return f"/received/{ship.code}/{what}"


def _downloads(db: Session, ship: Shipment) -> list[tuple[int | None, int, int | None]]:
    db.expire_all()
    return [
        (d.range_start, d.bytes_sent, d.user_id)
        for d in db.scalars(
            select(Download).where(Download.package_id == ship.package_id).order_by(Download.id)
        )
    ]


def _audit(db: Session, action: str) -> list[dict[str, object]]:
    db.expire_all()
    return [
        json.loads(e.details)
        for e in db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
    ]


def test_full_download_streams_the_file_with_etag_and_is_recorded(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    response = client.get(_url(ship), environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 200
    assert response.data == ship.cipher.data
    assert response.headers["ETag"] == f'"{ship.cipher.sha256}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f"attachment; filename={ship.code}.tar.gpg"
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Content-Length"]) == len(ship.cipher.data)
    assert _downloads(db, ship) == [(None, len(ship.cipher.data), ship.recipient.user_id)]
    (event,) = _audit(db, "package.downloaded")
    assert event["address"] == "192.0.2.7"
    assert event["bytes"] == len(ship.cipher.data)
    assert event["range_start"] is None and event["sha256"] == ship.cipher.sha256


def test_range_resume_returns_the_right_bytes_and_416_out_of_range(
    app: Flask, db: Session, ship: Shipment
) -> None:
    data = ship.cipher.data
    client = signed_in(app, ship.recipient)
    first = client.get(_url(ship), headers={"Range": "bytes=0-999"})
    assert first.status_code == 206
    assert first.data == data[:1000]
    assert first.headers["Content-Range"] == f"bytes 0-999/{len(data)}"
    etag = first.headers["ETag"]
    rest = client.get(_url(ship), headers={"Range": "bytes=1000-", "If-Range": etag})
    assert rest.status_code == 206
    assert first.data + rest.data == data
    assert rest.headers["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    beyond = client.get(_url(ship), headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    assert _downloads(db, ship) == [
        (0, 1000, ship.recipient.user_id),
        (1000, len(data) - 1000, ship.recipient.user_id),
    ]


def test_if_range_with_another_etag_sends_the_whole_file(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    response = client.get(_url(ship), headers={"Range": "bytes=10-", "If-Range": '"stale"'})
    assert response.status_code == 200 and response.data == ship.cipher.data
    assert _downloads(db, ship) == [(None, len(ship.cipher.data), ship.recipient.user_id)]


def test_if_none_match_gives_304_and_records_nothing(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    response = client.get(_url(ship), headers={"If-None-Match": f'"{ship.cipher.sha256}"'})
    assert response.status_code == 304 and response.data == b""
    assert _downloads(db, ship) == []
    head = client.head(_url(ship))
    assert head.status_code == 200 and head.data == b""
    assert _downloads(db, ship) == []


def test_signature_download_verifies_with_gpg(
    app: Flask, db: Session, ship: Shipment, tmp_path: Path
) -> None:
    client = signed_in(app, ship.recipient)
    response = client.get(_url(ship, "signature"))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={ship.code}.tar.gpg.sig"
    )
    cipher_file = tmp_path / f"{ship.code}.tar.gpg"
    cipher_file.write_bytes(client.get(_url(ship)).data)
    verify_detached(cipher_file, response.data, SIGNING_PUBLIC.read_text(), SIGNING_FINGERPRINT)
    assert len(_audit(db, "package.signature_downloaded")) == 1
    assert len(_downloads(db, ship)) == 1  # the signature is not a package download


def test_another_authority_gets_404_and_other_roles_403(app: Flask, ship: Shipment) -> None:
    other = signed_in(app, ship.other_recipient)
    for what in ("download", "signature"):
        assert other.get(_url(ship, what)).status_code == 404
    assert other.get(f"/received/{ship.code}").status_code == 404
    officer = signed_in(app, ship.officer)
    assert officer.get(_url(ship)).status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(_url(ship)).status_code == 302


def test_unreleased_packages_are_invisible(app: Flask, db: Session, cipher: Cipher) -> None:
    ship = make_shipment(app, db, cipher, status="assembled")
    client = signed_in(app, ship.recipient)
    assert client.get(_url(ship)).status_code == 404
    assert client.get(f"/received/{ship.code}").status_code == 404
    assert ship.code not in client.get("/received").get_data(as_text=True)


def _set(db: Session, ship: Shipment, **values: object) -> None:
    package = db.get(Package, ship.package_id)
    assert package is not None
    for name, value in values.items():
        setattr(package, name, value)
    db.commit()


def test_withdrawn_and_recalled_packages_are_refused_with_the_reason(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    _set(db, ship, status="withdrawn")
    refused = client.get(_url(ship))
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "withdrew its consent" in page and "Download refused" in page
    assert client.get(_url(ship, "signature")).status_code == 403
    _set(db, ship, status="recalled")
    assert "has been recalled" in client.get(_url(ship)).get_data(as_text=True)
    assert _downloads(db, ship) == []


def test_expired_package_is_refused(app: Flask, db: Session, ship: Shipment) -> None:
    _set(db, ship, expires_at=utcnow() - timedelta(minutes=1))
    client = signed_in(app, ship.recipient)
    refused = client.get(_url(ship))
    assert refused.status_code == 403
    assert "download period of this package ended" in refused.get_data(as_text=True)
    assert "Expired" in client.get("/received").get_data(as_text=True)
    assert _downloads(db, ship) == []


def test_download_limit_counts_full_downloads_not_resumptions(
    app: Flask, db: Session, cipher: Cipher
) -> None:
    ship = make_shipment(app, db, cipher, download_limit=2)
    data = cipher.data
    client = signed_in(app, ship.recipient)
    colleague = signed_in(app, ship.colleague)
    # resuming before any counted download is refused (byte 0 must be fetched first)
    early = client.get(_url(ship), headers={"Range": "bytes=5-"})
    assert early.status_code == 403 and "start the download" in early.get_data(as_text=True)
    assert client.get(_url(ship), headers={"Range": "bytes=0-99"}).status_code == 206  # 1
    assert client.get(_url(ship), headers={"Range": "bytes=100-"}).status_code == 206
    assert colleague.get(_url(ship)).status_code == 200  # 2: the limit is per package
    assert client.get(_url(ship), headers={"Range": "bytes=500-"}).status_code == 206
    refused = client.get(_url(ship))
    assert refused.status_code == 403
    assert "download limit of this package is used up" in refused.get_data(as_text=True)
    assert client.get(_url(ship), headers={"Range": "bytes=0-10"}).status_code == 403
    assert [start for start, _, _ in _downloads(db, ship)] == [0, 100, None, 500]
    assert sum(n for start, n, _ in _downloads(db, ship) if start == 100) == len(data) - 100
    refusals = _audit(db, "package.download_refused")
    assert len(refusals) == 3
    assert "2 times" in str(refusals[-1]["reason"])


def test_a_range_request_is_no_way_round_a_limit_of_one(
    app: Flask, db: Session, cipher: Cipher
) -> None:
    """Only the same user's recent download may be resumed, forward, a bounded number of
    times: ``Range: bytes=1-`` does not fetch the file again and again."""
    ship = make_shipment(app, db, cipher, download_limit=1)
    client = signed_in(app, ship.recipient)
    colleague = signed_in(app, ship.colleague)
    assert client.get(_url(ship)).status_code == 200  # the one download
    resumed = client.get(_url(ship), headers={"Range": "bytes=1-"})
    assert resumed.status_code == 206 and resumed.get_data() == cipher.data[1:]
    again = client.get(_url(ship), headers={"Range": "bytes=1-"})
    assert again.status_code == 403
    assert "continues after the part already fetched" in again.get_data(as_text=True)
    # another recipient cannot "resume" someone else's download
    theirs = colleague.get(_url(ship), headers={"Range": "bytes=1-"})
    assert theirs.status_code == 403 and "your own download" in theirs.get_data(as_text=True)
    # a bounded number of resumptions
    from portal.packages.downloads import MAX_RESUMPTIONS

    for start in range(2, MAX_RESUMPTIONS + 1):
        assert client.get(_url(ship), headers={"Range": f"bytes={start}-"}).status_code == 206
    many = client.get(_url(ship), headers={"Range": f"bytes={MAX_RESUMPTIONS + 5}-"})
    assert many.status_code == 403 and "resumed" in many.get_data(as_text=True)
    # and not a day later
    for download in db.scalars(select(Download).where(Download.package_id == ship.package_id)):
        download.started_at = utcnow() - timedelta(hours=25)
    db.commit()
    late = client.get(_url(ship), headers={"Range": "bytes=900-"})
    assert late.status_code == 403 and "last 24 hours" in late.get_data(as_text=True)
    assert len(_downloads(db, ship)) == MAX_RESUMPTIONS + 1


def test_two_downloads_at_once_cannot_both_take_the_last_allowed(
    app: Flask, db: Session, cipher: Cipher
) -> None:
    ship = make_shipment(app, db, cipher, download_limit=1)
    sessions = portal_state(app).sessions
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(user_id: int) -> None:
        with sessions() as session:
            package = session.get(Package, ship.package_id)
            user = session.get(User, user_id)
            assert package is not None and user is not None
            barrier.wait()
            try:
                record_download(
                    session, package, user, DownloadPlan(None, len(cipher.data)), address=None
                )
                session.commit()
                outcomes.append("recorded")
            except DownloadRefused:
                session.commit()
                outcomes.append("refused")

    threads = [
        threading.Thread(target=attempt, args=(creds.user_id,))
        for creds in (ship.recipient, ship.colleague)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["recorded", "refused"]
    assert len(_downloads(db, ship)) == 1


def test_a_damaged_package_file_is_refused_before_its_first_byte(
    app: Flask, db: Session, ship: Shipment
) -> None:
    """A flipped bit in the stored ciphertext: 503 naming the damage, no byte of it sent,
    no download recorded, the damage audited and the admins told — not a 200 whose ETag
    claims the registered sha256."""
    admin = make_user(db, "admin")
    client = signed_in(app, ship.recipient)
    assert client.get(_url(ship), headers={"Range": "bytes=0-9"}).status_code == 206
    flip_a_bit(portal_state(app).blobs.path(ship.cipher.sha256))
    portal_state(app).verified.trust_for = 0  # as after the trust period of the last check

    response = client.get(_url(ship))

    assert response.status_code == 503
    assert "stored copy no longer matches" in response.get_data(as_text=True)
    assert ship.cipher.data[:64] not in response.data and "ETag" not in response.headers
    assert _downloads(db, ship) == [(0, 10, ship.recipient.user_id)]
    (event,) = _audit(db, "blob.damaged")
    assert event == {"uses": [f"package {ship.code}"], "found_by": "download"}
    inbox = notifications.inbox(db, db.get_one(User, admin.user_id))
    assert [n.subject for n in inbox] == [
        f"Stored file of package {ship.code} is damaged: restore it from a backup"
    ]
