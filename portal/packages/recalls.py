"""Recall notices: the signed request to return or destroy a downloaded package, and the
recipient's acknowledgement of it.

:func:`portal.consent.revocation.revoke_consent` creates the :class:`~portal.models.Recall` rows;
this module turns each into a notice clearsigned by the mechanism's signing key, kept in
the blob store (``Recall.notice_sha256``). The worker signs them (:func:`issue_pending_notices`,
the ``issue_recall_notices`` job), never the web process: the consent view queues the job after
its commit and, should that fail (no signing key configured, gpg or the queue down), the
recipient's recall page queues it again. A notice is never replaced once issued.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import is_recipient, receives_for
from portal.authz.scopes import UserLike, visible
from portal.consent.models import Consent
from portal.db import utcnow
from portal.notifications import service as notifications
from portal.packages.assembly.documents import NoticeItem
from portal.packages.assembly.facts import MECHANISM_NAME
from portal.packages.models import Package, PackageItem, Recall
from portal.packages.signed_once import sign_and_store_once
from portal.pages.i18n import N_
from portal.registry.models import Authority, Item
from portal.rfa.models import Rfa
from portal.state import PortalState

if TYPE_CHECKING:
    from portal.packages.assembly.gpgstream import Signer

logger = logging.getLogger(__name__)

#: What the recipient did with recalled material (the notice asks for one of them).
DISPOSITIONS = ("returned", "destroyed")


class RecallError(Exception):
    """A recall action was refused or could not be done; the message says why."""


@dataclass(frozen=True)
class RecallEntry:
    """A recall as the recipient's page shows it. ``items`` are the items it withdraws (empty:
    the whole package, as recalls made before item-level notices); ``kept`` how many others
    of the package stay shareable."""

    recall: Recall
    package: Package
    acknowledged_by: User | None
    items: tuple[NoticeItem, ...] = ()
    kept: int = 0


def withdrawn_items(db: Session, recall: Recall) -> tuple[tuple[NoticeItem, ...], int]:
    """The items ``recall`` withdraws as its package holds them (code, title, path in the
    bag, sha256 of the file shared), and how many other items the package holds."""
    details = recall.details or {}
    wanted = details.get("items")
    if not isinstance(wanted, list) or not wanted:
        return (), 0
    rows = db.execute(
        select(Item.code, Item.title, PackageItem.path, PackageItem.rendition_sha256,
               PackageItem.source_sha256, PackageItem.item_id)
        .join(Item, Item.id == PackageItem.item_id)
        .where(PackageItem.package_id == recall.package_id)
        .order_by(Item.code)
    ).all()  # fmt: skip
    chosen = {int(i) for i in wanted}
    items = tuple(
        NoticeItem(code, title, path, rendition_sha or source_sha)
        for code, title, path, rendition_sha, source_sha, item_id in rows
        if item_id in chosen
    )
    return items, len(rows) - len(items)


def _addressed_to(user: UserLike) -> ColumnElement[bool] | None:
    """Recalls of the recipient's own authority, by the authorization layer's scope (None for
    anyone but a recipient: recalls are addressed to recipients)."""
    if not is_recipient(user) or user.authority_id is None:
        return None
    return visible(Recall, user)


def recalls_for(
    db: Session, user: UserLike, *, pending_only: bool = False, package_id: int | None = None
) -> Sequence[Recall]:
    """The recalls addressed to the user's authority (of one package with ``package_id``):
    unacknowledged first, newest first."""
    scope = _addressed_to(user)
    if scope is None:
        return []
    stmt = select(Recall).where(scope)
    if package_id is not None:
        stmt = stmt.where(Recall.package_id == package_id)
    if pending_only:
        stmt = stmt.where(Recall.acknowledged_at.is_(None))
    return db.scalars(
        stmt.order_by(
            Recall.acknowledged_at.is_not(None), Recall.created_at.desc(), Recall.id.desc()
        )
    ).all()


def recall_entries(
    db: Session, user: UserLike, *, package_id: int | None = None
) -> list[RecallEntry]:
    """:func:`recalls_for` with each recall's package and who acknowledged it (of one
    package with ``package_id``)."""
    found = recalls_for(db, user, package_id=package_id)
    if not found:  # most packages were never recalled: no lookups by empty id lists
        return []
    packages = {
        p.id: p
        for p in db.scalars(select(Package).where(Package.id.in_({r.package_id for r in found})))
    }
    ack_ids = {r.acknowledged_by_id for r in found if r.acknowledged_by_id is not None}
    users = {u.id: u for u in db.scalars(select(User).where(User.id.in_(ack_ids)))}
    entries = []
    for r in found:
        items, kept = withdrawn_items(db, r)
        entries.append(
            RecallEntry(
                recall=r,
                package=packages[r.package_id],
                acknowledged_by=users.get(r.acknowledged_by_id) if r.acknowledged_by_id else None,
                items=items,
                kept=kept,
            )
        )
    return entries


@dataclass(frozen=True)
class Withdrawal:
    """A recall of one of a request's packages, for the request's timeline."""

    at: datetime
    package_code: str
    items: int  # how many items it withdraws (0: the whole package)


def withdrawals_of_request(db: Session, rfa_id: int) -> list[Withdrawal]:
    """The recalls of the request's packages, oldest first."""
    rows = db.execute(
        select(Recall.created_at, Package.code, Recall.details)
        .join(Package, Package.id == Recall.package_id)
        .where(Package.rfa_id == rfa_id)
        .order_by(Recall.created_at, Recall.id)
    )
    found = []
    for at, code, details in rows:
        items = (details or {}).get("items")
        found.append(Withdrawal(at, code, len(items) if isinstance(items, list) else 0))
    return found


