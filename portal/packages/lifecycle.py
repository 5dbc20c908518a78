"""Packages from the legal officer's side: plan and create a package from a request's latest
decision, clear unredactable items as-is, retry a failed assembly, and release (four-eyes).

The assembly itself is :func:`portal.packages.assembly.assemble.assemble_package`, run as a job
(:mod:`portal.packages.assembly.jobs`). Functions here take the session explicitly, flush but never
commit, and refuse with :class:`PackageRefused` (safe to show) before changing anything.

Release is a conditional ``UPDATE ... WHERE status = 'assembled'``: when two officers release
at once, exactly one update matches and the other is told the package was released already.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import require_active_officer
from portal.codes import CodesBusy, CodeSeries, CodesExhausted, add_numbered
from portal.consent.ledger import current_state
from portal.consent.models import Consent
from portal.db import aware_utc, serialize_on, stored_utc, utcnow
from portal.eligibility.decisions import latest_decision, load_result
from portal.eligibility.models import Decision
from portal.notifications import service as notifications
from portal.packages.models import Package, PackageItem
from portal.pages import labels
from portal.pages.i18n import N_
from portal.registry.keys import usable_keys
from portal.registry.models import Item
from portal.rfa.models import Rfa, RfaItem
from portal.rfa.status import IllegalTransition, transition

__all__ = [
    "DEFAULT_EXPIRY_DAYS",
    "MAX_DOWNLOAD_LIMIT",
    "MAX_EXPIRY_DAYS",
    "PACKAGE_CODES",
    "SHAREABLE_RFA_STATUSES",
    "STATUS_LABELS",
    "PackageRefused",
    "Plan",
    "PlannedItem",
    "Replacing",
    "clear_as_is",
    "create_package",
    "fail_package",
    "plan_package",
    "release_package",
    "replaceable",
    "replaced_by",
    "replacing",
    "retry_package",
]

DEFAULT_EXPIRY_DAYS = 30
MAX_EXPIRY_DAYS = 365
MAX_DOWNLOAD_LIMIT = 1000
#: Request states a package may be made in (a later package replaces a recalled one).
SHAREABLE_RFA_STATUSES = ("approved", "partially_approved", "transmitted", "acknowledged")
#: Request states that become "transmitted" when a package is released.
_TO_TRANSMIT = ("approved", "partially_approved")
#: A package in one of these is still on its way; no second one is made meanwhile.
UNFINISHED = ("queued", "assembling", "assembled")
#: A queued or assembling package whose row has not changed for this long has most likely
#: lost its job (a worker killed mid-run, a queue emptied): an officer may queue it again.
#: A live run records every stage (``updated_at``), and its stages take minutes at most.
STALLED_AFTER = timedelta(minutes=30)
_STALLABLE = ("queued", "assembling")
SHARED_OUTCOMES = ("share", "share_redacted")
STATUS_LABELS = labels.PACKAGE_STATUS
#: ``PKG-2026-0001``: at most 9999 packages a year.
PACKAGE_CODES = CodeSeries("PKG", Package.code, digits=4, last=9999)


class PackageRefused(Exception):
    """A package action was refused; nothing changed. The message says why."""


@dataclass(frozen=True)
class PlannedItem:
    """One item of the decision as it would go into a package."""

    item: Item
    outcome: str  # share | share_redacted
    rendition: str  # redacted | as_is
    marks: tuple[str, ...]  # codes of the redaction marks to apply
    consent_id: int | None
    consent_code: str | None


@dataclass(frozen=True)
class Plan:
    """What a package made now would contain, and why it cannot be made (``problems``)."""

    rfa: Rfa
    decision: Decision | None
    items: tuple[PlannedItem, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# --- planning and creating -------------------------------------------------------------------


def plan_package(
    db: Session,
    rfa: Rfa,
    redactable_media_types: frozenset[str],
    *,
    now: datetime | None = None,
) -> Plan:
    """Work out the package the request's latest decision allows, listing every reason it
    cannot be made now (an empty list means :func:`create_package` will make it)."""
    moment = aware_utc(now)
    problems: list[str] = []
    if rfa.status not in SHAREABLE_RFA_STATUSES:
        problems.append(
            f"The request is {rfa.status.replace('_', ' ')}; packages are made only once it is "
            "approved or partially approved."
        )
    decision = latest_decision(db, rfa.id)
    if decision is None:
        problems.append("There is no eligibility decision for this request; run the check first.")
        return Plan(rfa, None, (), tuple(problems))
    if decision.outcome in ("ineligible", "needs_review"):
        wording = "is ineligible" if decision.outcome == "ineligible" else "needs review"
        problems.append(
            f"The latest decision {wording}; resolve it and run the check again before "
            "making a package."
        )
    problems.extend(_staleness(db, rfa, decision))
    unfinished = db.scalar(
        select(Package.code)
        .where(Package.rfa_id == rfa.id, Package.status.in_(UNFINISHED))
        .order_by(Package.id)
        .limit(1)
    )
    if unfinished is not None:
        problems.append(f"Package {unfinished} for this request is not finished or released yet.")
    if not usable_keys(db, rfa.authority_id, moment):
        problems.append(
            "The authority has no usable key (verified, unexpired, not revoked); import and "
            "verify its key first."
        )
    planned = _planned_items(db, rfa, decision, redactable_media_types, moment, problems)
    if not planned and decision.outcome not in ("ineligible", "needs_review"):
        problems.append("The decision shares no item, so there is nothing to package.")
    return Plan(rfa, decision, tuple(planned), tuple(problems))


def _staleness(db: Session, rfa: Rfa, decision: Decision) -> list[str]:
    """Reasons the decision no longer reflects the request: re-check flags, changed candidate
    items, consent events recorded after it."""
    problems = []
    flagged = db.scalar(
        select(func.count())
        .select_from(RfaItem)
        .where(RfaItem.rfa_id == rfa.id, RfaItem.needs_recheck.is_(True))
    )
    if flagged:
        problems.append(
            f"{flagged} candidate item(s) are flagged for a re-check after a consent change; "
            "run the eligibility check again."
        )
    candidates = set(db.scalars(select(RfaItem.item_id).where(RfaItem.rfa_id == rfa.id)))
    decided = {item.item_id for item in load_result(decision).items}
    if candidates != decided:
        problems.append(
            "The candidate items changed after the latest decision; run the eligibility check "
            "again."
        )
    provider_ids = select(Item.provider_id).where(Item.id.in_(candidates or {0}))
    later = db.scalar(
        select(func.count())
        .select_from(Consent)
        .where(
            Consent.authority_id == rfa.authority_id,
            Consent.provider_id.in_(provider_ids),
            or_(Consent.item_id.is_(None), Consent.item_id.in_(candidates or {0})),
            Consent.recorded_at > decision.created_at,
        )
    )
    if later:
        problems.append(
            "Consent changed after the latest decision; run the eligibility check again."
        )
    return problems


def _planned_items(
    db: Session,
    rfa: Rfa,
    decision: Decision,
    redactable: frozenset[str],
    moment: datetime,
    problems: list[str],
) -> list[PlannedItem]:
    shared = [r for r in load_result(decision).items if r.outcome in SHARED_OUTCOMES]
    if not shared:
        return []
    items = {
        item.id: item
        for item in db.scalars(select(Item).where(Item.id.in_([r.item_id for r in shared])))
    }
    states: dict[int, tuple[str, str | None]] = {}
    by_provider: dict[int, list[int]] = {}
    for found in items.values():
        by_provider.setdefault(found.provider_id, []).append(found.id)
    for provider_id, ids in by_provider.items():
        for item_id, state in current_state(
            db, provider_id, rfa.authority_id, ids, now=moment
        ).items():
            states[item_id] = (state.status, state.consent_code)
    codes = [code for _status, code in states.values() if code]
    consent_ids = dict(
        db.execute(select(Consent.code, Consent.id).where(Consent.code.in_(codes or [""]))).all()
    )
    planned = []
    for result in shared:
        item = items.get(result.item_id)
        if item is None:
            problems.append(f"Item {result.item} of the decision no longer exists.")
            continue
        status, consent_code = states.get(item.id, ("none", None))
        if status != "granted":
            problems.append(
                f"Consent for {item.code} is {status}; run the eligibility check again."
            )
        can_redact = item.media_type in redactable
        if result.marks and not can_redact:
            problems.append(f"{item.code} ({item.media_type}) has marks but cannot be redacted.")
        redacted = bool(result.marks) or (can_redact and result.outcome == "share_redacted")
        if not redacted and not can_redact and not item.cleared_as_is:
            problems.append(
                f"{item.code} ({item.media_type}) cannot be redacted and has not been cleared "
                "as-is by a legal officer."
            )
        planned.append(
            PlannedItem(
                item=item,
                outcome=result.outcome,
                rendition="redacted" if redacted else "as_is",
                marks=tuple(result.marks),
                consent_id=consent_ids.get(consent_code) if consent_code else None,
                consent_code=consent_code,
            )
        )
    return planned


def _payload_path(item: Item) -> str:
    """Where the item goes in the bag (the assembler may rename the file it writes)."""
    from portal.packages.assembly.bag import safe_payload_name

    return f"data/items/{item.code}/{safe_payload_name(item.original_filename)}"[:500]


def create_package(
    db: Session,
    rfa: Rfa,
    redactable_media_types: frozenset[str],
    *,
    by: User,
    now: datetime | None = None,
) -> Package:
    """Make a queued package from the request's latest decision (flushed, not committed;
    the caller commits, then enqueues the assembly job)."""
    require_active_officer(by, PackageRefused)
    # Lock order: the audit chain first, as a consent revocation and a release take it. A
    # revocation then either comes before (this plan sees its re-check flags and is refused)
    # or after (it finds this package and blocks it), never in between.
    audit.lock_chain(db)
    # One package made for a request at a time: a second officer pressing at the same moment
    # then sees the first package as unfinished and is refused.
    serialize_on(db, Rfa, rfa.id)
    moment = aware_utc(now)  # after the waits: the plan reads the consents as of now
    plan = plan_package(db, rfa, redactable_media_types, now=moment)
    if not plan.ok or plan.decision is None:
        raise PackageRefused(" ".join(plan.problems))
    decision_id = plan.decision.id
    replaced = replaceable(db, rfa.id)

    def queued(codes: list[str]) -> list[Package]:
        return [
            Package(
                code=codes[0],
                rfa_id=rfa.id,
                decision_id=decision_id,
                authority_id=rfa.authority_id,
                status="queued",
                stage="queued",
                progress=0,
                assembled_by_id=by.id,
                created_at=moment,
                replaces_id=replaced,
            )
        ]

    try:
        [package] = add_numbered(db, PACKAGE_CODES, moment.year, queued)
    except CodesExhausted:
        raise PackageRefused(f"The package numbers of {moment.year} are exhausted.") from None
    except CodesBusy:  # other officers took the numbers just now
        raise PackageRefused("Could not number the package; try again.") from None
    db.add_all(
        PackageItem(
            package_id=package.id,
            item_id=planned.item.id,
            rendition=planned.rendition,
            path=_payload_path(planned.item),
            source_sha256=planned.item.sha256,
            redaction_count=0,
            consent_id=planned.consent_id,
        )
        for planned in plan.items
    )
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "package.create",
        f"package:{package.code}",
        {
            "rfa": rfa.code,
            "decision": plan.decision.id,
            "items": len(plan.items),
            "redacted": sum(1 for p in plan.items if p.rendition == "redacted"),
            "replaces": replaced,
        },
        now=moment,
    )
    return package


#: Packages a recipient held (or was sent) that consent no longer covers: a later package of
#: the request replaces the newest of them.
REPLACEABLE = ("recalled", "withdrawn")
#: A replacement that failed or was blocked before release replaced nothing.
_NOT_A_REPLACEMENT = ("failed", "blocked")


def replaceable(db: Session, rfa_id: int) -> int | None:
    """The id of the request's newest recalled or withdrawn package that no live package
    replaces yet (None: there is none; the next package is not a replacement)."""
    replacing = select(Package.replaces_id).where(
        Package.rfa_id == rfa_id,
        Package.replaces_id.is_not(None),
        Package.status.not_in(_NOT_A_REPLACEMENT),
    )
    return db.scalar(
        select(Package.id)
        .where(
            Package.rfa_id == rfa_id,
            Package.status.in_(REPLACEABLE),
            Package.id.not_in(replacing),
        )
        .order_by(Package.id.desc())
        .limit(1)
    )


# --- clearing unredactable items ---------------------------------------------------------------


def clear_as_is(
    db: Session,
    item: Item,
    redactable_media_types: frozenset[str],
    *,
    by: User,
    now: datetime | None = None,
) -> Item:
    """Record that a legal officer has reviewed an item the portal cannot redact (video,
    audio, archives) and clears it to be shared unchanged. The next eligibility check sees
    it; items with marks that always apply stay withheld whatever this says."""
    require_active_officer(by, PackageRefused)
    moment = aware_utc(now)
    if item.media_type in redactable_media_types:
        raise PackageRefused(
            f"{item.code} is {item.media_type}, which the portal redacts itself; it needs no "
            "clearance."
        )
    if item.cleared_as_is:
        raise PackageRefused(f"{item.code} has already been cleared as-is.")
    item.cleared_as_is = True
    item.cleared_by_id = by.id
    item.cleared_at = moment
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "item.clear_as_is",
        f"item:{item.code}",
        {"media_type": item.media_type},
        now=moment,
    )
    return item


# --- retry and failure -------------------------------------------------------------------------


def stalled(package: Package, *, now: datetime | None = None) -> bool:
    """Whether ``package`` waits for an assembly that has shown no sign of life for
    :data:`STALLED_AFTER` (see :func:`retry_package`)."""
    return package.status in _STALLABLE and (
        aware_utc(now) - stored_utc(package.updated_at) >= STALLED_AFTER
    )


def retry_package(db: Session, package: Package, *, by: User, now: datetime | None = None) -> None:
    """Queue a failed or stalled package for assembly again (the caller commits, then
    enqueues). A stalled run that comes back to life finds the package is no longer its own
    (the version moved on) and stops."""
    require_active_officer(by, PackageRefused)
    moment = aware_utc(now)
    was = package.status
    if was != "failed" and not stalled(package, now=moment):
        raise PackageRefused(
            f"Only a failed or stalled package can be retried; {package.code} is "
            f"{STATUS_LABELS.get(was, was).lower()}"
            + (" and its assembly is still making progress." if was in _STALLABLE else ".")
        )
    audit.lock_chain(db)  # lock order: the chain before the package row (see release_package)
    result = db.execute(
        update(Package)
        .where(
            Package.id == package.id,
            or_(
                Package.status == "failed",
                Package.status.in_(_STALLABLE) & (Package.updated_at <= moment - STALLED_AFTER),
            ),
        )
        .values(
            status="queued",
            stage="queued",
            progress=0,
            failure_reason=None,
            version=Package.version + 1,
            attempts=0,  # an officer's retry starts the count of runs again
            updated_at=moment,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        raise PackageRefused(f"{package.code} changed meanwhile; reload the page.")
    db.refresh(package)
    audit.record(
        db, audit.actor_label(by), "package.retry", f"package:{package.code}", {"was": was}
    )


def fail_package(db: Session, package_id: int, reason: str) -> bool:
    """Mark a queued or assembling package failed with ``reason`` (plain words); returns whether
    it changed. Used when the job cannot run the assembler at all."""
    audit.lock_chain(db)  # lock order: the chain before the package row (see release_package)
    result = db.execute(
        update(Package)
        .where(Package.id == package_id, Package.status.in_(("queued", "assembling")))
        .values(
            status="failed",
            stage="failed",
            failure_reason=reason[:2000],
            version=Package.version + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return False
    code = db.scalar(select(Package.code).where(Package.id == package_id))
    audit.record(db, audit.SYSTEM_ACTOR, "package.failed", f"package:{code}", {"reason": reason})
    return True


# --- release -----------------------------------------------------------------------------------


def release_package(
    db: Session,
    package: Package,
    *,
    by: User,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    download_limit: int | None = None,
    now: datetime | None = None,
) -> Package:
    """Release an assembled package to its authority: a second legal officer (never the one
    who assembled it), once. Moves the request to transmitted and tells the recipients.

    The release statement naming both officers is signed afterwards by the worker, never
    here: the caller queues it once the release is committed
    (:func:`portal.packages.assembly.jobs.queue_release_statements`; see
    :mod:`portal.packages.release_statement`), so a slow worker never holds a release up."""
    require_active_officer(by, PackageRefused)
    if by.id == package.assembled_by_id:
        raise PackageRefused(
            "Four-eyes rule: the officer who assembled a package cannot release it; ask a "
            "second legal officer."
        )
    if package.status != "assembled":
        raise PackageRefused(_not_releasable(package))
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise PackageRefused(f"The package must expire after 1 to {MAX_EXPIRY_DAYS} days.")
    if download_limit is not None and not 1 <= download_limit <= MAX_DOWNLOAD_LIMIT:
        raise PackageRefused(f"The download limit must be 1 to {MAX_DOWNLOAD_LIMIT}, or none.")
    if not package.file_sha256 or not package.signature_sha256:
        raise PackageRefused(f"{package.code} has no encrypted file on record; it cannot go out.")
    # Lock order: the audit chain before any row. A consent revocation takes the chain first
    # (it records itself) and then blocks or withdraws packages; taking the package row first
    # here would deadlock with it on PostgreSQL.
    audit.lock_chain(db)
    moment = aware_utc(now)  # after the wait: the release is later than what it waited for
    expires_at = moment + timedelta(days=expires_in_days)
    result = db.execute(
        update(Package)
        .where(
            Package.id == package.id,
            Package.status == "assembled",
            Package.assembled_by_id != by.id,
        )
        .values(
            status="released",
            stage="released",
            released_by_id=by.id,
            released_at=moment,
            expires_at=expires_at,
            download_limit=download_limit,
            version=Package.version + 1,
            updated_at=moment,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        db.refresh(package)
        raise PackageRefused(_not_releasable(package))
    db.refresh(package)
    rfa = db.get(Rfa, package.rfa_id)
    if rfa is not None and rfa.status in _TO_TRANSMIT:
        try:
            transition(db, rfa, "transmitted", by=by, note=f"Package {package.code} released.")
        except IllegalTransition as exc:  # pragma: no cover - guarded by _TO_TRANSMIT
            raise PackageRefused(str(exc)) from None
    audit.record(
        db,
        audit.actor_label(by),
        "package.release",
        f"package:{package.code}",
        {
            "expires_at": expires_at.isoformat(),
            "download_limit": download_limit,
            "file_sha256": package.file_sha256,
        },
        now=moment,
    )
    notifications.notify(
        db,
        notifications.recipients_of_authority(db, package.authority_id),
        N_("Package %(code)s is ready to download", code=package.code),
        f"/received/{package.code}",
    )
    notifications.released(db, package.code)
    return package


def _not_releasable(package: Package) -> str:
    if package.status == "released":
        return f"{package.code} has already been released; nothing was changed."
    label = STATUS_LABELS.get(package.status, package.status).lower()
    return f"{package.code} cannot be released: it is {label}. Only an assembled package can be."


@dataclass(frozen=True)
class Replacing:
    """A package that replaces another, as pages say it: "replaces PKG-…, without ITM-…"."""

    replaced: Package
    items_left_out: tuple[str, ...]


def _item_codes(db: Session, package_id: int) -> set[str]:
    return set(
        db.scalars(
            select(Item.code)
            .join(PackageItem, PackageItem.item_id == Item.id)
            .where(PackageItem.package_id == package_id)
        )
    )


def replacing(db: Session, package: Package) -> Replacing | None:
    """The package ``package`` replaces and the items of it left out (None: none)."""
    if package.replaces_id is None:
        return None
    replaced = db.get(Package, package.replaces_id)
    if replaced is None:  # pragma: no cover - foreign key
        return None
    left_out = _item_codes(db, replaced.id) - _item_codes(db, package.id)
    return Replacing(replaced, tuple(sorted(left_out)))


def replaced_by(db: Session, package: Package, *, released_only: bool = False) -> Package | None:
    """The live package that replaces ``package`` (a failed or blocked one replaced nothing);
    with ``released_only``, only once it is released (what a recipient may be told)."""
    statuses = ("released", "recalled", "withdrawn", "expired")
    return db.scalar(
        select(Package)
        .where(
            Package.replaces_id == package.id,
            Package.status.in_(statuses)
            if released_only
            else Package.status.not_in(_NOT_A_REPLACEMENT),
        )
        .order_by(Package.id.desc())
        .limit(1)
    )
