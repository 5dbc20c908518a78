"""The issue's "done when", through the real `portal` command line:
`portal init && portal demo && portal audit verify`, tampering detected, bad bundles refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.db import make_engine
from portal.registry.models import Item, Provider
from tests.conftest import DatabaseUnderTest
from tests.shell.test_audit_append_only import allow_audit_tampering
from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)
    yield eng
    eng.dispose()


def test_init_demo_verify_and_tamper(portal: Portal, engine: Engine) -> None:
    assert portal("init").exit_code == 0
    demo = portal("demo")
    assert demo.exit_code == 0, demo.output
    assert "otpauth://totp/" in demo.output
    saved = json.loads((Path(portal.env["PORTAL_INSTANCE_DIR"]) / "demo_logins.json").read_text())
    assert len(saved["logins"]) >= 5
    for email, secrets in saved["logins"].items():
        assert email in demo.output
        assert secrets["password"] in demo.output
        assert f"secret={secrets['totp_secret']}" in demo.output
    for role in ("admin", "legal_officer", "provider", "requester", "recipient"):
        assert role in demo.output

    verified = portal("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output

    with engine.connect() as conn:
        users_before = conn.scalar(select(func.count()).select_from(User))
    again = portal("demo")
    assert again.exit_code == 0, again.output
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == users_before

    head = portal("audit", "head").output.strip()
    assert portal("audit", "verify", "--anchor", head).exit_code == 0

    with engine.begin() as conn:
        allow_audit_tampering(conn)  # as a database superuser could (migration 0007)
        conn.execute(
            text("UPDATE audit_event SET actor = 'someone else' WHERE seq = 3"),
        )
    broken = portal("audit", "verify")
    assert broken.exit_code == 1
    assert "event 3" in broken.output


def test_tail_deletion_is_caught_with_a_published_head(portal: Portal, engine: Engine) -> None:
    portal("init")
    portal("demo")
    head = portal("audit", "head").output.strip()
    with engine.begin() as conn:
        last = conn.scalar(select(func.max(AuditEvent.seq)))
        allow_audit_tampering(conn)  # as a database superuser could (migration 0007)
        conn.execute(text("DELETE FROM audit_event WHERE seq = :seq"), {"seq": last})
    assert portal("audit", "verify").exit_code == 0  # without an anchor: the documented limit
    cut = portal("audit", "verify", "--anchor", head)
    assert cut.exit_code == 1
    assert f"event {last}" in cut.output
    assert portal("audit", "verify", "--anchor", "nonsense").exit_code == 2


def test_bad_bundle_is_refused_with_every_line_and_nothing_changes(
    portal: Portal, engine: Engine, tmp_path: Path
) -> None:
    portal("init")
    files = tmp_path / "files"
    (files / "items").mkdir(parents=True)
    (files / "items" / "note.txt").write_bytes(b"fictional note\n")
    (tmp_path / "outside.txt").write_bytes(b"outside\n")
    lines = [
        {"type": "provider", "code": "PRV-X", "name": "X", "kind": "ngo", "public_name": "X"},
        {"type": "spaceship", "code": "S-1"},
        {
            "type": "item",
            "code": "ITM-1",
            "provider": "PRV-X",
            "kind": "document",
            "title": "Note",
            "media_type": "text/plain",
            "file": "items/note.txt",
            "sha256": "0" * 64,
            "sensitivity": "low",
        },
        {
            "type": "item",
            "code": "ITM-2",
            "provider": "PRV-NOPE",
            "kind": "document",
            "title": "Outside",
            "media_type": "text/plain",
            "file": "../outside.txt",
            "sha256": "1" * 64,
            "sensitivity": "low",
        },
        {"type": "provider", "code": "PRV-X", "name": "X", "kind": "ngo", "public_name": "X"},
    ]
    bundle = tmp_path / "bad.jsonl"
    bundle.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n")

    def snapshot() -> tuple[int, int, int]:
        with engine.connect() as conn:
            return (
                conn.scalar(select(func.count()).select_from(Provider)) or 0,
                conn.scalar(select(func.count()).select_from(Item)) or 0,
                conn.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            )

    before = snapshot()
    result = portal("import", str(bundle), "--files", str(files))
    assert result.exit_code == 1
    for line_number in (2, 3, 4, 5, 6):
        assert f"line {line_number}:" in result.output, result.output
    assert "line 1:" not in result.output
    assert snapshot() == before
    blob_dir = Path(portal.env["PORTAL_INSTANCE_DIR"]) / "data" / "blobs"
    assert not [p for p in blob_dir.rglob("*") if p.is_file()]
