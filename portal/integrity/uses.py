"""What uses a stored blob, named by codes (never titles or file names)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portal.packages.models import Package, Recall
from portal.registry.models import Item
from portal.rfa.models import Assurance, Attachment, Rfa


def blob_uses(db: Session, sha256: str) -> list[str]:
    """Every record whose bytes are the blob ``sha256``, e.g. ``["item ITM-2026-0001",
    "package PKG-2026-0003 (signature)"]``; empty when nothing refers to it."""
    uses = [f"item {code}" for code in db.scalars(select(Item.code).where(Item.sha256 == sha256))]
    for kind, model in (("attachment", Attachment), ("assurance", Assurance)):
        for rfa_code in db.scalars(
            select(Rfa.code).join(model, model.rfa_id == Rfa.id).where(model.sha256 == sha256)
        ):
            uses.append(f"{kind} of {rfa_code}")
    for code, file_sha256 in db.execute(
        select(Package.code, Package.file_sha256).where(
            or_(Package.file_sha256 == sha256, Package.signature_sha256 == sha256)
        )
    ):
        uses.append(f"package {code}" + ("" if file_sha256 == sha256 else " (signature)"))
    for code in db.scalars(
        select(Package.code)
        .join(Recall, Recall.package_id == Package.id)
        .where(Recall.notice_sha256 == sha256)
    ):
        uses.append(f"recall notice of {code}")
    return sorted(uses)
