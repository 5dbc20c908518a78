"""`portal keys rotate-signing` through the real command line, real gpg and the database: the
transition statement signed by both keys, the history, the key files, the notice to recipients,
the public page and files (no sign-in), and which key the worker signs with afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from portal import create_app
from portal.audit import AuditEvent
from portal.config import Settings
from portal.notifications.models import Notification
from portal.registry.models import SigningKey
from portal.registry.openpgp import temporary_keyring
from portal.registry.signing_keys import SigningKeyError, load_mechanism_signer
from portal.verify.transition import read_transition
from tests.conftest import DatabaseUnderTest
from tests.support import factories
from tests.support.cli import Portal
from tests.support.packages import KEYS, SENDER_FPR

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture


@pytest.fixture
def signing_portal(portal: Portal) -> Portal:
    portal.env["PORTAL_SIGNING_KEY"] = str(KEYS / "mechanism-signing.sec.asc")
    portal.env["PORTAL_SIGNING_PASSPHRASE_FILE"] = str(KEYS / "mechanism-signing.passphrase")
    return portal


def test_rotation_end_to_end(
    signing_portal: Portal, database: DatabaseUnderTest, tmp_path: Path
) -> None:
    portal = signing_portal
    init = portal("init")
    assert init.exit_code == 0, init.output
    assert f"Recorded signing key {SENDER_FPR}" in init.output
    engine = create_engine(database.url)
    sessions = sessionmaker(engine)
    with sessions.begin() as db:
        authority = factories.authority(db)
        recipient = factories.user(db, "recipient", authority=authority)
        officer = factories.user(db, "legal_officer")
        recipient_id, officer_id = recipient.id, officer.id

    done = portal("keys", "rotate-signing", "--reason", "scheduled rotation")
    assert done.exit_code == 0, done.output
    assert "1 recipient(s) notified" in done.output
    settings = Settings.from_env(portal.env)
    with sessions() as db:
        rows = list(db.scalars(select(SigningKey).order_by(SigningKey.id)))
        assert rows[0].fingerprint == SENDER_FPR
        old, new = rows
        assert old.active_until == new.active_from and new.active_until is None
        assert new.transition_statement and new.transition_signature
        statement = json.loads(new.transition_statement)
        assert statement["old_fingerprint"] == SENDER_FPR
        assert statement["new_fingerprint"] == new.fingerprint
        assert statement["reason"] == "scheduled rotation"
        notes = list(db.scalars(select(Notification)))
        assert [n.user_id for n in notes] == [recipient_id] and officer_id != recipient_id
        assert new.fingerprint[:4] in notes[0].subject and notes[0].link == "/signing-key"
        assert "signing_key.rotated" in db.scalars(select(AuditEvent.action)).all()
        # The worker signs with the new key although PORTAL_SIGNING_KEY still names the old.
        assert load_mechanism_signer(settings, db).fingerprint == new.fingerprint
        new_fpr = new.fingerprint
    key_file = settings.instance_dir / "signing-keys" / f"{new_fpr}.sec.asc"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (key_file.parent).stat().st_mode & 0o777 == 0o700

    # The public page and files, without signing in: they carry the statement, which checks.
    app = create_app(settings.with_overrides(testing=True, demo=False))
    client = app.test_client()
    page = client.get("/signing-key")
    assert page.status_code == 200
    grouped = " ".join(new_fpr[i : i + 4] for i in range(0, 40, 4))
    assert grouped in page.get_data(as_text=True)
    key = client.get("/.well-known/sharing-portal-signing-key.asc")
    assert key.status_code == 200 and b"BEGIN PGP PUBLIC KEY BLOCK" in key.data
    assert b"PRIVATE" not in key.data
    listed = client.get("/.well-known/sharing-portal-signing-keys.json").get_json()["keys"]
    assert [k["fingerprint"] for k in listed] == [SENDER_FPR, new_fpr]
    transition = listed[1]["transition"]
    statement_file = tmp_path / "t.json"
    statement_file.write_bytes(client.get(transition["statement"]).data)
    Path(f"{statement_file}.asc").write_bytes(client.get(transition["signatures"]).data)
    with temporary_keyring() as gpg:
        gpg.import_keys((KEYS / "mechanism-signing.pub.asc").read_text())
        gpg.import_keys(key.get_data(as_text=True))
        checked = read_transition(gpg, statement_file)
    assert (checked.old, checked.new) == (SENDER_FPR, new_fpr)

    # A worker machine without the new key's file refuses to sign, and says where it belongs.
    shutil.move(key_file, tmp_path / "elsewhere.asc")
    with sessions() as db, pytest.raises(SigningKeyError, match="signing-keys"):
        load_mechanism_signer(settings, db)
    engine.dispose()


def test_rotation_refuses_a_key_that_signed_before(
    signing_portal: Portal, database: DatabaseUnderTest
) -> None:
    assert signing_portal("init").exit_code == 0
    again = signing_portal(
        "keys", "rotate-signing", "--reason", "x",
        "--import", str(KEYS / "mechanism-signing.sec.asc"),
        "--import-passphrase-file", str(KEYS / "mechanism-signing.passphrase"),
    )  # fmt: skip
    assert again.exit_code != 0
    assert "nothing was changed" in again.output and "has signed before" in again.output
    engine = create_engine(database.url)
    with sessionmaker(engine)() as db:
        assert len(db.scalars(select(SigningKey)).all()) == 1
    engine.dispose()


SIGNING_DATA = Path(__file__).resolve().parents[1] / "data" / "signing"


def test_a_retired_key_is_revoked_and_the_revocation_published(
    signing_portal: Portal, database: DatabaseUnderTest, tmp_path: Path
) -> None:
    """`portal keys revoke-signing`: only a retired key, only with its own revocation
    certificate, once; the public key served afterwards carries the revocation."""
    portal = signing_portal
    assert portal("init").exit_code == 0
    retired_fpr = (SIGNING_DATA / "revoked-signer.fingerprint").read_text("ascii").strip()
    for name in ("revoked-signer", "successor"):
        done = portal(
            "keys", "rotate-signing", "--reason", f"to {name}",
            "--import", str(SIGNING_DATA / f"{name}.sec.asc"),
        )  # fmt: skip
        assert done.exit_code == 0, done.output
    current_fpr = (SIGNING_DATA / "successor.fingerprint").read_text("ascii").strip()
    certificate = str(SIGNING_DATA / "revoked-signer.rev")

    current = portal(
        "keys", "revoke-signing", current_fpr, "--certificate", certificate, "--reason", "x"
    )  # fmt: skip
    assert current.exit_code != 0 and "rotate to a new key first" in current.output
    not_a_certificate = portal(
        "keys", "revoke-signing", SENDER_FPR,
        "--certificate", str(KEYS / "mechanism-signing.pub.asc"), "--reason", "x",
    )  # fmt: skip
    assert not_a_certificate.exit_code != 0
    assert "not a revocation certificate" in not_a_certificate.output
    someone_elses = portal(  # the right file, for another key
        "keys", "revoke-signing", SENDER_FPR, "--certificate", certificate, "--reason", "x"
    )  # fmt: skip
    assert someone_elses.exit_code != 0 and "nothing was changed" in someone_elses.output

    revoked = portal(
        "keys", "revoke-signing", retired_fpr, "--certificate", certificate,
        "--reason", "key compromised",
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    again = portal(
        "keys", "revoke-signing", retired_fpr, "--certificate", certificate, "--reason", "x"
    )  # fmt: skip
    assert again.exit_code != 0 and "was revoked on" in again.output

    engine = create_engine(database.url)
    with sessionmaker(engine)() as db:
        rows = {row.fingerprint: row for row in db.scalars(select(SigningKey))}
        assert [fpr for fpr, row in rows.items() if row.revoked_at is not None] == [retired_fpr]
        assert rows[retired_fpr].revocation_reason == "key compromised"
        assert db.scalars(
            select(AuditEvent.target).where(AuditEvent.action == "signing_key.revoked")
        ).all() == [retired_fpr]
    engine.dispose()

    settings = Settings.from_env(portal.env)
    client = create_app(settings.with_overrides(testing=True, demo=False)).test_client()
    listed = client.get("/.well-known/sharing-portal-signing-keys.json").get_json()["keys"]
    entry = next(k for k in listed if k["fingerprint"] == retired_fpr)
    assert entry["revoked_at"] and entry["revocation_reason"] == "key compromised"
    published = client.get(entry["public_key"]).get_data(as_text=True)
    with temporary_keyring() as gpg:  # a recipient importing it sees the key revoked
        gpg.import_keys(published)
        (key,) = [k for k in gpg.list_keys() if k["fingerprint"] == retired_fpr]
        assert key["trust"] == "r"
