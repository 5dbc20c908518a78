"""A full disk (or quota) met by background work: recognised wherever it surfaces, said in the
same words as the pages say it (:mod:`portal.web.errors`), and told to the admins once.

A write that fails for want of space reaches the assembler in many shapes: an ``OSError``
with ``ENOSPC``/``EDQUOT`` straight from a write, or wrapped (a failure of gpg's output, of a
document worker, of a redactor) with the ``OSError`` as its cause or context. :func:`no_space`
follows that chain, so a wrapper that says "could not write the package file" still counts.
"""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING

from portal.db import transaction
from portal.notifications import service as notifications

if TYPE_CHECKING:
    from portal.state import PortalState

logger = logging.getLogger(__name__)

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})

#: The package's failure reason (shown to its legal officers; no path, no file name).
ASSEMBLY_REASON = (
    "The portal's storage is full; nothing was saved. The administrators have been told: "
    "once they have freed space or added storage, retry the assembly."
)


def no_space(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, is a write
    refused for want of space (``ENOSPC``, ``EDQUOT``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def tell_admins(state: PortalState, what: str) -> None:
    """Log that ``what`` (a code, never a path) met a full disk, and notify every admin who
    has not read the same notice yet (:func:`portal.notifications.service.storage_full`).
    Never raises: the database may be on the full disk too."""
    logger.error("Storage full during %s; nothing was kept", what)
    try:
        with transaction(state.sessions) as db:
            notifications.storage_full(db)
    except Exception:
        logger.exception("Could not notify the admins that the storage is full")
