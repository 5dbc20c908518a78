"""Checks by eye: a confirmed term mark that matched nothing in its item, and an item whose
pixels OCR cannot be trusted on.

A term mark that finds nothing is either right (the item does not name the person) or a
redaction that silently did nothing: the name may be in a scan, spelt another way, split by
the layout. Assembly cannot tell, so it fails the package naming the mark (never the term)
until a legal officer has read the item and recorded that the term does not occur in it.
The record stays on the mark (who, when) and in the audit log; later packages accept the
mark's empty result.

Likewise OCR: where it cannot be trusted (Burmese read with low confidence), the leak check
cannot say the item is clean, so the package is blocked until a legal officer has read the
item and recorded that no protected identifier shows in it beyond what its marks cover. The
record stays on the item and in the audit log.

Both are second pairs of eyes: never the officer who proposed the mark, never the officer
who assembled the package.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.authz.roles import require_active_officer
from portal.db import aware_utc
from portal.packages.lifecycle import PackageRefused
from portal.packages.models import Package, PackageItem
from portal.registry.models import Item, RedactionMark, RedactionMarkEvent

__all__ = [
    "item_of_package",
    "mark_of_package",
    "record_checked_by_eye",
    "record_pixels_checked_by_eye",
]


def item_of_package(db: Session, package: Package, item_code: str) -> Item:
    """Item ``item_code``, which must be an item of ``package``."""
    item = db.scalar(
        select(Item)
        .join(PackageItem, PackageItem.item_id == Item.id)
        .where(PackageItem.package_id == package.id, Item.code == item_code[:40])
    )
    if item is None:
        raise PackageRefused(f"{package.code} has no item {item_code}.")
    return item


def mark_of_package(db: Session, package: Package, item_code: str, mark_code: str) -> RedactionMark:
    """Mark ``mark_code`` of item ``item_code``, which must be an item of ``package``."""
    mark = db.scalar(
        select(RedactionMark)
        .join(Item, Item.id == RedactionMark.item_id)
        .join(PackageItem, PackageItem.item_id == Item.id)
        .where(
            PackageItem.package_id == package.id,
            Item.code == item_code[:40],
            RedactionMark.code == mark_code[:40],
        )
    )
    if mark is None:
        raise PackageRefused(f"{package.code} has no item {item_code} with a mark {mark_code}.")
    return mark


def record_checked_by_eye(
    db: Session, mark: RedactionMark, item: Item, *, by: User, now: datetime | None = None
) -> None:
    """Record that ``by`` read ``item`` and the term of ``mark`` does not occur in it
    (flushed and audited; the caller commits)."""
    require_active_officer(by, PackageRefused)
    what = f"Mark {mark.code} of {item.code}"
    if mark.item_id != item.id:
        raise PackageRefused(f"{what}: the mark belongs to another item.")
    if mark.kind != "term" or mark.review != "confirmed":
        raise PackageRefused(f"{what} is not a confirmed term mark; there is nothing to check.")
    if mark.checked_by_eye_at is not None:
        raise PackageRefused(f"{what} has already been checked by eye.")
    if mark.proposed_by_id == by.id:
        raise PackageRefused(
            f"{what}: you proposed it; another legal officer must read the item and record "
            "the check."
        )
    moment = aware_utc(now)
    mark.checked_by_eye_by_id = by.id
    mark.checked_by_eye_at = moment
    db.add(
        RedactionMarkEvent(
            item_id=item.id,
            mark_code=mark.code,
            action="checked_by_eye",
            actor_id=by.id,
            version=mark.version,
            at=moment,
            detail={},
        )
    )
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "mark.checked_by_eye",
        f"item:{item.code}",
        {"mark": mark.code, "item_sha256": item.sha256},
        now=moment,
    )


def record_pixels_checked_by_eye(
    db: Session, item: Item, package: Package, *, by: User, now: datetime | None = None
) -> None:
    """Record that ``by`` read every page of ``item`` and no protected identifier shows in it
    beyond what its marks cover (flushed and audited; the caller commits). Never by the
    officer who assembled ``package``: the second pair of eyes is the releasing officer's."""
    require_active_officer(by, PackageRefused)
    if package.assembled_by_id == by.id:
        raise PackageRefused(
            f"You assembled {package.code}; another legal officer must read the pages of "
            f"{item.code} and record the check."
        )
    if item.pixels_checked_at is not None:
        raise PackageRefused(f"The pixels of {item.code} have already been checked by eye.")
    moment = aware_utc(now)
    item.pixels_checked_by_id = by.id
    item.pixels_checked_at = moment
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "item.pixels_checked_by_eye",
        f"item:{item.code}",
        {"item_sha256": item.sha256},
        now=moment,
    )
