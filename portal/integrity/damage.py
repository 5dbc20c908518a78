"""Recording a damaged blob: one audit event and a content-free notice to every admin."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from portal import audit
from portal.notifications import service as notifications

ACTION = "blob.damaged"


def record_damage(db: Session, sha256: str, uses: Sequence[str], *, found_by: str) -> None:
    """``sha256`` no longer matches its bytes: audit it (with what uses it and what found it,
    e.g. ``"assembly of PKG-…"`` or ``"scrub"``) and tell the admins (flushed, not committed).
    The admins' notice names the first use by its code only."""
    audit.record(
        db,
        audit.SYSTEM_ACTOR,
        ACTION,
        f"blob:{sha256}",
        {"uses": list(uses), "found_by": found_by},
    )
    notifications.blob_damaged(db, uses[0] if uses else "an unreferenced file")
