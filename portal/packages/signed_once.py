"""Sign a document with the mechanism's key, store it, and keep the first on a race.

The worker issues signed documents that are never replaced once issued: the release
statement (:mod:`portal.packages.release_statement`) and recall notices
(:mod:`portal.packages.recalls`). Two workers may issue the same one at once; the row's
column is set only while it is still empty, so the first stored document stands and a
later one is dropped from the blob store (unless it is the very same file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute, Session

from portal.config import ConfigError
from portal.registry.openpgp import KeyRejected
from portal.state import PortalState
from portal.storage import StorageError

if TYPE_CHECKING:
    from portal.packages.assembly.gpgstream import Signer

__all__ = ["Issued", "sign_and_store_once"]


@dataclass(frozen=True)
class Issued:
    """The document's blob key that stands, and whether it is the one just signed."""

    key: str
    signer: str  # fingerprint of the key that signed the new document
    ours: bool  # False: another worker stored its own first, and that one stands


def sign_and_store_once(
    state: PortalState,
    db: Session,
    row: Any,
    column: InstrumentedAttribute[str | None],
    text_for: Callable[[Signer], str],
    *,
    what: str,
    error: type[Exception],
    text_errors: tuple[type[Exception], ...] = (),
) -> Issued:
    """Clearsign ``text_for(signer)`` with the current signing key, store it, and set
    ``column`` of ``row`` (an ORM object with an ``id``) to its blob key unless it was set
    meanwhile. Refreshes ``row``. ``error`` (naming ``what``) when it cannot be signed
    (also for ``text_errors`` from ``text_for``) or stored; nothing is set then."""
    from portal.packages.assembly.gpgstream import GpgError, clearsign
    from portal.registry.signing_keys import SigningKeyError, load_mechanism_signer

    unsigned: tuple[type[Exception], ...] = (
        GpgError, KeyRejected, ConfigError, SigningKeyError, *text_errors,
    )  # fmt: skip
    try:
        signer = load_mechanism_signer(state.settings, db)  # the history decides (rotations)
        signed = clearsign(text_for(signer), signer)
    except unsigned as exc:
        raise error(f"the {what} could not be signed: {exc}") from None
    try:
        key = state.blobs.put_bytes(signed.encode("utf-8")).sha256
    except (OSError, StorageError) as exc:
        raise error(f"the {what} could not be stored: {exc}") from None
    model = type(row)
    done = db.execute(
        update(model)
        .where(model.id == row.id, column.is_(None))
        .values({column.key: key})
        .execution_options(synchronize_session=False)
    )
    db.refresh(row)
    if int(getattr(done, "rowcount", 0) or 0) == 1:
        return Issued(key, signer.fingerprint, ours=True)
    # Another worker issued it meanwhile: theirs stands; drop ours unless identical.
    stored: str | None = getattr(row, column.key)
    if stored != key:
        state.blobs.delete(key)
    return Issued(stored or key, signer.fingerprint, ours=False)
