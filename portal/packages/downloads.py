"""The recipient side of a package: which packages a recipient sees, whether a download
may go ahead, recording it, and the acknowledgement of receipt.

Plain functions over a session: they flush but never commit (the caller commits or rolls
back). The HTTP details (Range, ETag) stay in the view, which lets werkzeug decide what
it will send and then asks :func:`record_download` to check and record exactly that.

Download limit: a *full* download is a request that starts at byte 0 (no Range, or a
range from 0). With a limit, a range starting later is allowed only as a *resumption*: the
same user's own counted download began less than :data:`RESUME_WINDOW` ago, and the range
starts after where that user's previous request for the file started (a resumption moves
forward). Anything else is refused, so ``Range: bytes=1-`` is not a way to fetch the whole
file again and again, nor to fetch it without ever asking for byte 0.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, case, func, or_, select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import receives_for
from portal.authz.scopes import UserLike, visible
from portal.db import stored_utc, utcnow
from portal.notifications import service as notifications
from portal.packages.models import Download, Package
from portal.pages.i18n import N_
from portal.rfa import status as rfa_status
from portal.rfa.models import Rfa

#: Statuses a recipient sees; anything still being prepared (or blocked) stays invisible.
RECIPIENT_STATUSES = ("released", "withdrawn", "recalled", "expired")

STATUS_LABELS = {
    "released": N_("Available"),
    "withdrawn": N_("Withdrawn"),
    "recalled": N_("Recalled"),
    "expired": N_("Expired"),
}


#: How long after a user's counted download that user may resume it (with a limit), and
#: how many times: a flaky line needs a few, never dozens.
RESUME_WINDOW = timedelta(hours=24)
MAX_RESUMPTIONS = 20


class DownloadRefused(Exception):
    """The download may not go ahead; the message says why (safe to show the recipient)."""


class AcknowledgementRefused(Exception):
    """Receipt cannot be acknowledged; the message says why."""


@dataclass(frozen=True)
class DownloadPlan:
    """What werkzeug is about to send: ``range_start`` None for a whole-file response."""

    range_start: int | None
    bytes_sent: int

    @property
    def from_start(self) -> bool:
        return self.range_start is None or self.range_start == 0


def effective_status(package: Package, now: datetime | None = None) -> str:
    """The status as a recipient sees it: a released package past its expiry is expired."""
    moment = now or utcnow()
    if (
        package.status == "released"
        and package.expires_at is not None
        and stored_utc(package.expires_at) <= moment
    ):
        return "expired"
    return package.status


def recipient_packages_query(user: UserLike) -> Select[Package]:
    """The packages of the user's authority a recipient may see, newest release first."""
    return (
        select(Package)
        .where(visible(Package, user), Package.status.in_(RECIPIENT_STATUSES))
        .order_by(Package.released_at.desc(), Package.id.desc())
    )


def recipient_packages(db: Session, user: UserLike) -> Sequence[Package]:
    """Every package of :func:`recipient_packages_query` (the API lists them all)."""
    return db.scalars(recipient_packages_query(user)).all()


def _counted() -> ColumnElement[bool]:
    """A download that counts against the limit: one that started at byte 0."""
    return or_(Download.range_start.is_(None), Download.range_start == 0)


def full_downloads(db: Session, package_id: int) -> int:
    """Counted downloads of the package (those that started at byte 0)."""
    count = db.scalar(
        select(func.count())
        .select_from(Download)
        .where(Download.package_id == package_id, _counted())
    )
    return int(count or 0)


def full_download_counts(db: Session, package_ids: Collection[int]) -> dict[int, int]:
    """:func:`full_downloads` of many packages in one query (0 for those never fetched)."""
    counts = dict.fromkeys(package_ids, 0)
    if counts:
        for package_id, count in db.execute(
            select(Download.package_id, func.count())
            .where(Download.package_id.in_(list(counts)), _counted())
            .group_by(Download.package_id)
        ):
            counts[package_id] = int(count)
    return counts