def pending_count(db: Session, user: UserLike) -> int:
    """How many recalls the user's authority has not acknowledged yet."""
    scope = _addressed_to(user)
    if scope is None:
        return 0
    count = db.scalar(
        select(func.count()).select_from(Recall).where(scope, Recall.acknowledged_at.is_(None))
    )
    return int(count or 0)


def all_acknowledged(db: Session, package_id: int) -> bool:
    """Has the authority acknowledged every recall of the package?"""
    pending = db.scalar(
        select(func.count())
        .select_from(Recall)
        .where(Recall.package_id == package_id, Recall.acknowledged_at.is_(None))
    )
    return not pending


def issue_notice(
    state: PortalState, db: Session, recall: Recall, *, now: datetime | None = None
) -> str:
    """Make, sign and store the recall's notice; returns its blob key (the existing one
    when already issued). Flushes; the caller commits. Raises :class:`RecallError`."""
    if recall.notice_sha256:
        return recall.notice_sha256
    from portal.packages.assembly.documents import DocumentError, recall_notice_text

    settings = state.settings
    if settings.signing_key_file is None:
        raise RecallError(N_("the Mechanism's signing key is not configured (PORTAL_SIGNING_KEY)"))
    package = db.get(Package, recall.package_id)
    authority = db.get(Authority, package.authority_id) if package is not None else None
    if package is None or authority is None:  # pragma: no cover - foreign keys
        raise RecallError(N_("the recalled package no longer exists"))
    moment = now or utcnow()
    items, kept = withdrawn_items(db, recall)

    def text_for(_signer: Signer) -> str:
        return recall_notice_text(
            package_code=package.code,
            authority_name=authority.name,
            reason=recall.reason,
            issued_at=moment,
            mechanism_name=MECHANISM_NAME,
            package_sha256=package.file_sha256,
            items=items,
            kept=kept,
        )

    issued = sign_and_store_once(
        state, db, recall, Recall.notice_sha256, text_for,
        what="recall notice", error=RecallError, text_errors=(DocumentError,),
    )  # fmt: skip
    if not issued.ours:
        return issued.key
    key = issued.key
    audit.record(
        db,
        audit.SYSTEM_ACTOR,
        "recall.notice_issued",
        f"package:{package.code}",
        {"recall": recall.id, "notice_sha256": key, "signer": issued.signer},
        now=moment,
    )
    recipients = notifications.recipients_of_authority(db, package.authority_id)
    notifications.notify(
        db,
        recipients,
        N_("Package %(code)s has been recalled", code=package.code),
        "/received/recalls",
    )
    return key


