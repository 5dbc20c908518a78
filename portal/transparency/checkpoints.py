"""Signed checkpoints of the log: made by the worker (never the web process), stored, served.

A checkpoint is the C2SP tlog-checkpoint note text (origin, size, base64 root hash) with a
detached armoured OpenPGP signature by the mechanism's signing key over its UTF-8 bytes. The
worker signs one every :data:`CHECKPOINT_INTERVAL` seconds when the log has grown
(:func:`start_checkpointing`, started by ``portal worker``; ``portal transparency
checkpoint`` does it once), and the assembler signs one for each package's evidence
(:func:`portal.transparency.evidence.package_evidence`). Before signing, the new tree is
checked to extend the last checkpoint signed (a consistency proof from the stored nodes): a
log must never sign two inconsistent heads.

The origin (the log's name on the first line) is fixed by the first checkpoint: the host and
path of ``PORTAL_BASE_URL`` followed by ``/audit-log`` (``sharing-portal.invalid/audit-log``
when no base URL is set), then kept for ever.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import aware_utc, transaction
from portal.periodic import repeat
from portal.transparency.log import (
    LogBroken,
    TransparencyError,
    catch_up,
    consistency_proof,
    root_at,
    tree_size,
)
from portal.transparency.models import TransparencyCheckpoint
from portal.verify.merkle import Checkpoint, ProofInvalid, verify_consistency

if TYPE_CHECKING:
    from portal.state import PortalState

__all__ = [
    "CHECKPOINT_INTERVAL",
    "DEFAULT_ORIGIN",
    "CheckpointSigner",
    "SigningUnavailable",
    "by_size",
    "issue_checkpoint",
    "latest",
    "log_origin",
    "sign_checkpoint",
    "start_checkpointing",
]

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 300.0  # seconds between the worker's checkpoints (when the log grew)
DEFAULT_ORIGIN = "sharing-portal.invalid/audit-log"
_BACKLOG_CHUNK = 20_000  # leaves appended per transaction before signing a first checkpoint


class SigningUnavailable(TransparencyError):
    """The signing key is not configured or cannot be used; the message says why."""


@dataclass(frozen=True)
class CheckpointSigner:
    """Who signs: the key's primary fingerprint and a function signing a file (detached,
    armoured) — the assembler's keyring, or a temporary one in the worker."""

    fingerprint: str
    detached_signature: Callable[[Path], bytes]


def log_origin(session: Session, base_url: str | None) -> str:
    """The log's origin: the first checkpoint's, or one made from ``base_url``."""
    first = session.scalar(
        select(TransparencyCheckpoint.origin).order_by(TransparencyCheckpoint.id).limit(1)
    )
    if first is not None:
        return first
    if base_url:
        parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
        name = "".join(ch for ch in f"{parts.netloc}{parts.path}".rstrip("/") if ch.isprintable())
        name = name.replace("+", "").replace(" ", "")
        if name:
            return f"{name}/audit-log"
    return DEFAULT_ORIGIN


def latest(session: Session) -> TransparencyCheckpoint | None:
    """The checkpoint of the largest tree (the newest one of that size)."""
    return session.scalars(
        select(TransparencyCheckpoint)
        .order_by(TransparencyCheckpoint.tree_size.desc(), TransparencyCheckpoint.id.desc())
        .limit(1)
    ).first()


def by_size(session: Session, size: int) -> TransparencyCheckpoint | None:
    """The newest checkpoint of a tree of ``size`` leaves."""
    return session.scalars(
        select(TransparencyCheckpoint)
        .where(TransparencyCheckpoint.tree_size == size)
        .order_by(TransparencyCheckpoint.id.desc())
        .limit(1)
    ).first()


