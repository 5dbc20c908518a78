"""`portal package export PKG DIR` through the real command line, on both databases: the
three files land in DIR with the stored bytes (the signature verifies with gpg over the
exported ciphertext), the cover sheet names the package, authority, digests and signing
key; unreleased packages and existing files are refused with nothing written; audited."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import AuditEvent
from portal.config import Settings, ensure_secret_key
from portal.packages.assembly.gpgstream import verify_detached
from portal.packages.models import Package
from portal.state import portal_state
from tests.support.cli import Portal
from tests.support.recipient import (
    SIGNING_FINGERPRINT,
    SIGNING_PUBLIC,
    Cipher,
    Shipment,
    make_shipment,
)

pytest_plugins = ["tests.support.auth", "tests.support.recipient", "tests.support.cli"]


@pytest.fixture(autouse=True)
def _secret_key(settings: Settings) -> None:
    """The command line refuses to start without the instance's secret key."""
    ensure_secret_key(settings)


def _names(code: str) -> list[str]:
    return [f"{code}.tar.gpg", f"{code}.tar.gpg.sig", f"{code}-cover-sheet.txt"]


def test_export_writes_package_signature_and_cover_sheet(
    portal: Portal, db: Session, ship: Shipment, tmp_path: Path
) -> None:
    out = tmp_path / "usb"
    out.mkdir()
    result = portal("package", "export", ship.code, str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(_names(ship.code))
    cipher_file, sig_file, cover_file = (out / n for n in _names(ship.code))
    assert cipher_file.read_bytes() == ship.cipher.data
    assert sig_file.read_bytes() == ship.cipher.signature
    verify_detached(
        cipher_file, sig_file.read_bytes(), SIGNING_PUBLIC.read_text(), SIGNING_FINGERPRINT
    )
    cover = cover_file.read_text()
    assert ship.code in cover and "Test authority AUTH-A" in cover and "RFA-2026-0501" in cover
    assert ship.cipher.sha256 in cover
    assert hashlib.sha256(ship.cipher.signature).hexdigest() in cover
    assert "4DA6 6F21 B774 DD00 4FC8 AD4E 71CB 3574 A170 734D" in cover
    assert f"gpg --verify {ship.code}.tar.gpg.sig {ship.code}.tar.gpg" in cover
    bound = cipher_file.stat().st_size + 1024 * 1024  # decryption never writes more
    assert f"gpg --max-output {bound} --output {ship.code}.tar --decrypt" in cover
    assert ship.cipher.sha256 in result.output
    (event,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "package.exported"))
    details = json.loads(event.details)
    assert event.actor == "cli" and event.target == f"package:{ship.code}"
    assert details["files"][f"{ship.code}.tar.gpg"] == ship.cipher.sha256


def test_export_never_overwrites(
    portal: Portal, db: Session, ship: Shipment, tmp_path: Path
) -> None:
    out = tmp_path / "usb"
    out.mkdir()
    (out / f"{ship.code}.tar.gpg.sig").write_text("keep me")
    result = portal("package", "export", ship.code, str(out))
    assert result.exit_code == 1
    assert "already in" in result.output and "nothing was overwritten" in result.output
    assert [p.name for p in out.iterdir()] == [f"{ship.code}.tar.gpg.sig"]
    assert (out / f"{ship.code}.tar.gpg.sig").read_text() == "keep me"
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "package.exported")).all() == []


@pytest.mark.parametrize("status", ["assembled", "withdrawn", "recalled"])
def test_export_refuses_packages_not_released(
    portal: Portal, app: Flask, db: Session, cipher: Cipher, tmp_path: Path, status: str
) -> None:
    ship = make_shipment(app, db, cipher, status=status)
    out = tmp_path / "usb"
    out.mkdir()
    result = portal("package", "export", ship.code, str(out))
    assert result.exit_code == 1
    assert f"{ship.code} is {status}, not released" in result.output
    assert list(out.iterdir()) == []


def test_export_refuses_a_damaged_blob_and_leaves_nothing(
    portal: Portal, app: Flask, db: Session, ship: Shipment, tmp_path: Path
) -> None:
    package = db.get(Package, ship.package_id)
    assert package is not None and package.signature_sha256 is not None
    stored = portal_state(app).blobs.path(package.signature_sha256)
    stored.write_bytes(b"tampered")
    out = tmp_path / "usb"
    out.mkdir()
    result = portal("package", "export", ship.code, str(out))
    assert result.exit_code == 1 and "does not match its digest" in result.output
    assert list(out.iterdir()) == []
    missing = portal("package", "export", "PKG-2026-9999", str(out))
    assert missing.exit_code == 1 and "there is no package PKG-2026-9999" in missing.output
    not_a_dir = portal("package", "export", ship.code, str(tmp_path / "nowhere"))
    assert not_a_dir.exit_code == 1 and "not an existing directory" in not_a_dir.output