def issue_pending_notices(state: PortalState) -> int:
    """Issue every missing notice, one transaction each; returns how many were issued.

    Never raises: it runs after a revocation has been committed, and a notice that
    cannot be made now is made when the recipient opens the recall page.
    """
    issued = 0
    with state.sessions() as db:
        ids = db.scalars(
            select(Recall.id).where(Recall.notice_sha256.is_(None)).order_by(Recall.id)
        ).all()
    for recall_id in ids:
        with state.sessions() as db:
            recall = db.get(Recall, recall_id)
            if recall is None or recall.notice_sha256:
                continue
            try:
                issue_notice(state, db, recall)
                db.commit()
                issued += 1
            except RecallError as exc:
                db.rollback()
                logger.warning("recall notice %s not issued yet: %s", recall_id, exc)
            except Exception:  # best effort after a commit; the recall page tries again
                db.rollback()
                logger.exception("recall notice %s not issued", recall_id)
    return issued


def notice_bytes(state: PortalState, recall: Recall) -> bytes:
    """The signed notice as stored (raises :class:`RecallError` when not issued yet)."""
    if not recall.notice_sha256:
        raise RecallError(N_("the recall notice has not been issued yet; try again shortly"))
    return state.blobs.read_bytes(recall.notice_sha256)


def acknowledge(
    db: Session,
    recall: Recall,
    user: User,
    *,
    disposition: str,
    now: datetime | None = None,
) -> None:
    """The recipient confirms it has acted on the recall: ``disposition`` says whether the
    material was returned or destroyed. Audited; the legal officers and the provider are
    told. Flushes; refused (nothing changed) when already acknowledged."""
    if disposition not in DISPOSITIONS:
        raise RecallError(N_("say whether the material was returned or destroyed"))
    package = db.get(Package, recall.package_id)
    if package is None or not receives_for(user, package.authority_id):
        raise RecallError(
            N_("only recipients of the authority the package went to may acknowledge it")
        )
    if recall.acknowledged_at is not None:
        raise RecallError(N_("this recall was already acknowledged"))
    if not recall.notice_sha256:
        raise RecallError(
            N_("the recall notice has not been issued yet; read it before acknowledging")
        )
    moment = now or utcnow()
    done = db.execute(
        update(Recall)
        .where(Recall.id == recall.id, Recall.acknowledged_at.is_(None))
        .values(
            acknowledged_at=moment,
            acknowledged_by_id=user.id,
            details={**(recall.details or {}), "disposition": disposition},
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(done, "rowcount", 0) or 0) != 1:
        raise RecallError(N_("this recall was already acknowledged"))
    db.refresh(recall)
    audit.record(
        db,
        audit.actor_label(user),
        "recall.acknowledged",
        f"package:{package.code}",
        {"recall": recall.id, "disposition": disposition},
        now=moment,
    )
    subject = N_("Recall of package %(code)s acknowledged by the authority", code=package.code)
    rfa = db.get(Rfa, package.rfa_id)
    if rfa is not None:
        notifications.notify(
            db, notifications.officers_for(db, rfa), subject, f"/packages/{package.code}"
        )
    consent = db.get(Consent, recall.consent_id) if recall.consent_id is not None else None
    if consent is not None:
        notifications.notify(
            db,
            notifications.recipients_for_provider(db, consent.provider_id),
            subject,
            "/consent/where",
        )
