"""The janitor removes what crashed processes leave behind — and nothing in use or referenced."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from portal.config import Settings
from portal.db import utcnow
from portal.integrity.janitor import BLOB_GRACE, TEMP_GRACE, sweep
from portal.packages.assembly.assemble import stage_name
from portal.packages.assembly.watch import MISSED_BEATS
from portal.packages.models import Package
from portal.state import PortalState, build_state
from tests.support.package_world import make_world, new_package, signing_settings

SILENCE = timedelta(seconds=MISSED_BEATS * Settings.worker_heartbeat)


@pytest.fixture
def state(settings: Settings, engine: Engine) -> Iterator[PortalState]:
    yield build_state(signing_settings(settings), engine=engine)


def _age(path: Path, by: timedelta) -> None:
    then = path.stat().st_mtime - by.total_seconds()
    os.utime(path, (then, then))


def _package(state: PortalState, status: str, idle: timedelta) -> tuple[str, int]:
    package_id = new_package(state, make_world(state))
    with state.sessions() as session:
        package = session.get_one(Package, package_id)
        package.status = status
        session.flush()
        package.updated_at = utcnow() - idle
        session.commit()
        return package.code, package.version


def _stage(state: PortalState, code: str, version: int) -> Path:
    stage = state.settings.data_dir / "staging" / stage_name(code, version, "0123456789ab")
    stage.mkdir(parents=True)
    (stage / f"{code}.tar.gpg").write_bytes(b"partial ciphertext")
    return stage


@pytest.mark.parametrize(
    ("status", "idle", "kept"),
    [
        ("assembling", timedelta(seconds=5), True),  # a live run, with a heartbeat
        ("assembling", SILENCE + timedelta(seconds=1), False),  # its worker died
        ("failed", timedelta(seconds=5), False),
        ("assembled", timedelta(seconds=5), False),
    ],
)
def test_staging_of_dead_assemblies_goes_and_a_live_one_stays(
    state: PortalState, status: str, idle: timedelta, kept: bool
) -> None:
    code, version = _package(state, status, idle)
    stage = _stage(state, code, version)
    earlier = _stage(state, code, version - 1)  # an earlier run of the same package
    stray = _stage(state, "PKG-2026-9999", 1)  # no such package

    swept = sweep(state)

    assert stage.is_dir() is kept
    assert not stray.exists() and not earlier.exists()
    gone = [stray.name, earlier.name] + ([] if kept else [stage.name])
    assert sorted(swept.staging) == sorted(gone)


def test_old_temporaries_and_old_unreferenced_blobs_go(state: PortalState) -> None:
    world = make_world(state)  # its items' blobs are referenced
    referenced = sorted(state.blobs.keys())
    temporaries = state.settings.blob_dir / "tmp"
    temporaries.mkdir(parents=True, exist_ok=True)
    old_temp, new_temp = temporaries / "put-old", temporaries / "put-new"
    old_temp.write_bytes(b"half an upload")
    new_temp.write_bytes(b"an upload going on")
    _age(old_temp, TEMP_GRACE + timedelta(minutes=1))
    orphan = state.blobs.put_bytes(b"stored by a worker killed before it recorded it").sha256
    fresh = state.blobs.put_bytes(b"stored by an import about to commit").sha256
    for key in [orphan, *referenced]:
        _age(state.blobs.path(key), BLOB_GRACE + timedelta(hours=1))
    assert world.items

    swept = sweep(state)

    assert (swept.temporaries, swept.unreferenced) == (1, [orphan])
    assert not old_temp.exists() and new_temp.exists()
    assert sorted(state.blobs.keys()) == sorted([*referenced, fresh])


def test_no_blob_is_deleted_when_the_store_does_not_match_the_database(
    state: PortalState,
) -> None:
    make_world(state)
    gone = sorted(state.blobs.keys())[0]
    state.blobs.delete(gone)  # the database refers to a blob the store lacks
    orphan = state.blobs.put_bytes(b"unreferenced").sha256
    _age(state.blobs.path(orphan), BLOB_GRACE + timedelta(hours=1))

    swept = sweep(state)

    assert swept.unreferenced == []
    assert swept.blobs_kept_because and "refers to 1 blob(s)" in swept.blobs_kept_because
    assert state.blobs.exists(orphan)
