"""Recipient keys over real HTTP and real gpg, on both databases: import refusals (each reason
shown, nothing stored), the verification record gate before a key is used, revocation, audit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import utcnow
from portal.registry.keys import (
    MAX_KEY_BYTES,
    KeyActionRefused,
    Verification,
    import_key,
    key_status,
    usable_keys,
    verify_key,
)
from portal.registry.models import RecipientKey
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, csrf_token, login, make_user

pytest_plugins = ["tests.support.auth"]  # fixtures make_app, app, client, db

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "keys_example"
BAD = Path(__file__).resolve().parents[1] / "data" / "keys"
FINGERPRINTS: dict[str, str] = json.loads((KEYS / "fingerprints.json").read_text("utf-8"))
AUTHORITY = "NWU-NL"


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def officer(app: Flask) -> tuple[FlaskClient, Credentials]:
    with portal_state(app).sessions() as session:
        creds = make_user(session, "legal_officer")
        make.authority(session, AUTHORITY, name="Northland War Crimes Unit", country="NL")
        session.commit()
    client = app.test_client()
    login(client, creds)
    return client, creds


@pytest.fixture
def second_officer(app: Flask) -> tuple[FlaskClient, Credentials]:
    """Another legal officer: the one who may verify what the first imported."""
    with portal_state(app).sessions() as session:
        creds = make_user(session, "legal_officer")
    client = app.test_client()
    login(client, creds)
    return client, creds


def _import(client: FlaskClient, *, armored: str = "", upload: bytes | None = None) -> object:
    token = csrf_token(client.get("/keys"))
    data: dict[str, object] = {"csrf_token": token, "authority": AUTHORITY, "armored": armored}
    if upload is not None:
        data["key_file"] = (BytesIO(upload), "key.asc")
    return client.post("/keys", data=data, content_type="multipart/form-data")


def _keys(app: Flask) -> list[RecipientKey]:
    with portal_state(app).sessions() as session:
        return list(session.scalars(select(RecipientKey)))


def _actions(app: Flask) -> list[str]:
    with portal_state(app).sessions() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (BAD / "expired.pub.asc", "this key expired on 2020-12-31"),
        (BAD / "revoked.pub.asc", "this key has been revoked by its owner"),
        (BAD / "rsa2048.pub.asc", "this key uses rsa2048; RSA, DSA and ElGamal keys must have"),
        (BAD / "signonly.pub.asc", "this key has no valid encryption subkey"),
        (KEYS / f"{AUTHORITY}.sec.asc", "this is a secret key; send only the public key"),
        (None, "not an OpenPGP public key"),
    ],
    ids=["expired", "revoked", "rsa2048", "sign-only", "secret", "not-a-key"],
)
def test_import_refusals_show_the_reason_and_store_nothing(
    app: Flask, officer: tuple[FlaskClient, Credentials], source: Path | None, reason: str
) -> None:
    client, _ = officer
    armored = source.read_text("ascii") if source else "Hello, this is not a key."
    response = _import(client, armored=armored)
    assert response.status_code == 400  # type: ignore[attr-defined]
    page = _text(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert f"The key was refused: {reason}" in page
    assert "PRIVATE KEY BLOCK" not in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _keys(app) == []
    assert "key.import" not in _actions(app)


def test_an_oversized_upload_is_refused(
    app: Flask, officer: tuple[FlaskClient, Credentials]
) -> None:
    client, _ = officer
    response = _import(client, upload=b"A" * (MAX_KEY_BYTES + 1))
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "larger than 64 KB" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _keys(app) == []


def test_example_keys_are_refused_outside_demo_or_test(app: Flask) -> None:
    with portal_state(app).sessions() as session:
        creds = make_user(session, "admin")
        authority = make.authority(session, "X-1")
        admin = session.get(User, creds.user_id)
        assert admin is not None
        with pytest.raises(KeyActionRefused, match="fictional example key"):
            import_key(
                session,
                authority,
                (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii"),
                by=admin,
                demo_or_test=False,
            )


def _detail(client: FlaskClient, key_id: int) -> str:
    return client.get(f"/keys/{key_id}").get_data(as_text=True)


def _verify(client: FlaskClient, key_id: int, **fields: str) -> object:
    token = csrf_token(client.get(f"/keys/{key_id}"))
    data = {
        "csrf_token": token,
        "confirmed_by": "Duty officer J. Maas",
        "method": "phone",
        "details": "+31 70 000 0000 from the unit's website",
        "when": utcnow().strftime("%Y-%m-%dT%H:%M"),
        "fingerprint_matches": "yes",
    }
    data.update(fields)
    return client.post(f"/keys/{key_id}/verify", data=data)


def test_a_key_is_used_only_after_its_verification_is_recorded(
    app: Flask,
    officer: tuple[FlaskClient, Credentials],
    second_officer: tuple[FlaskClient, Credentials],
) -> None:
    importer, _ = officer
    client, creds = second_officer
    response = _import(importer, upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes())
    assert response.status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    assert key.fingerprint == FINGERPRINTS[AUTHORITY]
    assert key.imported_by_id == officer[1].user_id
    page = _text(_detail(client, key.id))
    grouped = " ".join(key.fingerprint[i : i + 4] for i in range(0, 20, 4))
    assert grouped in page  # the full fingerprint, in groups of four
    assert "Not verified" in page
    with portal_state(app).sessions() as session:
        assert usable_keys(session, key.authority_id) == []

    # the gate: every part of the record is required
    for fields, message in [
        ({"confirmed_by": "  "}, "Name the person at the authority"),
        ({"method": "email"}, "Choose how the fingerprint was confirmed"),
        ({"fingerprint_matches": ""}, "matches the one on this page"),
        ({"when": "yesterday"}, "Enter when the fingerprint was confirmed"),
        (
            {"when": (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")},
            "cannot be in the future",
        ),
    ]:
        refused = _verify(client, key.id, **fields)
        assert refused.status_code == 400, fields  # type: ignore[attr-defined]
        assert message in _text(refused.get_data(as_text=True))  # type: ignore[attr-defined]
        assert _keys(app)[0].verified_at is None

    done = _verify(client, key.id)
    assert done.status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    assert key.verified_by == "Duty officer J. Maas"
    assert key.verified_by_id == creds.user_id
    assert key.verification_method is not None
    assert key.verification_method.startswith("Phone call")
    assert "+31 70 000 0000" in key.verification_method
    with portal_state(app).sessions() as session:
        assert [k.id for k in usable_keys(session, key.authority_id)] == [key.id]
    assert "Usable" in _text(_detail(client, key.id))
    again = _verify(client, key.id)
    assert "already been verified" in _text(again.get_data(as_text=True))  # type: ignore[attr-defined]

    # revoke: a reason is required, then the key is no longer used
    token = csrf_token(client.get(f"/keys/{key.id}"))
    assert client.post(f"/keys/{key.id}/revoke", data={"csrf_token": token}).status_code == 400
    response = client.post(
        f"/keys/{key.id}/revoke", data={"csrf_token": token, "reason": "Replaced by a new key."}
    )
    assert response.status_code == 303
    with portal_state(app).sessions() as session:
        assert usable_keys(session, key.authority_id) == []
        revoked = session.get(RecipientKey, key.id)
        assert revoked is not None
        assert revoked.revoked_by_id == creds.user_id
        assert revoked.revocation_reason == "Replaced by a new key."
    assert _actions(app)[-3:] == ["key.import", "key.verify", "key.revoke"]

    # the same key again is refused
    duplicate = _import(client, armored=(KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii"))
    assert "already on file" in _text(duplicate.get_data(as_text=True))  # type: ignore[attr-defined]


def test_expiry_is_judged_when_the_key_is_used(db: Session) -> None:
    creds = make_user(db, "legal_officer")
    officer = db.get(User, creds.user_id)
    assert officer is not None
    authority = make.authority(db, "EXP", name="Expiring")
    then = datetime(2020, 6, 1, tzinfo=UTC)
    key = import_key(
        db, authority, (BAD / "expired.pub.asc").read_text("ascii"), by=officer,
        demo_or_test=True, now=then,
    )  # fmt: skip
    other = db.get(User, make_user(db, "legal_officer").user_id)
    assert other is not None
    verify_key(
        db, key, Verification("A. Person", "in_person", then), by=other, now=then,
    )  # fmt: skip
    db.commit()
    assert [k.id for k in usable_keys(db, authority.id, then + timedelta(days=1))] == [key.id]
    assert usable_keys(db, authority.id) == []
    assert key_status(key) == "expired"


def test_other_roles_cannot_reach_the_key_pages(app: Flask) -> None:
    with portal_state(app).sessions() as session:
        recipient = make_user(session, "recipient")
    client = app.test_client()
    login(client, recipient)
    assert client.get("/keys").status_code == 403


# --- four-eyes (issue 18): no one person adds a key evidence is encrypted to ----------------


def test_the_importer_cannot_verify_their_own_key(
    app: Flask, officer: tuple[FlaskClient, Credentials]
) -> None:
    client, _ = officer
    assert _import(client, upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes()).status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    page = _text(_detail(client, key.id))
    assert "You imported this key, so another legal officer must confirm" in page
    refused = _verify(client, key.id)
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert "another legal officer must confirm" in _text(refused.get_data(as_text=True))  # type: ignore[attr-defined]
    assert _keys(app)[0].verified_at is None
    assert "key.verify" not in _actions(app)
    with portal_state(app).sessions() as session:
        assert usable_keys(session, key.authority_id) == []


def test_an_admin_imports_but_only_a_legal_officer_verifies(
    app: Flask, second_officer: tuple[FlaskClient, Credentials]
) -> None:
    with portal_state(app).sessions() as session:
        make.authority(session, AUTHORITY, name="Northland War Crimes Unit", country="NL")
        admin_creds = make_user(session, "admin")
        session.commit()
    admin = app.test_client()
    login(admin, admin_creds)
    assert _import(admin, upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes()).status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    assert _verify(admin, key.id).status_code == 403  # type: ignore[attr-defined]
    assert _keys(app)[0].verified_at is None

    officer_client, officer_creds = second_officer
    assert _verify(officer_client, key.id).status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    assert (key.imported_by_id, key.verified_by_id) == (admin_creds.user_id, officer_creds.user_id)
    with portal_state(app).sessions() as session:
        assert [k.id for k in usable_keys(session, key.authority_id)] == [key.id]


def test_a_legal_officer_alone_cannot_import_and_verify(db: Session) -> None:
    officer = db.get(User, make_user(db, "legal_officer").user_id)
    assert officer is not None
    authority = make.authority(db, AUTHORITY, name="Northland War Crimes Unit")
    key = import_key(
        db, authority, (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii"), by=officer,
        demo_or_test=True,
    )  # fmt: skip
    with pytest.raises(KeyActionRefused, match="You imported this key"):
        verify_key(db, key, Verification("A. Person", "phone", utcnow()), by=officer)
    assert key.verified_at is None


def test_of_two_concurrent_verifications_one_wins(sessions: sessionmaker[Session]) -> None:
    """Two officers load the unverified key; the second to write is refused (not a 500) and
    the first one's record stands."""
    with sessions() as db:
        importer = db.get(User, make_user(db, "admin").user_id)
        assert importer is not None
        first_id = make_user(db, "legal_officer").user_id
        second_id = make_user(db, "legal_officer").user_id
        authority = make.authority(db, AUTHORITY, name="Northland War Crimes Unit")
        key_id = import_key(
            db, authority, (KEYS / f"{AUTHORITY}.pub.asc").read_text("ascii"), by=importer,
            demo_or_test=True,
        ).id  # fmt: skip
        db.commit()
    with sessions() as one, sessions() as two:
        key_one, key_two = one.get(RecipientKey, key_id), two.get(RecipientKey, key_id)
        first, second = one.get(User, first_id), two.get(User, second_id)
        assert key_one is not None and key_two is not None
        assert first is not None and second is not None
        assert key_two.verified_at is None  # loaded before the first verification
        verify_key(one, key_one, Verification("A. Person", "phone", utcnow()), by=first)
        one.commit()
        with pytest.raises(KeyActionRefused, match="already been verified"):
            verify_key(two, key_two, Verification("B. Person", "in_person", utcnow()), by=second)
        two.rollback()
    with sessions() as db:
        stored = db.get(RecipientKey, key_id)
        assert stored is not None
        assert (stored.verified_by, stored.verified_by_id) == ("A. Person", first_id)