def sign_checkpoint(
    session: Session,
    signer: CheckpointSigner,
    *,
    base_url: str | None = None,
    now: datetime | None = None,
) -> TransparencyCheckpoint:
    """Catch the log up with the audit log and return a checkpoint of it signed by
    ``signer``: the stored one when it already signed this size, else a new one (flushed,
    not committed). Raises :class:`LogBroken` when the log does not extend the last
    checkpoint, and the signer's errors."""
    catch_up(session)
    size = tree_size(session)
    mine = session.scalars(
        select(TransparencyCheckpoint).where(
            TransparencyCheckpoint.tree_size == size,
            TransparencyCheckpoint.signer_fingerprint == signer.fingerprint,
        )
    ).first()
    if mine is not None:
        return mine
    root = root_at(session, size)
    _check_extends(session, size, root)
    head = Checkpoint(log_origin(session, base_url), size, root)
    body = head.text()
    with tempfile.TemporaryDirectory(prefix="ckpt-") as scratch:
        path = Path(scratch) / "checkpoint.txt"
        path.write_bytes(body.encode("utf-8"))
        signature = signer.detached_signature(path).decode("ascii")
    checkpoint = TransparencyCheckpoint(
        tree_size=size,
        root_hash=root.hex(),
        origin=head.origin,
        body=body,
        signature=signature,
        signer_fingerprint=signer.fingerprint,
        signed_at=aware_utc(now),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def _check_extends(session: Session, size: int, root: bytes) -> None:
    """The tree of ``size`` leaves (root ``root``) extends the last checkpoint signed."""
    last = latest(session)
    if last is None or last.tree_size == 0:
        return
    if last.tree_size > size:
        raise LogBroken(
            f"the log has {size} leaves but a checkpoint of {last.tree_size} was signed"
        )
    proof = consistency_proof(session, last.tree_size, size)
    try:
        verify_consistency(last.tree_size, size, bytes.fromhex(last.root_hash), root, proof)
    except ProofInvalid:
        raise LogBroken(
            f"the stored log no longer extends the checkpoint of {last.tree_size} leaves; "
            "nothing was signed"
        ) from None


def _worker_signer(state: PortalState) -> CheckpointSigner:
    """The mechanism's current signing key (the key history decides, after rotations)."""
    from portal.packages.assembly.gpgstream import detached_signature
    from portal.registry.openpgp import KeyRejected, refuse_example_key
    from portal.registry.signing_keys import SigningKeyError, load_mechanism_signer

    settings = state.settings
    try:
        with state.sessions() as db:
            signer = load_mechanism_signer(settings, db)
        refuse_example_key(signer.fingerprint, demo_or_test=settings.demo_or_test)
    except (SigningKeyError, KeyRejected) as exc:
        raise SigningUnavailable(f"the signing key cannot be used: {exc}") from None
    return CheckpointSigner(signer.fingerprint, lambda path: detached_signature(path, signer))


def issue_checkpoint(
    state: PortalState, *, now: datetime | None = None
) -> TransparencyCheckpoint | None:
    """Catch up and sign a checkpoint when the log grew since the last one (the worker's
    periodic step); returns it (detached from its session), or None when nothing changed.
    A long backlog (the first run on an existing audit log) is appended in chunks first."""
    signer = _worker_signer(state)
    while True:
        with transaction(state.sessions) as db:
            if catch_up(db, limit=_BACKLOG_CHUNK) < _BACKLOG_CHUNK:
                break
    with transaction(state.sessions) as db:
        before = latest(db)
        checkpoint = sign_checkpoint(db, signer, base_url=state.settings.base_url, now=now)
        grew = before is None or checkpoint.id != before.id
        db.expunge(checkpoint)
    return checkpoint if grew else None


def start_checkpointing(
    state: Callable[[], PortalState], interval: float = CHECKPOINT_INTERVAL
) -> threading.Event:
    """Every ``interval`` seconds in a daemon thread (``portal worker``), until the returned
    event is set: append the new audit events to the log and sign a checkpoint."""

    def checkpoint() -> None:
        try:
            issued = issue_checkpoint(state())
        except (SigningUnavailable, LogBroken) as exc:
            logger.error("No transparency checkpoint signed: %s", exc)
            return
        if issued is not None:
            logger.info("Signed the transparency checkpoint of %d leaves", issued.tree_size)

    return repeat(
        checkpoint,
        interval,
        name="transparency-checkpoints",
        logger=logger,
        failure="Could not sign a transparency checkpoint",
    )
