"""`portal scrub` through the real command line: every stored blob re-hashed, each damaged one
reported with what uses it, audited and announced to the admins; a limited run goes on from
its checkpoint next time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, select

from portal.audit import AuditEvent
from portal.config import Settings
from portal.db import make_engine, make_session_factory
from portal.integrity.scrub import CHECKPOINT
from portal.notifications.models import Notification
from portal.rfa.models import Attachment
from portal.storage import FileBlobStore
from tests.conftest import DatabaseUnderTest
from tests.support import factories as make
from tests.support.package_world import flip_a_bit

if TYPE_CHECKING:
    from tests.support.cli import Portal

pytest_plugins = ["tests.support.cli"]  # the `portal` fixture

DAMAGED = re.compile(r"^DAMAGED ([0-9a-f]{64}): (.*)$", re.MULTILINE)


@dataclass
class Store:
    blobs: FileBlobStore
    keys: list[str]  # every blob, as the store lists them
    damaged: dict[str, str]  # sha256 -> what the report must say uses it
    admin_id: int


@pytest.fixture
def engine(database: DatabaseUnderTest) -> Iterator[Engine]:
    eng = make_engine(database.url)
    yield eng
    eng.dispose()


@pytest.fixture
def store(portal: Portal, engine: Engine) -> Store:
    """Two items (the second damaged), a request's attachment (damaged), a stray blob."""
    assert portal("init").exit_code == 0
    settings = Settings.from_env(portal.env)
    blobs = FileBlobStore(settings.blob_dir)
    with make_session_factory(engine)() as session:
        provider = make.provider(session)
        sound = blobs.put_bytes(b"A statement that stays sound.\n")
        rotten = blobs.put_bytes(b"AMOUNT: 1000\n")
        attached = blobs.put_bytes(b"%PDF-1.7 a letter of request\n")
        blobs.put_bytes(b"a blob nothing refers to\n")
        make.item(session, provider, sha256=sound.sha256, size_bytes=sound.size)
        item = make.item(session, provider, sha256=rotten.sha256, size_bytes=rotten.size)
        rfa = make.rfa(session, make.authority(session))
        session.add(
            Attachment(
                rfa_id=rfa.id, filename="letter.pdf", media_type="application/pdf",
                size_bytes=attached.size, sha256=attached.sha256,
            )
        )  # fmt: skip
        admin = make.user(session, "admin")
        session.commit()
        damaged = {rotten.sha256: f"item {item.code}", attached.sha256: f"attachment of {rfa.code}"}
        admin_id = admin.id
    for key in damaged:
        flip_a_bit(blobs.path(key))
    return Store(blobs, list(blobs.keys()), damaged, admin_id)


def test_scrub_finds_every_damaged_blob_says_what_uses_it_and_tells_the_admins(
    portal: Portal, store: Store, engine: Engine
) -> None:
    result = portal("scrub")
    assert result.exit_code == 1, result.output
    assert f"Checked {len(store.keys)} blobs" in result.stdout
    assert "the whole store has been checked" in result.stdout
    assert dict(DAMAGED.findall(result.stderr)) == store.damaged
    assert "2 damaged blob(s)" in result.stderr

    with make_session_factory(engine)() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "blob.damaged")
        ).all()
        assert sorted(e.target for e in events) == sorted(f"blob:{k}" for k in store.damaged)
        subjects = session.scalars(
            select(Notification.subject).where(Notification.user_id == store.admin_id)
        ).all()
        assert sorted(subjects) == sorted(
            f"Stored file of {use} is damaged: restore it from a backup"
            for use in store.damaged.values()
        )


def test_a_limited_scrub_goes_on_from_its_checkpoint(portal: Portal, store: Store) -> None:
    checkpoint = Settings.from_env(portal.env).data_dir / CHECKPOINT
    found: dict[str, str] = {}

    first = portal("scrub", "--limit", "2")
    assert "Checked 2 blobs" in first.stdout and "run again to go on" in first.stdout
    assert checkpoint.is_file()
    found.update(DAMAGED.findall(first.stderr))

    rest = portal("scrub")
    assert f"Checked {len(store.keys) - 2} blobs after {store.keys[1][:12]}" in rest.stdout
    assert "the whole store has been checked" in rest.stdout
    found.update(DAMAGED.findall(rest.stderr))
    assert found == store.damaged  # each found once, across the two runs
    assert not checkpoint.exists()
    assert {first.exit_code, rest.exit_code} <= {0, 1} and 1 in {first.exit_code, rest.exit_code}

    again = portal("scrub", "--limit", "1")
    assert "Checked 1 blobs" in again.stdout and " after " not in again.stdout


def test_a_sound_store_passes(portal: Portal, engine: Engine) -> None:
    assert portal("init").exit_code == 0
    FileBlobStore(Settings.from_env(portal.env).blob_dir).put_bytes(b"sound\n")
    result = portal("scrub")
    assert result.exit_code == 0, result.output
    assert "Checked 1 blobs" in result.stdout and "DAMAGED" not in result.stderr
