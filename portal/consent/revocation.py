"""Revoking consent and its consequences, and what a provider is shown before confirming.

:func:`revoke_consent` appends the revoke event (:func:`portal.consent.ledger.revoke`) and
applies what follows from it for the items whose consent it ends: their candidates are
flagged for a re-check in the authority's requests, and the authority's packages holding any
of them are blocked (not yet released), withdrawn (released, never downloaded) or recalled
(downloaded: a :class:`~portal.packages.models.Recall` the recipient must acknowledge, naming
the items it withdraws). The legal officer of each request concerned, and the officers who
released its changed packages, are notified in the same transaction.

:func:`consequences` works the same out without changing anything, with the same functions
(:func:`_covered_items`, :func:`~portal.consent.ledger.current_state` assuming the
revocation, :func:`_packages_holding`, :func:`package_effect`), so the page a provider
confirms on shows what the revocation will do, by authority name and date only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.consent.ledger import (
    ConsentError,
    Scope,
    current_state,
    revoke,
    scope_of,
    standing_state,
)
from portal.consent.models import Consent
from portal.db import aware_utc, serialize_on
from portal.notifications import service as notifications
from portal.packages.models import Download, Package, PackageItem, Recall
from portal.pages.i18n import N_
from portal.registry.models import Authority, Item, Provider
from portal.rfa.models import Rfa, RfaItem

__all__ = [
    "EFFECTS",
    "RECALL_REASON",
    "Consequences",
    "PackageConsequence",
    "Revocation",
    "consequences",
    "package_effect",
    "revoke_consent",
]

UNRELEASED = ("queued", "assembling", "assembled")
#: What the recipient reads on a recall notice: never the provider's own words.
RECALL_REASON = "The information provider withdrew its consent to share material in this package."
#: What revoking does to a package holding an item it ends consent for, as a provider reads it.
EFFECTS = {
    "blocked": "stopped before it is sent",
    "withdrawn": "withdrawn before anyone downloaded it",
    "recalled": "recalled: the authority is asked to destroy every copy",
}


@dataclass(frozen=True)
class Revocation:
    """What :func:`revoke_consent` did."""

    events: tuple[Consent, ...]
    affected_item_ids: tuple[int, ...]
    rechecks: int
    blocked: tuple[str, ...]
    withdrawn: tuple[str, ...]
    recalled: tuple[str, ...]


def revoke_consent(
    db: Session,
    target: Consent | Scope,
    *,
    reason: str,
    by: User,
    now: datetime | None = None,
) -> Revocation:
    """Revoke and apply the consequences (see the module's docstring), in the caller's
    transaction. Only items whose consent this revocation ends count (active before, not
    after, by the eligibility rule itself): an item whose consent had already lapsed or was
    declined is left as it is."""
    scope = scope_of(target)
    provider_id, authority_id = scope.provider_id, scope.authority_id
    # One revocation of this provider's consent at a time: a second one of the same grant
    # then finds nothing left to revoke, instead of recording and applying it twice.
    serialize_on(db, Provider, provider_id)
    # The clock is read once the turn is ours: the ledger is read as of this moment, and a
    # moment taken before waiting would not see the revocation that was recorded meanwhile.
    moment = aware_utc(now)
    candidates = _covered_items(db, scope)
    before = current_state(db, provider_id, authority_id, candidates, now=moment)
    revocation = revoke(db, scope, reason=reason, by=by, now=moment)
    after = current_state(db, provider_id, authority_id, candidates, now=moment)
    affected = sorted(i for i in candidates if before[i].active and not after[i].active)

    rechecks = 0
    blocked: list[str] = []
    withdrawn: list[str] = []
    recalled: list[str] = []
    told: dict[int, set[int]] = {}  # request id -> officers who released its changed packages
    if affected:
        result = db.execute(
            update(RfaItem)
            .where(
                RfaItem.item_id.in_(affected),
                RfaItem.rfa_id.in_(select(Rfa.id).where(Rfa.authority_id == authority_id)),
            )
            .values(needs_recheck=True)
            .execution_options(synchronize_session="fetch")
        )
        rechecks = int(getattr(result, "rowcount", 0) or 0)
        for rfa_id in db.scalars(
            select(RfaItem.rfa_id)
            .join(Rfa, Rfa.id == RfaItem.rfa_id)
            .where(RfaItem.item_id.in_(affected), Rfa.authority_id == authority_id)
            .distinct()
        ):
            told.setdefault(rfa_id, set())
        for package in _packages_holding(db, authority_id, affected):
            effect = package_effect(db, package)
            if effect is not None:
                releasers = told.setdefault(package.rfa_id, set())
                if package.released_by_id is not None:
                    releasers.add(package.released_by_id)
            if effect == "blocked":
                package.status = "blocked"
                package.stage = "blocked: consent revoked"
                blocked.append(package.code)
                notifications.no_longer_releasable(db, package.code)
            elif effect == "withdrawn":
                package.status = "withdrawn"
                withdrawn.append(package.code)
                notifications.no_longer_releasable(db, package.code)
            elif effect == "recalled":
                package.status = "recalled"
                withdrawn_here = _items_of(db, package, affected)
                db.add(
                    Recall(
                        package_id=package.id,
                        consent_id=revocation.id,
                        reason=RECALL_REASON,
                        created_at=moment,
                        created_by_id=by.id,
                        # the items the notice withdraws; the package's others stay shareable
                        details={"consent": revocation.code, "items": withdrawn_here},
                    )
                )
                recalled.append(package.code)
        db.flush()
        for rfa in db.scalars(select(Rfa).where(Rfa.id.in_(told)).order_by(Rfa.id)):
            notifications.consent_withdrawn(db, rfa, sorted(told[rfa.id]))
    audit.record(
        db,
        audit.actor_label(by),
        "consent.revocation_applied",
        f"consent:{revocation.code}",
        {
            "items": len(affected),
            "rechecks": rechecks,
            "blocked": blocked,
            "withdrawn": withdrawn,
            "recalled": recalled,
        },
    )
    return Revocation(
        events=(revocation,),
        affected_item_ids=tuple(affected),
        rechecks=rechecks,
        blocked=tuple(blocked),
        withdrawn=tuple(withdrawn),
        recalled=tuple(recalled),
    )


# --- before confirming -----------------------------------------------------------------------


@dataclass(frozen=True)
class PackageConsequence:
    """One package a revocation would change, as its provider may see it."""

    authority: str  # the authority's name
    on: datetime  # released, or made (not yet released)
    effect: str  # a key of EFFECTS


@dataclass(frozen=True)
class Consequences:
    """What revoking a grant would do now. ``digest`` changes whenever any of it changes: the
    confirmation form carries it, and a revocation confirmed on an older view is refused."""

    authority: str
    items: int  # how many items lose consent
    packages: tuple[PackageConsequence, ...]
    digest: str


def consequences(
    db: Session, target: Consent | Scope, *, now: datetime | None = None
) -> Consequences:
    """What :func:`revoke_consent` would do to ``target`` now; nothing is changed."""
    moment = aware_utc(now)
    scope = scope_of(target)
    authority = db.get(Authority, scope.authority_id)
    if authority is None:
        raise ConsentError(N_("no such provider or authority"))
    candidates = _covered_items(db, scope)
    before = current_state(db, scope.provider_id, scope.authority_id, candidates, now=moment)
    granted = (
        standing_state(db, scope.provider_id, scope.authority_id, now=moment)
        if scope.item_id is None
        else before[scope.item_id]
    )
    if not granted.active:
        raise ConsentError(N_("there is no active grant to revoke here"))
    after = current_state(
        db, scope.provider_id, scope.authority_id, candidates, now=moment, assuming_revoked=scope
    )
    losing = [i for i in candidates if before[i].active and not after[i].active]
    rows = []
    for package in _packages_holding(db, scope.authority_id, losing):
        effect = package_effect(db, package)
        if effect is not None:
            rows.append((package, effect))
    digest = hashlib.sha256(
        repr((losing, [(p.id, p.status, effect) for p, effect in rows])).encode()
    ).hexdigest()
    return Consequences(
        authority=authority.name,
        items=len(losing),
        packages=tuple(
            PackageConsequence(authority.name, p.released_at or p.created_at, effect)
            for p, effect in rows
        ),
        digest=digest,
    )


# --- shared by both ----------------------------------------------------------------------------


def _covered_items(db: Session, scope: Scope) -> list[int]:
    """The items a revocation of ``scope`` may end consent for."""
    if scope.item_id is not None:
        return [scope.item_id]
    return sorted(db.scalars(select(Item.id).where(Item.provider_id == scope.provider_id)))


def _packages_holding(db: Session, authority_id: int, item_ids: list[int]) -> list[Package]:
    if not item_ids:
        return []
    return list(
        db.scalars(
            select(Package)
            .where(
                Package.authority_id == authority_id,
                Package.id.in_(
                    select(PackageItem.package_id).where(PackageItem.item_id.in_(item_ids))
                ),
            )
            .order_by(Package.id)
        )
    )


def _items_of(db: Session, package: Package, item_ids: list[int]) -> list[int]:
    """Which of ``item_ids`` the package holds, in order."""
    return sorted(
        db.scalars(
            select(PackageItem.item_id).where(
                PackageItem.package_id == package.id, PackageItem.item_id.in_(item_ids)
            )
        )
    )


def package_effect(db: Session, package: Package) -> str | None:
    """What revoking consent for an item of ``package`` does to it (a key of
    :data:`EFFECTS`), or None (failed, expired, already withdrawn or recalled)."""
    if package.status in UNRELEASED:
        return "blocked"
    if package.status != "released":
        return None
    downloaded = db.scalar(select(exists().where(Download.package_id == package.id)))
    return "recalled" if downloaded else "withdrawn"
