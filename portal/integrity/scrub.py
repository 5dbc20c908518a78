"""``portal scrub``: re-hash every blob in the store and report each damaged one with what
uses it.

Resumable: the keys are visited in sorted order and the last one checked is kept in a small
checkpoint file beside the store, so a run stopped (or limited with ``limit``) goes on from
there next time; a finished pass removes the checkpoint. Each damaged blob is recorded when
it is found (see :mod:`portal.integrity.damage`), so nothing is lost if a run stops.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.audit import AuditEvent
from portal.db import transaction
from portal.integrity.damage import record_damage
from portal.integrity.uses import blob_uses
from portal.state import PortalState
from portal.storage import BlobNotFound, DigestMismatch

CHECKPOINT = "scrub.checkpoint.json"
PASSED = "blobs.scrubbed"  # audit action of a pass that reached the end of the store
_SAVE_EVERY = 2.0  # seconds between checkpoint writes


@dataclass(frozen=True)
class Damaged:
    sha256: str
    uses: tuple[str, ...]


@dataclass
class ScrubReport:
    checked: int = 0
    bytes_read: int = 0
    damaged: list[Damaged] = field(default_factory=list)
    resumed_after: str | None = None  # the key the run went on from
    finished: bool = False  # the pass reached the end of the store


Progress = Callable[[ScrubReport, str], None]


def checkpoint_path(state: PortalState) -> Path:
    return state.settings.data_dir / CHECKPOINT


def _load_checkpoint(path: Path) -> str | None:
    try:
        last = json.loads(path.read_text(encoding="utf-8")).get("last")
    except (OSError, ValueError, AttributeError):
        return None
    return last if isinstance(last, str) else None


def _save_checkpoint(path: Path, last: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"last": last}), encoding="utf-8")
    os.replace(temporary, path)


def scrub(
    state: PortalState,
    *,
    restart: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
) -> ScrubReport:
    """Check up to ``limit`` blobs (None: all that are left), from the checkpoint unless
    ``restart``. ``progress`` is called after each blob with the report and its key."""
    checkpoint = checkpoint_path(state)
    after = None if restart else _load_checkpoint(checkpoint)
    report = ScrubReport(resumed_after=after)
    saved_at = time.monotonic()
    last: str | None = None
    stored = state.blobs.keys()  # sorted, lazily
    for key in stored:
        if after is not None and key <= after:
            continue
        if limit is not None and report.checked >= limit:
            break
        try:
            state.blobs.verify(key)
        except DigestMismatch:
            _record(state, report, key)
        except BlobNotFound:  # deleted while we walked: nothing to check
            pass
        else:
            report.bytes_read += state.blobs.size(key)
        report.checked += 1
        last = key
        if progress is not None:
            progress(report, key)
        if time.monotonic() - saved_at >= _SAVE_EVERY:
            _save_checkpoint(checkpoint, key)
            saved_at = time.monotonic()
    else:
        report.finished = True
    if report.finished:
        checkpoint.unlink(missing_ok=True)
        _record_pass(state, report)
    elif last is not None:
        _save_checkpoint(checkpoint, last)
    return report


def _record_pass(state: PortalState, report: ScrubReport) -> None:
    """A pass reached the end of the store: audited, so that a clean one clears the readiness
    check's "damaged files" (see :func:`last_clean_scrub`)."""
    with transaction(state.sessions) as db:
        audit.record(
            db,
            audit.SYSTEM_ACTOR,
            PASSED,
            "blobs",
            {"checked": report.checked, "damaged": len(report.damaged), "resumed": bool(
                report.resumed_after)},
        )  # fmt: skip


def last_clean_scrub(db: Session) -> int:
    """The audit sequence number of the newest scrub pass that found no damage (0: none).
    A pass resumed from a checkpoint counts only if no damage was found since it began."""
    for seq, details in db.execute(
        select(AuditEvent.seq, AuditEvent.details)
        .where(AuditEvent.action == PASSED)
        .order_by(AuditEvent.seq.desc())
        .limit(50)
    ):
        if json.loads(details).get("damaged") == 0 and not json.loads(details).get("resumed"):
            return int(seq)
    return 0


def _record(state: PortalState, report: ScrubReport, key: str) -> None:
    with transaction(state.sessions) as db:
        uses = blob_uses(db, key)
        record_damage(db, key, uses, found_by="scrub")
    report.damaged.append(Damaged(key, tuple(uses)))
