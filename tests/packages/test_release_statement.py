"""The signed release statement (issue 20): the release view only queues it, the worker
signs it (``issue_release_statements``), and the recipient downloads it beside the package,
under the same rules as the detached signature. Real gpg, real HTTP via the Flask client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from pytest import MonkeyPatch
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.packages import file_responses
from portal.packages.assembly.jobs import IMMEDIATE_CONFIG, jobs_for
from portal.packages.models import Package
from portal.packages.release_statement import issue_statement
from portal.registry.openpgp import temporary_keyring
from portal.state import portal_state
from portal.verify.release import parse_statement
from tests.support.auth import csrf_token
from tests.support.recipient import (
    SIGNING_FINGERPRINT,
    SIGNING_KEY,
    SIGNING_PASSPHRASE,
    SIGNING_PUBLIC,
    Cipher,
    Shipment,
    make_shipment,
    signed_in,
)

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]

PREPARING = "is being prepared"


def _signed_text(data: bytes) -> str:
    """The statement's signed text, once its signature is good and by the signing key."""
    with temporary_keyring() as gpg:
        gpg.import_keys(SIGNING_PUBLIC.read_text())
        verified = gpg.decrypt(data)
        assert verified.valid, verified.status
        assert str(verified.pubkey_fingerprint).upper() == SIGNING_FINGERPRINT
        return str(verified.data.decode("utf-8"))


def _package(db: Session, ship: Shipment) -> Package:
    db.expire_all()
    package = db.get(Package, ship.package_id)
    assert package is not None
    return package


def test_the_worker_signs_it_and_the_recipient_downloads_it(
    make_app: Callable[..., Flask], db: Session, ship: Shipment
) -> None:
    app = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    recipient = signed_in(app, ship.recipient)
    page = recipient.get(f"/received/{ship.code}").get_data(as_text=True)
    assert PREPARING in page and "release-statement" not in page
    early = recipient.get(f"/received/{ship.code}/release-statement")
    assert early.status_code == 404 and PREPARING in early.get_data(as_text=True)
    assert _package(db, ship).release_statement_sha256 is None  # the web process never signs
    huey = jobs_for(app).huey
    pending = huey.pending()
    assert pending and {task.name for task in pending} == {"issue_release_statements"}
    huey.execute(pending[0])  # what a worker does with it

    package = _package(db, ship)
    assert package.release_statement_sha256 is not None
    page = recipient.get(f"/received/{ship.code}").get_data(as_text=True)
    assert PREPARING not in page and f"/received/{ship.code}/release-statement" in page
    response = recipient.get(f"/received/{ship.code}/release-statement")
    assert response.status_code == 200
    assert f"{ship.code}.tar.gpg.release.asc" in response.headers["Content-Disposition"]
    text = _signed_text(response.data)
    said = parse_statement(text, "").fields
    assembler, releaser = db.get(User, ship.officer.user_id), db.get(User, ship.releaser.user_id)
    assert assembler is not None and releaser is not None
    assert said["Package"] == ship.code
    assert said["Package SHA-256"] == ship.cipher.sha256
    assert said["Assembled by"] == assembler.display_name
    assert said["Released by"] == releaser.display_name
    assert said["Signing key"] == SIGNING_FINGERPRINT
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.target == f"package:{ship.code}")
    ).all()
    assert "package.release_statement_issued" in actions


def test_only_the_authority_s_recipients_get_it(
    make_app: Callable[..., Flask], db: Session, ship: Shipment
) -> None:
    app = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    app.config[IMMEDIATE_CONFIG] = True  # the job runs as the page queues it
    own = signed_in(app, ship.recipient).get(f"/received/{ship.code}/release-statement")
    assert own.status_code == 200 and b"RELEASE STATEMENT" in own.data
    url = f"/received/{ship.code}/release-statement"
    for creds in (ship.other_recipient, ship.officer, ship.provider):
        response = signed_in(app, creds).get(url)
        assert response.status_code in (403, 404), creds
        assert b"RELEASE STATEMENT" not in response.data


def test_releasing_queues_the_statement_and_never_waits_for_it(
    make_app: Callable[..., Flask], db: Session, cipher: Cipher
) -> None:
    app = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    ship = make_shipment(app, db, cipher, status="assembled", code="PKG-2026-0502")
    officer = signed_in(app, ship.releaser)
    page = officer.get(f"/packages/{ship.code}")
    response = officer.post(
        f"/packages/{ship.code}/release",
        data={"csrf_token": csrf_token(page), "reviewed": "yes", "expires_in_days": "30",
              "download_limit": ""},
    )  # fmt: skip
    assert response.status_code == 303, response.get_data(as_text=True)
    package = _package(db, ship)
    assert package.status == "released" and package.release_statement_sha256 is None
    assert "issue_release_statements" in {task.name for task in jobs_for(app).huey.pending()}


def test_two_workers_at_once_keep_the_first_statement_and_drop_the_other(
    make_app: Callable[..., Flask], db: Session, ship: Shipment
) -> None:
    """A worker that read the package before another issued its statement signs its own,
    finds the first stored, keeps that and deletes its own file (portal.packages.signed_once)."""
    app = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    state = portal_state(app)
    moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with state.sessions() as late, state.sessions() as first:
        stale = late.get_one(Package, ship.package_id)  # read before the other worker issues
        assert stale.release_statement_sha256 is None
        kept = issue_statement(state, first, first.get_one(Package, ship.package_id), now=moment)
        first.commit()
        stored = set(state.blobs.keys())
        again = issue_statement(state, late, stale, now=moment + timedelta(minutes=1))
        late.commit()
    assert again == kept == _package(db, ship).release_statement_sha256
    assert set(state.blobs.keys()) == stored  # the late worker's own statement is gone
    issued = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "package.release_statement_issued")
    ).all()
    assert len(issued) == 1 and kept in str(issued[0].details)  # only the first is audited


def test_page_views_ask_the_worker_again_at_most_every_half_minute(
    make_app: Callable[..., Flask], db: Session, ship: Shipment, monkeypatch: MonkeyPatch
) -> None:
    """With the worker down, every view of the package page would queue another job that
    signs the same statements: a page asks at most every 30 s (one job signs them all)."""
    app = make_app(signing_key_file=SIGNING_KEY, signing_passphrase_file=SIGNING_PASSPHRASE)
    recipient = signed_in(app, ship.recipient)
    huey = jobs_for(app).huey
    for _ in range(3):
        assert PREPARING in recipient.get(f"/received/{ship.code}").get_data(as_text=True)
    assert [task.name for task in huey.pending()] == ["issue_release_statements"]
    monkeypatch.setattr(file_responses, "STATEMENTS_ASKED_EVERY", 0.0)  # half a minute later
    recipient.get(f"/received/{ship.code}")
    assert len(huey.pending()) == 2
