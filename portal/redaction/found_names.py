"""The names found on an item's pages, kept for the review page: what the ``find_hits`` job
found (:func:`portal.redaction.hits.locate_hits`) for one set of terms, by item content and a
key over what was searched for (mark codes and versions, identifier codes), so a change of
marks or of the register asks for a new search. Entries hold codes, pages and boxes, never a
term; they are written atomically, 0600 in 0700 directories.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.redaction.hits import FoundHit, locate_hits
from portal.redaction.ocr import OcrCache, OcrFailed
from portal.redaction.renditions import atomic_output
from portal.registry.identifiers import current_identifier_rows, current_identifiers
from portal.registry.mark_terms import term_of
from portal.registry.models import Item, RedactionMark
from portal.sealing import SealingError

if TYPE_CHECKING:
    from portal.state import PortalState

logger = logging.getLogger(__name__)

__all__ = ["FoundNames", "current_search", "search_item", "search_key"]


def search_key(marks: Iterable[tuple[str, int]], identifiers: Iterable[str]) -> str:
    """The key of a search for term marks (code, version) and register identifiers (code)."""
    wanted = {"marks": sorted(marks), "identifiers": sorted(identifiers)}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


class FoundNames:
    """Searches per item, under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, sha256: str, key: str, suffix: str) -> Path:
        return self.directory / sha256[:2] / sha256 / f"{key}.{suffix}"

    def load(self, sha256: str, key: str) -> list[FoundHit] | dict[str, str] | None:
        """The hits of that search, ``{"failed": reason}``, or None when not made yet."""
        path = self._path(sha256, key, "json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(data, dict) and "failed" in data:
            return {"failed": str(data["failed"])}
        return [
            FoundHit(h["code"], h["page"], tuple(h["box"]) if h["box"] else None, h["how"])
            for h in data
        ]

    def save(self, sha256: str, key: str, found: list[FoundHit] | str) -> None:
        """Keep the hits (or the reason the search failed)."""
        path = self._path(sha256, key, "json")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shown: object = (
            {"failed": found}
            if isinstance(found, str)
            else [{"code": h.code, "page": h.page, "box": h.box, "how": h.how} for h in found]
        )
        with atomic_output(path) as out:
            out.write(json.dumps(shown).encode())
        self._path(sha256, key, "queued").unlink(missing_ok=True)

    def mark_queued(self, sha256: str, key: str) -> None:
        path = self._path(sha256, key, "queued")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)

    def queued(self, sha256: str, key: str) -> bool:
        return self._path(sha256, key, "queued").exists()


def _term_marks(db: Session, item: Item) -> list[RedactionMark]:
    return list(
        db.scalars(
            select(RedactionMark)
            .where(RedactionMark.item_id == item.id, RedactionMark.kind == "term")
            .order_by(RedactionMark.code)
        )
    )


def current_search(db: Session, item: Item) -> str:
    """The key of a search for the item's term marks and the register as they are now
    (codes and versions only: nothing is unsealed)."""
    marks = [(mark.code, mark.version) for mark in _term_marks(db, item)]
    return search_key(marks, (row.code for row in current_identifier_rows(db)))


def search_item(state: PortalState, item_id: int) -> None:
    """The ``find_hits`` job: search the item for its term marks and every current register
    identifier, text and pixels, and keep the result under the current key."""
    store = FoundNames(state.settings.found_names_dir)
    with state.sessions() as db:
        item = db.get(Item, item_id)
        if item is None:
            logger.warning("item %s: no such item; no names searched", item_id)
            return
        key = current_search(db, item)
        sha256, media_type, code = item.sha256, item.media_type, item.code
        try:
            terms = [
                (mark.code, term)
                for mark in _term_marks(db, item)
                if (term := term_of(state.sealer, mark, item.code)) is not None
            ]
            terms += current_identifiers(db, state.sealer)
        except SealingError as exc:  # names a code or the key file, never a value
            store.save(sha256, key, f"the register or a mark could not be opened: {exc}")
            return
    source = state.blobs.path(sha256)
    try:
        found = locate_hits(
            source,
            media_type,
            terms,
            ocr_cache=OcrCache(state.settings.ocr_cache_dir, state.sealer),
        )
    except OcrFailed as failed:
        store.save(sha256, key, f"its pixels could not be read with OCR ({failed.reason})")
        return
    store.save(sha256, key, found)
    logger.info("item %s: %d hit(s) of its marks and the register", code, len(found))
