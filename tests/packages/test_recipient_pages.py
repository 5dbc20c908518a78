"""The recipient's package pages over real HTTP, on both databases: the list and the package
page (scoped to the authority), and the acknowledgement of receipt (only after a download,
once, with the request moving to acknowledged, audited, the legal officers notified)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from flask import Flask
from sqlalchemy import event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.notifications.models import Notification
from portal.packages.models import Package
from portal.rfa.models import Rfa, RfaStatusChange
from tests.support.auth import csrf_token
from tests.support.recipient import Cipher, Shipment, make_shipment, signed_in

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]


def _ack(client_page: str) -> dict[str, str]:
    return {"csrf_token": client_page, "confirm": "yes"}


def test_list_and_detail_show_the_authoritys_released_packages(
    app: Flask, db: Session, ship: Shipment
) -> None:
    client = signed_in(app, ship.recipient)
    listing = client.get("/received").get_data(as_text=True)
    assert ship.code in listing and "Available" in listing and "Not yet acknowledged" in listing
    page = client.get(f"/received/{ship.code}").get_data(as_text=True)
    assert ship.cipher.sha256 in page
    assert "4DA6 6F21 B774 DD00 4FC8" in page  # signing key fingerprint, grouped
    assert f"/received/{ship.code}/download" in page
    assert "once the package has been downloaded" in page
    other = signed_in(app, ship.other_recipient)
    assert ship.code not in other.get("/received").get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/received"' in home and 'href="/received/recalls"' in home


def test_acknowledge_receipt_after_download(app: Flask, db: Session, ship: Shipment) -> None:
    client = signed_in(app, ship.recipient)
    url = f"/received/{ship.code}/acknowledge"
    token = csrf_token(client.get(f"/received/{ship.code}"))
    early = client.post(url, data=_ack(token), follow_redirects=True)
    assert "Download the package before acknowledging" in early.get_data(as_text=True)
    assert client.get(f"/received/{ship.code}/download").status_code == 200
    unticked = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "Tick the box to confirm receipt" in unticked.get_data(as_text=True)
    db.expire_all()
    package = db.get(Package, ship.package_id)
    assert package is not None and package.acknowledged_at is None

    done = client.post(url, data=_ack(token), follow_redirects=True)
    assert f"Receipt of {ship.code} acknowledged" in done.get_data(as_text=True)
    db.expire_all()
    package = db.get(Package, ship.package_id)
    rfa = db.get(Rfa, ship.rfa_id)
    assert package is not None and rfa is not None
    assert package.acknowledged_at is not None
    assert package.acknowledged_by_id == ship.recipient.user_id
    assert rfa.status == "acknowledged"
    change = db.scalar(select(RfaStatusChange).where(RfaStatusChange.rfa_id == rfa.id))
    assert change is not None and change.changed_by_id == ship.recipient.user_id
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "package.acknowledged")).all()
    assert [json.loads(e.details) for e in events] == [{"rfa_acknowledged": True}]
    told = {
        n.user_id
        for n in db.scalars(select(Notification).where(Notification.subject.contains(ship.code)))
    }
    assert {ship.officer.user_id, ship.releaser.user_id} <= told

    colleague = signed_in(app, ship.colleague)
    again = colleague.post(
        url,
        data=_ack(csrf_token(colleague.get(f"/received/{ship.code}"))),
        follow_redirects=True,
    )
    assert "already acknowledged" in again.get_data(as_text=True)
    db.expire_all()
    package = db.get(Package, ship.package_id)
    assert package is not None and package.acknowledged_by_id == ship.recipient.user_id


def test_acknowledge_refused_for_others_and_without_csrf(
    app: Flask, db: Session, ship: Shipment
) -> None:
    url = f"/received/{ship.code}/acknowledge"
    other = signed_in(app, ship.other_recipient)
    token = csrf_token(other.get("/received"))
    assert other.post(url, data=_ack(token)).status_code == 404
    client = signed_in(app, ship.recipient)
    client.get(f"/received/{ship.code}/download")
    forged = client.post(url, data={"confirm": "yes"})
    assert forged.status_code == 400 and "Form expired" in forged.get_data(as_text=True)
    db.expire_all()
    package = db.get(Package, ship.package_id)
    assert package is not None and package.acknowledged_at is None


def test_withdrawn_package_page_shows_the_reason_and_no_download(
    app: Flask, db: Session, cipher: Cipher
) -> None:
    ship = make_shipment(app, db, cipher, status="withdrawn")
    client = signed_in(app, ship.recipient)
    page = client.get(f"/received/{ship.code}").get_data(as_text=True)
    assert "withdrew its consent" in page
    assert f"/received/{ship.code}/download" not in page
    assert "Withdrawn" in client.get("/received").get_data(as_text=True)


def test_the_list_is_paged_newest_release_first(app: Flask, db: Session, ship: Shipment) -> None:
    """An authority receives hundreds of packages over the years: 25 a page, the newest
    release first, with a pager that keeps the order across pages."""
    template = db.get(Package, ship.package_id)
    assert template is not None
    base = template.released_at
    assert base is not None
    copied = {
        key: getattr(template, key)
        for key in (attr.key for attr in sa_inspect(Package).column_attrs)
        if key not in ("id", "code", "released_at")
    }
    for n in range(30):  # released one minute apart after the shipment's package
        db.add(
            Package(
                **copied,
                code=f"PKG-2026-{600 + n:04d}",
                released_at=base + timedelta(minutes=n + 1),
            )
        )
    db.commit()
    client = signed_in(app, ship.recipient)
    newest_first = [f"PKG-2026-{600 + n:04d}" for n in reversed(range(30))] + [ship.code]

    first = client.get("/received").get_data(as_text=True)
    assert [code for code in newest_first if f"<code>{code}</code>" in first] == newest_first[:25]
    assert "Page 1 of 2" in first and 'href="/received?page=2"' in first
    second = client.get("/received?page=2").get_data(as_text=True)
    assert [code for code in newest_first if f"<code>{code}</code>" in second] == newest_first[25:]
    assert first.index(newest_first[0]) < first.index(newest_first[1])  # order within a page
    assert 'href="/received?page=1"' in second and "page=3" not in second
    # a page past the end shows the last page; a malformed number the first
    assert newest_first[-1] in client.get("/received?page=99").get_data(as_text=True)
    assert newest_first[0] in client.get("/received?page=x").get_data(as_text=True)


def test_a_package_never_recalled_is_shown_without_lookups_by_empty_id_lists(
    app: Flask, db: Session, ship: Shipment
) -> None:
    """The recalls block of a package never recalled costs one statement, not three (the
    recalls' packages and acknowledgers looked up by empty id lists)."""
    client = signed_in(app, ship.recipient)
    engine = db.get_bind()
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = client.get(f"/received/{ship.code}")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert page.status_code == 200 and statements
    empty = [s for s in statements if re.search(r"1\s*!=\s*1", s)]
    assert empty == []
