"""Uploads (portal.rfa.uploads) and the request's attachment and assurance pages: type by
content, size limits (ours and Flask's 413), hostile names, downloads, scoping, audit."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from reportlab.pdfgen import canvas
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import audit
from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.notifications import service as notifications
from portal.rfa.models import Assurance, Attachment
from portal.rfa.uploads import (
    NAME_MAX,
    UploadRefused,
    content_disposition,
    display_name,
    sniff,
    store_file,
)
from portal.state import portal_state
from portal.storage import FileBlobStore
from tests.rfa.test_requests_pages import actions, complete, new_draft, post_form, signed_in
from tests.support.auth import Credentials, csrf_token, make_user
from tests.support.package_world import flip_a_bit

pytest_plugins = ["tests.support.auth"]


def pdf_bytes() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "Assurance (fictional)")
    page.save()
    return out.getvalue()


def image_bytes(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format=kind)
    return out.getvalue()


ACCEPTED_FILES = {
    "application/pdf": pdf_bytes,
    "image/png": lambda: image_bytes("PNG"),
    "image/jpeg": lambda: image_bytes("JPEG"),
    "text/plain": lambda: "Note about the request, ünïcödé\n\tindented\r\n".encode(),
}
REFUSED_FILES = {
    "windows executable": b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64,
    "zip / docx": b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64,
    "invalid UTF-8": b"plain start \xff\xfe then junk",
    "text with NUL": b"looks like text\x00but is not",
    "UTF-8 cut mid-character": "abc€".encode()[:-1],
    "html pretending to be text?": None,  # accepted as text/plain: never rendered as HTML
}


# --- names and content (no app) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("a\x00b.pdf", "a b.pdf"),
        ("\u202efdp.exe", "fdp.exe"),
        ("report\u202e\u2066.pdf", "report .pdf"),
        ("  .hidden.txt ", "hidden.txt"),
        ('100% "final".pdf', '100% "final".pdf'),
        ("Cafe\u0301.pdf", "Café.pdf"),
        ("", "upload"),
        ("../", "upload"),
        (None, "upload"),
    ],
)
def test_display_names_are_harmless(raw: str | None, expected: str) -> None:
    assert display_name(raw) == expected


def test_long_names_are_capped_and_keep_their_extension() -> None:
    name = display_name("x" * 300 + ".pdf")
    assert len(name) <= NAME_MAX and name.endswith("….pdf")
    assert len(display_name("y" * 300)) <= NAME_MAX


def test_content_disposition_quotes_nothing_dangerous() -> None:
    value = content_disposition('100% "final"; evil.pdf')
    assert value.startswith('attachment; filename="100 final evil.pdf"; ')
    assert value.endswith("filename*=UTF-8''100%25%20%22final%22%3B%20evil.pdf")


def test_sniff_reads_magic_bytes_not_names() -> None:
    assert sniff(pdf_bytes()[:8]) == "application/pdf"
    assert sniff(image_bytes("PNG")[:8]) == "image/png"
    assert sniff(image_bytes("JPEG")[:8]) == "image/jpeg"
    assert sniff(b"hello") is None


@pytest.mark.parametrize("media_type", sorted(ACCEPTED_FILES))
def test_accepted_types_are_stored(tmp_path: Path, media_type: str) -> None:
    blobs = FileBlobStore(tmp_path)
    data = ACCEPTED_FILES[media_type]()
    # The name says .exe: the content decides.
    stored = store_file(blobs, io.BytesIO(data), "thing.exe", max_bytes=10_000)
    assert stored.media_type == media_type
    assert blobs.read_bytes(stored.sha256) == data
    assert stored.filename == "thing.exe"


class Trickle(io.BytesIO):
    """A stream that hands out one byte per read (magic bytes split across reads)."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(1)


def test_type_is_decided_across_short_reads(tmp_path: Path) -> None:
    stored = store_file(FileBlobStore(tmp_path), Trickle(pdf_bytes()), "a.pdf", max_bytes=10**6)
    assert stored.media_type == "application/pdf"
    with pytest.raises(UploadRefused):
        store_file(FileBlobStore(tmp_path), Trickle(b"abc\xff"), "a.txt", max_bytes=10**6)


