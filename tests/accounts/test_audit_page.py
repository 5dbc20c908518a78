"""The admins' audit-log page over real HTTP, on both databases (issue 22): filters, pages,
the streamed CSV export, the chain's verification and checkpoint, and never case content."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditCheck, AuditEvent
from portal.db import utcnow
from portal.registry.models import Authority
from portal.rfa.drafting import post_message
from portal.transparency.models import TransparencyCheckpoint
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client

SECRET_MESSAGE = "Witness Zenobia Fictional hides at the old mill"
SECRET_NOTE = "Decision note: the Fictional unit lied about assurances"


def _signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client


def _world(db: Session) -> tuple[Credentials, Credentials]:
    admin = make_user(db, "admin")
    officer = make_user(db, "legal_officer")
    make_user(db, "requester", authority_code="AUTH-AU")
    authority = db.scalars(select(Authority).where(Authority.code == "AUTH-AU")).one()
    rfa = make.rfa(db, authority, "RFA-2026-0701", summary_of_facts=SECRET_MESSAGE)
    writer = make.stored(db, User, officer.user_id)
    post_message(db, rfa, writer, SECRET_MESSAGE)
    # An event whose details carry text (as a decision's note would): withheld, never shown.
    audit.record(
        db, audit.actor_label(writer), "rfa.decide", "rfa:RFA-2026-0701",
        {"note": SECRET_NOTE, "from": "in_review", "to": "declined", "items": [1, 2, 3],
         "rfa": "RFA-2026-0701", "status": SECRET_NOTE},
    )  # fmt: skip
    db.commit()
    return admin, officer


def test_the_page_shows_who_did_what_to_which_object_never_case_content(
    app: Flask, db: Session
) -> None:
    admin, officer = _world(db)
    client = _signed_in(app, admin)
    response = client.get("/admin/audit")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "rfa.decide" in page and "rfa:RFA-2026-0701" in page and "rfa.message" in page
    assert f"user:{officer.user_id}" in page
    assert "in_review" in page and "3 values" in page  # safe keys, a list as its length
    assert "withheld" in page
    assert SECRET_MESSAGE not in page and "Zenobia" not in page
    assert SECRET_NOTE not in page and "lied" not in page  # even under a safe key: too long

    export = client.get("/admin/audit/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.is_streamed
    body = export.get_data(as_text=True)
    assert "Zenobia" not in body and "lied" not in body
    rows = list(csv.DictReader(io.StringIO(body)))
    decided = [r for r in rows if r["action"] == "rfa.decide"]
    assert decided and decided[0]["target"] == "rfa:RFA-2026-0701"
    assert "from=in_review" in decided[0]["details"] and decided[0]["withheld"] == "2"


def test_filters_by_actor_action_object_and_dates_and_pages(app: Flask, db: Session) -> None:
    admin, officer = _world(db)
    for n in range(60):
        audit.record(db, "system", "package.expire", f"package:PKG-2025-{n + 1:04d}", {"n": n})
    old = audit.record(db, "cli", "user.import", "user:999", {})
    db.commit()
    client = _signed_in(app, admin)

    def rows(**args: str) -> int:
        return (
            client.get("/admin/audit", query_string=args)
            .get_data(as_text=True)
            .count('<th scope="row">')
        )

    by_officer = client.get("/admin/audit", query_string={"actor": f"user:{officer.user_id}"})
    text = by_officer.get_data(as_text=True)
    assert "rfa.decide" in text and "package.expire" not in text
    by_mail = client.get("/admin/audit", query_string={"actor": officer.email})
    assert "rfa.decide" in by_mail.get_data(as_text=True)
    rfa_actions = client.get("/admin/audit", query_string={"action": "rfa"}).get_data(as_text=True)
    assert "rfa.decide" in rfa_actions and "rfa.message" in rfa_actions
    assert "package.expire" not in rfa_actions
    one = client.get("/admin/audit", query_string={"target": "package:PKG-2025-0007"})
    assert one.get_data(as_text=True).count("<code>package:PKG-2025-0007</code>") == 1
    packages = client.get("/admin/audit", query_string={"target": "package:"}).get_data(
        as_text=True
    )
    assert "60 events" in packages and "Page 1 of 2" in packages
    second = client.get("/admin/audit", query_string={"target": "package:", "page": "2"})
    assert "Page 2 of 2" in second.get_data(as_text=True)
    assert rows(target="package:", page="2") == 10

    # Dates: move one event to last year; the date range finds it alone.
    db.execute(
        update(AuditEvent)
        .where(AuditEvent.seq == old.seq)
        .values(occurred_at=utcnow() - timedelta(days=400))
    )
    db.commit()
    day = (utcnow() - timedelta(days=400)).date().isoformat()
    dated = client.get("/admin/audit", query_string={"from": day, "to": day}).get_data(as_text=True)
    assert "user.import" in dated and "1 event," in dated
    bad = client.get("/admin/audit", query_string={"from": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)
    csv_bad = client.get("/admin/audit/export.csv", query_string={"to": "soon"})
    assert csv_bad.status_code == 400
    filtered_csv = client.get("/admin/audit/export.csv", query_string={"action": "user.import"})
    lines = filtered_csv.get_data(as_text=True).strip().splitlines()
    assert len(lines) == 2 and "user.import" in lines[1]


def test_verification_is_recorded_and_a_broken_chain_is_named(app: Flask, db: Session) -> None:
    admin, _ = _world(db)
    client = _signed_in(app, admin)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "Never verified" in page and "No checkpoint signed yet" in page
    token = csrf_token(client.get("/admin/audit"))
    done = client.post("/admin/audit/verify", data={"csrf_token": token})
    assert done.status_code == 303
    check = db.scalars(select(AuditCheck)).one()
    assert check.ok and check.head_seq == check.event_count
    shown = client.get("/admin/audit").get_data(as_text=True)
    assert "Intact" in shown and check.head_hash in shown and "The audit chain is intact" in shown

    # Someone alters an event behind the portal's back: the next verification names it.
    db.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="user:1"))
    db.commit()
    client.post("/admin/audit/verify", data={"csrf_token": csrf_token(client.get("/admin/audit"))})
    broken = client.get("/admin/audit").get_data(as_text=True)
    assert "Broken" in broken and "event 2" in broken
    db.add(
        TransparencyCheckpoint(
            tree_size=2, root_hash="ab" * 32, origin="sharing-portal.invalid/audit-log",
            body="checkpoint", signature="signature", signer_fingerprint="C0FFEE" * 6 + "C0FE",
            signed_at=utcnow(),
        )
    )  # fmt: skip
    db.commit()
    with_checkpoint = client.get("/admin/audit").get_data(as_text=True)
    assert "ab" * 32 in with_checkpoint and "2 events, root" in with_checkpoint
    refused = client.post("/admin/audit/verify", data={})
    assert refused.status_code == 400  # no token: nothing verified
    assert len(db.scalars(select(AuditCheck)).all()) == 2
