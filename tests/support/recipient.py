"""A released package for recipient-side tests: real ciphertext and detached signature
(gpg, signed by the example mechanism key and encrypted to the example NWU-NL key) in the
blob store, a Package row set up directly as the officers' pipeline would leave it, the
users around it and a consent the provider can revoke.

Load with ``pytest_plugins = ["tests.support.auth", "tests.support.recipient"]``.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.consent.ledger import grant
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.packages.assembly.gpgstream import (
    Recipient,
    detached_signature,
    load_signer,
    sign_and_encrypt,
)
from portal.packages.models import Package, PackageItem
from portal.registry.models import Authority, Provider
from portal.state import portal_state
from tests.support import factories as make
from tests.support.auth import Credentials, login, make_user

KEYS = Path(__file__).resolve().parents[2] / "keys_example"
SIGNING_KEY = KEYS / "mechanism-signing.sec.asc"
SIGNING_PASSPHRASE = KEYS / "mechanism-signing.passphrase"
SIGNING_PUBLIC = KEYS / "mechanism-signing.pub.asc"
SIGNING_FINGERPRINT = "4DA66F21B774DD004FC8AD4E71CB3574A170734D"
AUTHORITY_KEY = KEYS / "NWU-NL.pub.asc"
AUTHORITY_SECRET = KEYS / "NWU-NL.sec.asc"
AUTHORITY_FINGERPRINT = "A0250D36642C79CB4339C0D7062724629530B911"
#: Plaintext of the test package: big enough for several Range requests.
PLAINTEXT = b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(8192))  # 256 KiB


@dataclass(frozen=True)
class Cipher:
    data: bytes
    sha256: str
    signature: bytes


@pytest.fixture(scope="session")
def cipher() -> Cipher:
    """The package file and its detached signature, made once per test run."""
    signer = load_signer(SIGNING_KEY, SIGNING_PASSPHRASE)
    recipient = Recipient(AUTHORITY_FINGERPRINT, AUTHORITY_KEY.read_text())
    workdir = Path(tempfile.mkdtemp(prefix="pg-b2-"))
    try:
        out = workdir / "package.tar.gpg"

        def write(sink: BinaryIO) -> None:
            sink.write(PLAINTEXT)

        _, digest, _ = sign_and_encrypt(write, [recipient], signer, out)
        signature = detached_signature(out, signer)
        return Cipher(out.read_bytes(), digest, signature)
    finally:
        for child in workdir.iterdir():
            child.unlink()
        os.rmdir(workdir)


@dataclass
class Shipment:
    """Everyone and everything around one package."""

    recipient: Credentials
    colleague: Credentials  # a second recipient of the same authority
    other_recipient: Credentials  # a recipient of another authority
    officer: Credentials
    releaser: Credentials
    provider: Credentials
    authority_id: int
    rfa_id: int
    package_id: int
    code: str
    item_id: int
    consent_id: int
    cipher: Cipher


@pytest.fixture
def ship(app: Flask, db: Session, cipher: Cipher) -> Shipment:
    return make_shipment(app, db, cipher)


def make_shipment(
    app: Flask,
    db: Session,
    cipher: Cipher,
    *,
    status: str = "released",
    expires_at: datetime | None = None,
    download_limit: int | None = None,
    code: str = "PKG-2026-0501",
) -> Shipment:
    """A package of AUTH-A in ``status`` (released by default, 30 days to go)."""
    blobs = portal_state(app).blobs
    file_key = blobs.put_stream(io.BytesIO(cipher.data)).sha256
    sig_key = blobs.put_bytes(cipher.signature).sha256
    recipient = make_user(db, "recipient", authority_code="AUTH-A")
    colleague = make_user(db, "recipient", authority_code="AUTH-A")
    other = make_user(db, "recipient", authority_code="AUTH-B")
    officer = make_user(db, "legal_officer")
    releaser = make_user(db, "legal_officer")
    provider = make_user(db, "provider", provider_code="PRV-A")
    authority = db.scalar(select(Authority).where(Authority.code == "AUTH-A"))
    provider_row = db.scalar(select(Provider).where(Provider.code == "PRV-A"))
    officer_user = db.get(User, officer.user_id)
    provider_user = db.get(User, provider.user_id)
    assert authority is not None and provider_row is not None
    assert officer_user is not None and provider_user is not None
    item = make.item(
        db, provider_row, "ITM-B2-1", title="Statement", original_filename="s.txt", size_bytes=1,
        sha256="1" * 64,
    )  # fmt: skip
    rfa = make.rfa(db, authority, "RFA-2026-0501", status="transmitted", their_reference="A-501")
    (consent,) = grant(db, provider_row, authority, items=[item], by=provider_user)
    decision = run_check(
        db,
        rfa,
        portal_state(app).policy,
        requested_by=officer_user,
        actor=audit.actor_label(officer_user),
    )
    now = utcnow()
    released = status in ("released", "withdrawn", "recalled", "expired")
    package = Package(
        code=code,
        rfa_id=rfa.id,
        decision_id=decision.id,
        authority_id=authority.id,
        status=status,
        stage="done",
        progress=100,
        file_sha256=file_key,
        file_size=len(cipher.data),
        signature_sha256=sig_key,
        signer_fingerprint=SIGNING_FINGERPRINT,
        assembled_by_id=officer.user_id,
        released_by_id=releaser.user_id if released else None,
        released_at=now - timedelta(hours=1) if released else None,
        expires_at=expires_at or (now + timedelta(days=30) if released else None),
        download_limit=download_limit,
    )
    db.add(package)
    db.flush()
    db.add(
        PackageItem(
            package_id=package.id,
            item_id=item.id,
            rendition="as_is",
            path="data/items/ITM-B2-1/s.txt",
            source_sha256="1" * 64,
            consent_id=consent.id,
        )
    )
    db.commit()
    return Shipment(
        recipient=recipient,
        colleague=colleague,
        other_recipient=other,
        officer=officer,
        releaser=releaser,
        provider=provider,
        authority_id=authority.id,
        rfa_id=rfa.id,
        package_id=package.id,
        code=code,
        item_id=item.id,
        consent_id=consent.id,
        cipher=cipher,
    )


def signed_in(app: Flask, creds: Credentials) -> FlaskClient:
    client = app.test_client()
    login(client, creds)
    return client
