"""Serving stored files only when intact: a damaged file is refused before its first byte,
recorded and announced (see :mod:`portal.integrity.damage`)."""

from __future__ import annotations

import logging

from flask import abort

from portal.db import transaction
from portal.integrity.damage import record_damage
from portal.integrity.uses import blob_uses
from portal.pages.errors import error_response
from portal.state import portal_state
from portal.storage import DigestMismatch

logger = logging.getLogger(__name__)

DAMAGED_TITLE = "File damaged"
DAMAGED_MESSAGE = (
    "This file cannot be sent: the portal's stored copy no longer matches the fingerprint "
    "(sha256) it was registered with. Nothing was sent. The administrators have been told "
    "and will restore it from a backup."
)


def require_intact(key: str) -> None:
    """Abort with a 503 page (or problem+json) naming the damage unless blob ``key`` is
    intact; BlobNotFound goes to the caller, which knows what a missing file means there."""
    state = portal_state()
    try:
        state.verified.ensure(state.blobs, key)
    except DigestMismatch:
        logger.error("Refused to serve the damaged blob %s…", key[:12])
        with transaction(state.sessions) as db:
            record_damage(db, key, blob_uses(db, key), found_by="download")
        abort(error_response(503, title=DAMAGED_TITLE, message=DAMAGED_MESSAGE))