def download_counts(db: Session, package_id: int) -> tuple[int, int]:
    """:func:`full_downloads` and :func:`downloads_of` of one package, in one query."""
    counted, every = db.execute(
        select(func.count(case((_counted(), 1))), func.count()).where(
            Download.package_id == package_id
        )
    ).one()
    return int(counted or 0), int(every or 0)


def downloads_of(db: Session, package_id: int) -> int:
    """Every recorded request for the package file, resumptions included."""
    count = db.scalar(
        select(func.count()).select_from(Download).where(Download.package_id == package_id)
    )
    return int(count or 0)


def refusal(package: Package, user: UserLike, now: datetime | None = None) -> str | None:
    """Why ``user`` may not fetch the package's files now (None when it may).

    The download limit is checked separately (:func:`record_download`): it depends on
    what is asked for.
    """
    if not receives_for(user, package.authority_id):
        return N_("Only recipients of the authority the package is addressed to may download it.")
    status = effective_status(package, now)
    if status == "withdrawn":
        return N_(
            "This package was withdrawn before it was downloaded: the information provider "
            "withdrew its consent. It can no longer be downloaded."
        )
    if status == "recalled":
        return N_(
            "This package has been recalled. It can no longer be downloaded; read the recall "
            "notice and acknowledge it."
        )
    if status == "expired":
        if package.expires_at is None:
            return N_(
                "The download period of this package ended. Ask the Mechanism to release it "
                "again if you still need it."
            )
        return N_(
            "The download period of this package ended on %(when)s UTC. Ask the Mechanism "
            "to release it again if you still need it.",
            when=f"{stored_utc(package.expires_at):%Y-%m-%d %H:%M}",
        )
    if status != "released" or not package.file_sha256:
        return N_("This package is not available for download.")
    return None


def record_download(
    db: Session,
    package: Package,
    user: User,
    plan: DownloadPlan,
    *,
    address: str | None,
    now: datetime | None = None,
) -> Download:
    """Check once more, under the audit chain lock, and record the download.

    The lock serialises concurrent downloads, so two requests can never both take the
    last download allowed by the limit. Raises :class:`DownloadRefused` (and records
    nothing but the refusal's audit event, which the caller may commit) when refused.
    """
    moment = now or utcnow()
    audit.lock_chain(db)
    db.refresh(package)
    reason = refusal(package, user, moment) or _over_limit(db, package, user, plan, moment)
    if reason is not None:
        audit.record(
            db,
            audit.actor_label(user),
            "package.download_refused",
            f"package:{package.code}",
            {"reason": reason, "address": address or "", "range_start": plan.range_start},
            now=moment,
        )
        raise DownloadRefused(reason)
    download = Download(
        package_id=package.id,
        user_id=user.id,
        range_start=plan.range_start,
        bytes_sent=plan.bytes_sent,
        started_at=moment,
    )
    db.add(download)
    db.flush()
    audit.record(
        db,
        audit.actor_label(user),
        "package.downloaded",
        f"package:{package.code}",
        {
            "download": download.id,
            "address": address or "",
            "range_start": plan.range_start,
            "bytes": plan.bytes_sent,
            "counted": plan.from_start,
            "sha256": package.file_sha256,
        },
        now=moment,
    )
    return download


def _over_limit(
    db: Session, package: Package, user: User, plan: DownloadPlan, moment: datetime
) -> str | None:
    limit = package.download_limit
    if limit is None:
        return None
    if not plan.from_start:
        return _not_a_resumption(db, package, user, plan, moment)
    counted = full_downloads(db, package.id)
    if counted >= limit:
        if limit == 1:
            return N_(
                "The download limit of this package is used up: it may be downloaded once, "
                "and that has happened. An interrupted download can still be resumed; for a "
                "new copy ask the Mechanism."
            )
        return N_(
            "The download limit of this package is used up: it may be downloaded %(limit)s "
            "times, and that has happened. An interrupted download can still be resumed; for "
            "a new copy ask the Mechanism.",
            limit=limit,
        )
    return None