def test_a_key_naming_another_organisation_is_flagged_to_the_verifier(
    app: Flask,
    officer: tuple[FlaskClient, Credentials],
    second_officer: tuple[FlaskClient, Credentials],
) -> None:
    """The authority's domains are its accounts' e-mail domains: a key whose user ID is in
    another authority's domain, or an unknown one, is flagged on the verifier's page."""
    with portal_state(app).sessions() as session:
        make_user(session, "requester", authority_code=AUTHORITY, email="jo@nwu.example")
        make_user(session, "recipient", authority_code="ECT", email="kai@authority.example")
        session.commit()
    importer, _ = officer
    assert _import(importer, upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes()).status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    client, _ = second_officer
    page = _text(_detail(client, key.id))
    assert "This key may belong to another organisation" in page
    assert "is in the domain authority.example, which belongs to" in page
    assert "not Northland War Crimes Unit" in page


def test_a_key_in_the_authoritys_own_domain_is_not_flagged(
    app: Flask,
    officer: tuple[FlaskClient, Credentials],
    second_officer: tuple[FlaskClient, Credentials],
) -> None:
    with portal_state(app).sessions() as session:
        make_user(
            session, "requester", authority_code=AUTHORITY, email="nwu.desk@authority.example"
        )
        session.commit()
    importer, _ = officer
    assert _import(importer, upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes()).status_code == 303  # type: ignore[attr-defined]
    (key,) = _keys(app)
    page = _text(_detail(second_officer[0], key.id))
    assert "another organisation" not in page
    assert "nwu@authority.example" in page  # every user ID is shown


def test_the_authoritys_recipients_are_told_when_a_key_is_imported_and_verified(
    app: Flask,
    officer: tuple[FlaskClient, Credentials],
    second_officer: tuple[FlaskClient, Credentials],
) -> None:
    from portal.notifications.models import Notification

    with portal_state(app).sessions() as session:
        recipient = make_user(session, "recipient", authority_code=AUTHORITY)
        elsewhere = make_user(session, "recipient", authority_code="OTHER")
        session.commit()
    assert (
        _import(officer[0], upload=(KEYS / f"{AUTHORITY}.pub.asc").read_bytes()).status_code == 303
    )  # type: ignore[attr-defined]
    (key,) = _keys(app)
    assert _verify(second_officer[0], key.id).status_code == 303  # type: ignore[attr-defined]
    with portal_state(app).sessions() as session:
        told = list(
            session.scalars(
                select(Notification.subject)
                .where(Notification.user_id == recipient.user_id)
                .order_by(Notification.id)
            )
        )
        assert not session.scalars(
            select(Notification).where(Notification.user_id == elsewhere.user_id)
        ).all()
    assert len(told) == 2
    assert "imported (not used until verified)" in told[0] and key.fingerprint in told[0]
    assert "verified and is now used" in told[1]