@pytest.mark.parametrize("label", [k for k, v in REFUSED_FILES.items() if v is not None])
def test_other_content_is_refused_and_nothing_stored(tmp_path: Path, label: str) -> None:
    blobs = FileBlobStore(tmp_path)
    data = REFUSED_FILES[label]
    assert data is not None
    with pytest.raises(UploadRefused, match="not accepted"):
        store_file(blobs, io.BytesIO(data), "statement.pdf", max_bytes=10_000)
    assert list(blobs.keys()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_too_large_and_empty_are_refused(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    with pytest.raises(UploadRefused, match="larger than the limit of 1 KB"):
        store_file(blobs, io.BytesIO(b"a" * 1025), "big.txt", max_bytes=1024)
    with pytest.raises(UploadRefused, match="empty"):
        store_file(blobs, io.BytesIO(b""), "empty.txt", max_bytes=1024)
    assert list(blobs.keys()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def requester(db: Session) -> Credentials:
    return make_user(db, "requester", authority_code="AUTH-A")


def upload(
    client: FlaskClient,
    code: str,
    data: bytes,
    name: str,
    *,
    url: str = "attachments",
    **extra: str,
) -> TestResponse:
    token = csrf_token(client.get(f"/requests/{code}"))
    field = "document" if url == "assurances" else "file"
    return client.post(
        f"/requests/{code}/{url}",
        data={"csrf_token": token, field: (io.BytesIO(data), name), **extra},
        content_type="multipart/form-data",
    )


def submitted_request(app: Flask, client: FlaskClient) -> str:
    code = new_draft(client, complete(app))
    edit = f"/requests/{code}/edit"
    assert post_form(client, edit, edit, complete(app, action="submit")).status_code == 303
    return code


HOSTILE = {
    "../../etc/passwd": "passwd",
    "a\x00b.pdf": "a b.pdf",
    "\u202efdp.exe": "fdp.exe",
    # (the test client does not escape double quotes in multipart names; browsers send
    # %22, and display_name's own test covers them)
    "Q3 100% 'draft'.txt": "Q3 100% 'draft'.txt",
}


def test_attachments_with_hostile_names(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    for raw, shown in HOSTILE.items():
        response = upload(client, code, b"plain text attachment\n", raw)
        assert response.status_code == 303, response.get_data(as_text=True)
        assert db.scalar(select(Attachment.filename).order_by(Attachment.id.desc())) == shown
    long = upload(client, code, pdf_bytes(), "z" * 300 + ".pdf")
    assert long.status_code == 303
    rows = list(db.scalars(select(Attachment).order_by(Attachment.id)))
    assert len(rows[-1].filename) <= NAME_MAX and rows[-1].media_type == "application/pdf"
    blob_root = portal_state(app).settings.blob_dir
    # Nothing named after the client's file exists on disk; only content-addressed blobs.
    assert {p.name for p in blob_root.rglob("*") if p.is_file()} <= {r.sha256 for r in rows}
    page = client.get(f"/requests/{code}").get_data(as_text=True)
    assert "Q3 100% &#39;draft&#39;.txt" in page and "\u202e" not in page
    assert actions(db, code).count("rfa.attachment.add") == 5
    assert audit.verify(db).ok


def test_download_headers_and_content(app: Flask, db: Session, requester: Credentials) -> None:
    client = signed_in(app, requester)
    code = submitted_request(app, client)
    data = image_bytes("PNG")
    assert upload(client, code, data, "photo of \u202egnp.html").status_code == 303
    attachment = db.scalars(select(Attachment)).one()
    url = f"/requests/{code}/attachments/{attachment.id}"
    response = client.get(url)
    assert response.status_code == 200 and response.data == data
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="photo of ')
    # A legal officer sees it; another authority's requester does not even learn it exists.
    officer = signed_in(app, make_user(db, "legal_officer"))
    assert officer.get(url).status_code == 200
    other = signed_in(app, make_user(db, "requester", authority_code="AUTH-B"))
    assert other.get(url).status_code == 404
    assert client.get(f"/requests/{code}/attachments/{attachment.id + 99}").status_code == 404
    # Each fetch is on the audit record (who, which file), refused ones are not.
    db.expire_all()
    fetched = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "rfa.attachment.download")
        .order_by(AuditEvent.seq)
    ).all()
    assert [event.target for event in fetched] == [f"rfa:{code}", f"rfa:{code}"]
    details = [json.loads(event.details) for event in fetched]
    assert [entry["attachment"] for entry in details] == [attachment.id] * 2
    assert details[0]["sha256"] == attachment.sha256
    assert fetched[0].actor != fetched[1].actor  # the requester, then the officer
    assert audit.verify(db).ok


def test_wrong_type_is_refused_with_a_message(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    response = upload(client, code, b"MZ\x90\x00" + b"\x00" * 100, "statement.pdf")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This type of file is not accepted" in page and "PDF, PNG, JPEG" in page
    assert db.scalars(select(Attachment)).all() == []
    assert "rfa.attachment.add" not in actions(db, code)
    missing = client.post(
        f"/requests/{code}/attachments",
        data={"csrf_token": csrf_token(client.get(f"/requests/{code}"))},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400 and "Choose a file" in missing.get_data(as_text=True)


def test_flask_upload_limit_gives_a_clear_413(
    make_app: Callable[..., Flask], engine: object
) -> None:
    app = make_app(max_upload_bytes=4096)
    with portal_state(app).sessions() as session:
        creds = make_user(session, "requester", authority_code="AUTH-A")
    client = signed_in(app, creds)
    code = new_draft(client, complete(app))
    response = upload(client, code, b"a" * 10_000, "big.txt")
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "at most 4 KB" in page and "Nothing was saved" in page
    with portal_state(app).sessions() as session:
        assert session.scalars(select(Attachment)).all() == []


def test_requests_no_longer_open_take_no_files(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    code = submitted_request(app, client)
    withdraw = client.post(
        f"/requests/{code}/withdraw",
        data={
            "csrf_token": csrf_token(client.get(f"/requests/{code}")),
            "reason": "No longer needed.",
            "confirm": "y",
        },
    )
    assert withdraw.status_code == 303
    token = csrf_token(client.get(f"/requests/{code}"))
    response = client.post(
        f"/requests/{code}/attachments",
        data={"csrf_token": token, "file": (io.BytesIO(b"text"), "a.txt")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "only be added to an open request" in response.get_data(as_text=True)


def test_assurance_is_recorded_downloadable_and_audited(
    app: Flask, db: Session, requester: Credentials
) -> None:
    client = signed_in(app, requester)
    code = submitted_request(app, client)
    bad = upload(
        client, code, pdf_bytes(), "a.pdf", url="assurances", given_by="", given_at="2999-01-01"
    )
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "Enter who gave the assurance" in text and "must not be in the future" in text
    assert db.scalars(select(Assurance)).all() == []

    document = pdf_bytes()
    response = upload(
        client,
        code,
        document,
        "assurance-signed.pdf",
        url="assurances",
        given_by="Ministry of Justice (fictional), Director of International Cooperation",
        given_at="2026-01-15",
        summary="The death penalty will not be sought or imposed.",
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assurance = db.scalars(select(Assurance)).one()
    assert (assurance.kind, assurance.given_at) == ("death_penalty", date(2026, 1, 15))
    assert assurance.filename == "assurance-signed.pdf"
    file = client.get(f"/requests/{code}/assurances/{assurance.id}")
    assert file.status_code == 200 and file.data == document
    assert file.mimetype == "application/pdf"
    assert file.headers["X-Content-Type-Options"] == "nosniff"
    assert "rfa.assurance.add" in actions(db, code)
    assert actions(db, code).count("rfa.assurance.download") == 1
    page = client.get(f"/requests/{code}").get_data(as_text=True)
    assert "Director of International Cooperation" in page

    refused = upload(
        client, code, b"\x00\x01binary", "x.pdf", url="assurances", given_by="X",
        given_at="2026-01-15",
    )  # fmt: skip
    assert refused.status_code == 400 and "not accepted" in refused.get_data(as_text=True)
    assert len(db.scalars(select(Assurance)).all()) == 1


@pytest.fixture
def full_blob_store(app: Flask) -> Iterator[Path]:
    """The app's blob store on a 1 MiB tmpfs (needs the right to mount, as root in CI)."""
    root = portal_state(app).settings.blob_dir
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + mounted.stderr.decode(errors="replace"))
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_a_full_disk_says_so_saves_nothing_and_tells_the_admins(
    app: Flask, db: Session, requester: Credentials, full_blob_store: Path
) -> None:
    admin = make_user(db, "admin")
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))

    response = upload(client, code, b"A long note about the request.\n" * 70_000, "note.txt")

    assert response.status_code == 507, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "storage is full; nothing was saved" in page
    assert db.scalars(select(Attachment)).all() == []
    assert "rfa.attachment.add" not in actions(db, code)
    assert [p for p in full_blob_store.rglob("*") if p.is_file()] == []  # no partial left
    told = notifications.inbox(db, db.get_one(User, admin.user_id))
    assert [n.subject for n in told] == [notifications.STORAGE_FULL]
    # a second failure does not pile up notices the admin has not read yet
    assert upload(client, code, b"x" * 2_000_000, "again.txt").status_code == 507
    db.expire_all()
    assert len(notifications.inbox(db, db.get_one(User, admin.user_id))) == 1


def test_a_damaged_attachment_is_refused_before_its_first_byte(
    app: Flask, db: Session, requester: Credentials
) -> None:
    """The finding: a flipped bit was served 200 with its full length, the mismatch only
    in the server log afterwards. Now: 503, nothing of it sent, audited, admins told."""
    admin = make_user(db, "admin")
    client = signed_in(app, requester)
    code = new_draft(client, complete(app))
    data = b"AMOUNT: 1000\n" * 100
    assert upload(client, code, data, "ledger.txt").status_code == 303
    attachment = db.scalars(select(Attachment)).one()
    flip_a_bit(portal_state(app).blobs.path(attachment.sha256))

    response = client.get(f"/requests/{code}/attachments/{attachment.id}")

    assert response.status_code == 503
    assert b"AMOUNT" not in response.data
    assert "stored copy no longer matches" in response.get_data(as_text=True)
    db.expire_all()
    damaged = db.scalars(select(AuditEvent).where(AuditEvent.action == "blob.damaged")).one()
    assert json.loads(damaged.details)["uses"] == [f"attachment of {code}"]
    told = notifications.inbox(db, db.get_one(User, admin.user_id))
    assert [n.subject for n in told] == [
        f"Stored file of attachment of {code} is damaged: restore it from a backup"
    ]