def _not_a_resumption(
    db: Session, package: Package, user: User, plan: DownloadPlan, moment: datetime
) -> str | None:
    """Why a range from past byte 0 is not a resumption of ``user``'s own download (or None)."""
    mine = Download.package_id == package.id, Download.user_id == user.id
    began = db.scalar(select(func.max(Download.started_at)).where(*mine, _counted()))
    if began is None or stored_utc(began) <= moment - RESUME_WINDOW:
        return N_(
            "This package has a download limit: start the download from the beginning. "
            "Only your own download of the last 24 hours can be resumed."
        )
    since = list(
        db.scalars(
            select(Download.range_start)
            .where(*mine, Download.started_at >= began)
            .order_by(Download.id.desc())
        )
    )
    if len(since) > MAX_RESUMPTIONS:
        return N_(
            "This download was resumed %(limit)s times, the most allowed. Ask the Mechanism "
            "for a new copy.",
            limit=MAX_RESUMPTIONS,
        )
    previous = since[0] or 0  # never empty: the counted download itself is in it
    if (plan.range_start or 0) <= previous:
        return N_(
            "This package has a download limit: a resumed download continues after the part "
            "already fetched. Ask the Mechanism for a new copy."
        )
    return None


def record_signature_download(
    db: Session, package: Package, user: User, *, address: str | None
) -> None:
    """Audit a download of the detached signature (it does not count against the limit)."""
    audit.record(
        db,
        audit.actor_label(user),
        "package.signature_downloaded",
        f"package:{package.code}",
        {"address": address or "", "sha256": package.signature_sha256},
    )


def acknowledge_receipt(
    db: Session, package: Package, user: User, *, now: datetime | None = None
) -> None:
    """The recipient confirms receipt: the package records who and when, the request moves
    from transmitted to acknowledged, the legal officers hear of it.

    Refused before any download, for another authority's package, for a withdrawn one,
    and when already acknowledged (two recipients at once: the second is refused).
    """
    moment = now or utcnow()
    if not receives_for(user, package.authority_id):
        raise AcknowledgementRefused(
            N_("Only recipients of the authority the package is addressed to may acknowledge it.")
        )
    if package.status not in ("released", "recalled", "expired"):
        raise AcknowledgementRefused(
            N_("This package was never downloaded and cannot be acknowledged.")
        )
    if package.acknowledged_at is not None:
        raise AcknowledgementRefused(
            N_(
                "Receipt of %(code)s was already acknowledged on %(when)s UTC.",
                code=package.code,
                when=f"{stored_utc(package.acknowledged_at):%Y-%m-%d %H:%M}",
            )
        )
    if downloads_of(db, package.id) == 0:
        raise AcknowledgementRefused(
            N_("Download the package before acknowledging receipt; nothing was recorded.")
        )
    audit.lock_chain(db)  # lock order: the chain before the package row, as revocation does
    done = db.execute(
        update(Package)
        .where(Package.id == package.id, Package.acknowledged_at.is_(None))
        .values(acknowledged_at=moment, acknowledged_by_id=user.id, version=Package.version + 1)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(done, "rowcount", 0) or 0) != 1:
        raise AcknowledgementRefused(
            N_("Receipt of %(code)s was already acknowledged.", code=package.code)
        )
    db.refresh(package)
    rfa = db.get(Rfa, package.rfa_id)
    moved = False
    if rfa is not None and rfa.status == "transmitted":
        rfa_status.transition(db, rfa, "acknowledged", by=user, now=moment)
        moved = True
    audit.record(
        db,
        audit.actor_label(user),
        "package.acknowledged",
        f"package:{package.code}",
        {"rfa_acknowledged": moved},
        now=moment,
    )
    if rfa is not None:
        notifications.notify(
            db,
            notifications.officers_for(db, rfa),
            N_("Receipt of package %(code)s acknowledged by the authority", code=package.code),
            f"/packages/{package.code}",
        )
