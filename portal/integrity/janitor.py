"""The janitor: what crashed processes leave behind, removed (and logged) — never anything in
use or referenced.

- **Staging directories** (``data/staging/PKG-…-vN-xxxx``) of every run but the live ones: a
  run is live while its package is "assembling" at that version with a heartbeat (see
  :mod:`portal.packages.assembly.watch`); a worker killed mid-run leaves its partial
  ciphertext there.
- **Blob-store temporaries** (``blobs/tmp/put-*``) older than ``temp_grace`` (a web server or
  worker killed while writing; a live write touches its file continuously).
- **Unreferenced blobs** older than ``blob_grace`` (a worker killed between storing a package
  file and recording it; an import stopped before its commit). Only after a consistency check:
  if the database refers to any blob the store does not have, the store and the database do not
  belong together (a wrong ``PORTAL_DATA_DIR``, a half restore) and no blob is deleted.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from portal.db import aware_utc
from portal.integrity.uses import blob_uses
from portal.packages.assembly.watch import MISSED_BEATS
from portal.packages.models import Package, Recall
from portal.registry.models import Item
from portal.rfa.models import Assurance, Attachment
from portal.state import PortalState

logger = logging.getLogger(__name__)

TEMP_GRACE = timedelta(hours=1)
BLOB_GRACE = timedelta(hours=24)


@dataclass
class Swept:
    """What one sweep removed (names only: codes and digests, never content)."""

    staging: list[str] = field(default_factory=list)
    temporaries: int = 0
    unreferenced: list[str] = field(default_factory=list)
    blobs_kept_because: str | None = None  # why unreferenced blobs were not looked at


def referenced_blobs(db: Session) -> set[str]:
    """Every blob key the database refers to."""
    columns = (
        select(Item.sha256),
        select(Attachment.sha256),
        select(Assurance.sha256).where(Assurance.sha256.is_not(None)),
        select(Package.file_sha256).where(Package.file_sha256.is_not(None)),
        select(Package.signature_sha256).where(Package.signature_sha256.is_not(None)),
        select(Recall.notice_sha256).where(Recall.notice_sha256.is_not(None)),
    )
    return {key for key in db.scalars(select(union(*columns).subquery().c[0])) if key}


def sweep(
    state: PortalState,
    *,
    now: datetime | None = None,
    temp_grace: timedelta = TEMP_GRACE,
    blob_grace: timedelta = BLOB_GRACE,
) -> Swept:
    """Remove what is left behind (see the module notes); what was removed."""
    moment = aware_utc(now)
    swept = Swept()
    with state.sessions() as db:
        swept.staging = _sweep_staging(db, state, moment)
        referenced = referenced_blobs(db)
    swept.temporaries = _sweep_temporaries(state.settings.blob_dir / "tmp", moment, temp_grace)
    stored = set(state.blobs.keys())
    missing = referenced - stored
    if missing:
        swept.blobs_kept_because = (
            f"the database refers to {len(missing)} blob(s) the store does not have; "
            "no unreferenced blob was deleted (check PORTAL_DATA_DIR, or run portal scrub)"
        )
        logger.warning("Janitor: %s", swept.blobs_kept_because)
    else:
        swept.unreferenced = _sweep_unreferenced(state, stored - referenced, moment, blob_grace)
    return swept


def _older_than(path: Path, moment: datetime, grace: timedelta) -> bool:
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return moment.timestamp() - modified >= grace.total_seconds()


_STAGE = re.compile(r"(?P<code>.+)-v(?P<version>[0-9]+)-[0-9a-f]{12}")


def _live_runs(db: Session, moment: datetime, heartbeat: timedelta) -> set[tuple[str, int]]:
    """(code, version) of every run that shows signs of life."""
    rows = db.execute(
        select(Package.code, Package.version).where(
            Package.status == "assembling", Package.updated_at >= moment - heartbeat
        )
    )
    return {(code, int(version)) for code, version in rows}


def _sweep_staging(db: Session, state: PortalState, moment: datetime) -> list[str]:
    root = state.settings.data_dir / "staging"
    if not root.is_dir():
        return []
    silence = timedelta(seconds=MISSED_BEATS * state.settings.worker_heartbeat)
    live = _live_runs(db, moment, silence)
    removed = []
    for stage in sorted(root.iterdir()):
        named = _STAGE.fullmatch(stage.name)
        if named and (named["code"], int(named["version"])) in live:
            continue
        _remove(stage)
        removed.append(stage.name)
    return removed


def remove_stages_of(state: PortalState, code: str, version: int) -> None:
    """Remove the staging directories of run ``version`` of package ``code`` (found dead)."""
    root = state.settings.data_dir / "staging"
    for stage in root.glob(f"{code}-v{version}-*") if root.is_dir() else ():
        if _STAGE.fullmatch(stage.name):
            _remove(stage)


def _remove(stage: Path) -> None:
    if stage.is_dir() and not stage.is_symlink():
        shutil.rmtree(stage, ignore_errors=True)
    else:
        stage.unlink(missing_ok=True)
    logger.info("Janitor: removed the staging directory %s", stage.name)


def _sweep_temporaries(root: Path, moment: datetime, grace: timedelta) -> int:
    if not root.is_dir():
        return 0
    count = 0
    for temporary in root.glob("put-*"):
        if temporary.is_file() and _older_than(temporary, moment, grace):
            temporary.unlink(missing_ok=True)
            count += 1
    if count:
        logger.info("Janitor: removed %d blob-store temporaries", count)
    return count


def _sweep_unreferenced(
    state: PortalState, keys: Iterable[str], moment: datetime, grace: timedelta
) -> list[str]:
    removed = []
    for key in sorted(keys):
        if not _older_than(state.blobs.path(key), moment, grace):
            continue  # an import or assembly may be about to record it
        with state.sessions() as db:  # look again, just before deleting
            if blob_uses(db, key):
                continue
        state.blobs.delete(key)
        logger.info("Janitor: removed the unreferenced blob %s…", key[:12])
        removed.append(key)
    return removed
