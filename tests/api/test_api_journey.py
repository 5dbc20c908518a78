"""The "HTTP client only" journey, on both databases: the portal runs as a real HTTP server
(werkzeug, on a free local port) and docs/api_client_example.py — standard library only,
run as its own process — obtains a token, submits a request, and, once the Mechanism has
released a package for it, downloads it (resuming an interrupted download), checks it and
acknowledges receipt."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.config import REPO_ROOT
from portal.db import utcnow
from portal.eligibility.decisions import run_check
from portal.packages.models import Download, Package
from portal.rfa.models import Rfa
from portal.rfa.status import transition
from portal.state import portal_state
from tests.rfa.test_requests_pages import complete
from tests.support.api import api_client
from tests.support.auth import make_user
from tests.support.recipient import SIGNING_FINGERPRINT, Cipher

pytest_plugins = ["tests.support.auth", "tests.support.recipient"]

SCRIPT = REPO_ROOT / "docs" / "api_client_example.py"


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP; yields the API's base URL."""
    httpd: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/api/v1"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


def run_script(
    base: str, client_id: str, secret: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORTAL_API": base,
        "PORTAL_CLIENT_ID": client_id,
        "PORTAL_CLIENT_SECRET": secret,
    }
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def release_for(app: Flask, db: Session, rfa_code: str, cipher: Cipher) -> str:
    """The Mechanism's side, as its pipeline leaves things: the request approved, checked
    and a package with real ciphertext released to the authority."""
    officer = db.get(User, make_user(db, "legal_officer").user_id)
    releaser = db.get(User, make_user(db, "legal_officer").user_id)
    rfa = db.scalar(select(Rfa).where(Rfa.code == rfa_code))
    assert officer is not None and releaser is not None and rfa is not None
    transition(db, rfa, "in_review", by=officer)
    transition(db, rfa, "approved", by=officer)
    decision = run_check(
        db, rfa, portal_state(app).policy, requested_by=officer, actor=audit.actor_label(officer)
    )
    blobs = portal_state(app).blobs
    now = utcnow()
    package = Package(
        code="PKG-2026-0777",
        rfa_id=rfa.id,
        decision_id=decision.id,
        authority_id=rfa.authority_id,
        status="released",
        stage="done",
        progress=100,
        file_sha256=blobs.put_bytes(cipher.data).sha256,
        file_size=len(cipher.data),
        signature_sha256=blobs.put_bytes(cipher.signature).sha256,
        signer_fingerprint=SIGNING_FINGERPRINT,
        assembled_by_id=officer.id,
        released_by_id=releaser.id,
        released_at=now,
        expires_at=now + timedelta(days=30),
    )
    db.add(package)
    transition(db, rfa, "transmitted", by=None, note="Package PKG-2026-0777 released.")
    db.commit()
    return package.code


def test_http_client_only_journey(
    app: Flask, db: Session, server: str, cipher: Cipher, tmp_path: Path
) -> None:
    api = api_client(app, authority_code="AUTH-A")
    request_file = tmp_path / "request.json"
    entries = {k: v for k, v in complete(app).items() if v != ""}
    request_file.write_text(json.dumps(entries), "utf-8")

    submitted = run_script(server, api.client_id, api.secret, "submit", str(request_file))
    assert submitted.returncode == 0, submitted.stderr
    rfa_code = submitted.stdout.strip()
    assert rfa_code.startswith("RFA-")
    status = run_script(server, api.client_id, api.secret, "status", rfa_code)
    assert status.stdout.strip() == f"{rfa_code}: submitted"

    nothing_yet = run_script(
        server, api.client_id, api.secret, "fetch", rfa_code, "--out", str(tmp_path / "in")
    )
    assert nothing_yet.returncode == 0 and nothing_yet.stdout == ""

    code = release_for(app, db, rfa_code, cipher)
    out = tmp_path / "in"
    partial = out / f"{code}.tar.gpg"
    partial.write_bytes(cipher.data[:100_000])  # an interrupted earlier download
    fetched = run_script(server, api.client_id, api.secret, "fetch", rfa_code, "--out", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == f"{code}: downloaded, checked and acknowledged"
    assert hashlib.sha256(partial.read_bytes()).hexdigest() == cipher.sha256
    assert (out / f"{code}.tar.gpg.sig").read_bytes() == cipher.signature

    db.expire_all()
    assert run_script(server, api.client_id, api.secret, "status", rfa_code).stdout.strip() == (
        f"{rfa_code}: acknowledged"
    )
    package = db.scalar(select(Package).where(Package.code == code))
    assert package is not None and package.acknowledged_at is not None
    downloads = db.scalars(select(Download).where(Download.package_id == package.id)).all()
    assert [(d.range_start, d.client_id) for d in downloads] == [(100_000, api.client_id)]
    actors = set(db.scalars(select(AuditEvent.actor).where(AuditEvent.target == f"package:{code}")))
    assert actors == {f"api:{api.client_id}"}

    wrong = run_script(server, api.client_id, "not-the-secret", "status", rfa_code)
    assert wrong.returncode == 1 and '"invalid_client"' in wrong.stderr
