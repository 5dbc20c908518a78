"""Previews of an item's redacted rendition before assembly, page by page, with the leak check.

A legal officer reviewing an item of a request sees what assembly would put in the bag for
that request's authority under the request's latest eligibility decision: the rendition is
made by the function assembly uses (:func:`portal.redaction.renditions.redact`) with the
marks assembly uses (the decision's marks for the item, and the protected identifiers
withheld from the authority: :func:`portal.packages.assembly.assemble.item_marks`,
:func:`~portal.packages.assembly.assemble.withheld_marks`,
:func:`~portal.packages.assembly.assemble.redaction_marks`), never drawn over the page.
An item planned as-is stays as it is, unless assembly would redact it anyway (it names a
withheld identifier, or, when identifiers are withheld, an image carries a position).

The work runs in a worker (the ``make_preview`` job of
:mod:`portal.packages.assembly.jobs`): the rendition is written to
``<data_dir>/previews/<key>/rendition``, each of its pages is rendered to PNG with
:class:`~portal.redaction.page_images.PageImages` (under ``pages/``), and the leak check
(:func:`~portal.redaction.leakcheck.check_files`, pixels read with OCR) runs on the rendition
with the terms assembly would search the package for (every term of the decision's shared
items, the item's own protected text, the withheld identifiers). ``status.json`` records the
result: pages, the codes found on each page, done or failed and why — codes, never terms.

``key`` is the SHA-256 of what the rendition depends on: the item's content, the decision's
marks of every shared item (code, version, kind, page, box, span, reason), the codes of the
withheld identifiers and the policy revisions. A preview is reused while none of these
changes and made again when one does; the one it replaces is then deleted. Directories are
0700, files 0600 (they show evidence). Nothing here knows Flask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import aware_utc
from portal.eligibility.decisions import latest_decision, load_result
from portal.packages.assembly.assemble import (
    IMAGE_MEDIA_TYPES,
    REDACTED_WHEN_NAMED,
    CannotPrepare,
    marks_of,
    ocr_cache,
    redaction_marks,
    searchable,
    withheld_marks,
)
from portal.packages.lifecycle import SHARED_OUTCOMES
from portal.redaction.hits import hits_per_page
from portal.redaction.leakcheck import PixelReading, check_files
from portal.redaction.page_images import (
    MAX_IMAGE_SIDE,
    VIEW_DPI,
    PageImageFailed,
    PageImages,
    page_count,
)
from portal.redaction.positions import carries_position
from portal.redaction.renditions import (
    CannotRedact,
    MarkSpec,
    atomic_output,
    base_media_type,
    redact,
)
from portal.registry.models import Authority, Item, RedactionMark
from portal.rfa.models import Rfa, RfaItem
from portal.storage import BlobNotFound, DigestMismatch, file_sha256

if TYPE_CHECKING:
    from portal.state import PortalState

__all__ = [
    "DIRECTORY",
    "PagePreview",
    "Preview",
    "make_preview",
    "mark_queued",
    "page_image",
    "preview_state",
]

logger = logging.getLogger(__name__)

DIRECTORY = "previews"  # under settings.data_dir
FORMAT = 1  # of the key and status file: a change makes every preview again
#: A "queued" status older than this is taken as lost (the job never ran): make it again.
QUEUED_SECONDS = 15 * 60
STATUS = "status.json"
CURRENT = "current"  # current/<rfa id>-<item id>: the key of the item's latest preview
RENDITION = "rendition"
PAGES = "pages"
_MODE = 0o700
_PAGE = re.compile(r"\b(?:page|frame) (\d+)\b")

State = Literal["refused", "none", "queued", "done", "failed"]


@dataclass(frozen=True)
class PagePreview:
    """One page of a preview and the codes the leak check found on it."""

    number: int
    hits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What the page shows: ``state`` and, when done, the pages with their hits; ``reason``
    when refused or failed; ``file_hits`` the (code, layer) found where no page is known
    (metadata, raw bytes); ``unchecked`` what the leak check could not read; ``unmatched``
    marks that found nothing (they block assembly until checked by eye)."""

    state: State
    reason: str = ""
    key: str = ""
    rendition: str = ""  # "redacted" or "as_is"
    pages: tuple[PagePreview, ...] = ()
    file_hits: tuple[tuple[str, str], ...] = ()
    unchecked: tuple[str, ...] = ()
    unmatched: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        """Whether the leak check's result would block the package."""
        return bool(self.file_hits or self.unchecked or any(p.hits for p in self.pages))


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Plan:
    """What the preview is made from (terms in memory only: never logged or shown)."""

    key: str
    item_code: str
    source_sha256: str
    media_type: str
    rendition: Literal["redacted", "as_is"]
    pixels_checked: bool
    marks: tuple[MarkSpec, ...] = field(repr=False)
    withheld: tuple[MarkSpec, ...] = field(repr=False)
    # the term marks of the decision's other shared items: the package's leak check has them
    other_terms: tuple[tuple[str, str], ...] = field(repr=False)


# --------------------------------------------------------------------------- planning


def _fingerprint(mark: RedactionMark) -> list[Any]:
    return [
        mark.code,
        mark.version,
        mark.kind,
        mark.page,
        [mark.x0, mark.y0, mark.x1, mark.y1],
        [mark.span_start, mark.span_end],
        mark.reason,
    ]


def _plan(state: PortalState, db: Session, rfa_id: int, item_id: int, moment: datetime) -> _Plan:
    rfa = db.get(Rfa, rfa_id)
    item = db.get(Item, item_id)
    if rfa is None or item is None:
        raise _Refused("The request or the item no longer exists.")
    candidate = db.scalar(
        select(RfaItem.id).where(RfaItem.rfa_id == rfa.id, RfaItem.item_id == item.id)
    )
    if candidate is None:
        raise _Refused(f"{item.code} is not a candidate item of {rfa.code}.")
    decision = latest_decision(db, rfa.id)
    if decision is None:
        raise _Refused(
            "There is no eligibility decision for this request; run the check first: the "
            "preview shows what the decision allows."
        )
    results = {r.item_id: r for r in load_result(decision).items if r.outcome in SHARED_OUTCOMES}
    result = results.get(item.id)
    if result is None:
        raise _Refused(
            f"The latest decision does not share {item.code}, so nothing of it would be "
            "bagged; there is nothing to preview."
        )
    pending = db.scalars(
        select(RedactionMark.code)
        .where(RedactionMark.item_id == item.id, RedactionMark.review == "pending")
        .order_by(RedactionMark.code)
    ).all()
    if pending:
        raise _Refused(
            f"Mark(s) {', '.join(pending)} of {item.code} are still pending; a second legal "
            "officer must confirm them (and the check be run again) before a preview."
        )
    redactable = state.policy.redactable_media_types
    can_redact = item.media_type in redactable
    if result.marks and not can_redact:
        raise _Refused(f"{item.code} ({item.media_type}) has marks but cannot be redacted.")
    redacted = bool(result.marks) or (can_redact and result.outcome == "share_redacted")
    if not redacted and not can_redact and not item.cleared_as_is:
        raise _Refused(
            f"{item.code} ({item.media_type}) cannot be redacted and has not been cleared "
            "as-is; it cannot be bagged."
        )
    authority = db.get(Authority, rfa.authority_id)
    if authority is None:
        raise _Refused("The request's authority no longer exists.")
    marks: dict[int, dict[str, RedactionMark]] = defaultdict(dict)
    for mark in db.scalars(
        select(RedactionMark).where(RedactionMark.item_id.in_(list(results) or [0]))
    ):
        marks[mark.item_id][mark.code] = mark
    try:
        withheld = withheld_marks(state, db, authority, moment)
        own = marks_of(state.sealer, item.code, result.marks, marks[item.id])
        others: list[tuple[str, str]] = []
        codes = {i.id: i.code for i in db.scalars(select(Item).where(Item.id.in_(list(results))))}
        for other_id, other in results.items():
            if other_id == item.id:
                continue
            specs = marks_of(state.sealer, codes[other_id], other.marks, marks[other_id])
            others.extend((s.code, s.term) for s in specs if s.kind == "term" and s.term)
    except CannotPrepare as exc:
        raise _Refused(exc.reason) from None
    facts = {
        "format": FORMAT,
        "item": item.sha256,
        "media_type": item.media_type,
        "rendition": "redacted" if redacted else "as_is",
        "pixels_checked": item.pixels_checked_at is not None,
        "marks": {
            str(shared_id): [_fingerprint(marks[shared_id][code]) for code in shared.marks]
            for shared_id, shared in sorted(results.items())
        },
        "withheld": [mark.code for mark in withheld],
        "policy": [decision.policy_revision, state.policy.revision],
        "view": [VIEW_DPI, MAX_IMAGE_SIDE],
    }
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    return _Plan(
        key=key,
        item_code=item.code,
        source_sha256=item.sha256,
        media_type=item.media_type,
        rendition="redacted" if redacted else "as_is",
        pixels_checked=item.pixels_checked_at is not None,
        marks=own,
        withheld=withheld,
        other_terms=tuple(others),
    )


# --------------------------------------------------------------------------- files


def _root(state: PortalState) -> Path:
    return state.settings.data_dir / DIRECTORY


def _directory(state: PortalState, key: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise ValueError("a preview key is 64 hexadecimal digits")
    return _root(state) / key


def _make_directory(state: PortalState, key: str) -> Path:
    root = _root(state)
    root.mkdir(mode=_MODE, parents=True, exist_ok=True)
    directory = _directory(state, key)
    directory.mkdir(mode=_MODE, exist_ok=True)
    return directory


def _write_status(directory: Path, status: Mapping[str, Any]) -> None:
    with atomic_output(directory / STATUS) as out:  # mkstemp (0600), then rename
        out.write(json.dumps(status, sort_keys=True).encode())


def _read_status(directory: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((directory / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


# --------------------------------------------------------------------------- reading


def preview_state(
    state: PortalState, db: Session, rfa_id: int, item_id: int, *, now: datetime | None = None
) -> Preview:
    """The preview of the item as it stands now: refused (why), none yet, queued, done or
    failed (why)."""
    try:
        plan = _plan(state, db, rfa_id, item_id, aware_utc(now))
    except _Refused as refused:
        return Preview("refused", reason=refused.reason)
    status = _read_status(_directory(state, plan.key))
    base = Preview("none", key=plan.key, rendition=plan.rendition)
    if status is None:
        return base
    kind = status.get("state")
    if kind == "queued":
        if time.time() - float(status.get("queued_at", 0)) > QUEUED_SECONDS:
            return base
        return Preview("queued", key=plan.key, rendition=plan.rendition)
    if kind == "failed":
        return Preview(
            "failed", reason=str(status.get("reason", "")), key=plan.key, rendition=plan.rendition
        )
    if kind != "done":
        return base
    hits = status.get("page_hits", {})
    return Preview(
        "done",
        key=plan.key,
        rendition=plan.rendition,
        pages=tuple(
            PagePreview(n, tuple(hits.get(str(n), ()))) for n in range(1, status["pages"] + 1)
        ),
        file_hits=tuple((str(c), str(w)) for c, w in status.get("file_hits", ())),
        unchecked=tuple(str(reason) for reason in status.get("unchecked", ())),
        unmatched=tuple(str(code) for code in status.get("unmatched", ())),
    )


def mark_queued(state: PortalState, key: str) -> None:
    """Record that the preview ``key`` was asked for (the page shows "being made")."""
    directory = _make_directory(state, key)
    status = _read_status(directory)
    if status is not None and status.get("state") == "done":
        return
    _write_status(directory, {"state": "queued", "queued_at": time.time()})


def page_image(state: PortalState, key: str, page: int) -> Path | None:
    """The PNG of page ``page`` of the finished preview ``key``, if there is one."""
    directory = _directory(state, key)
    status = _read_status(directory)
    if status is None or status.get("state") != "done" or not 1 <= page <= status["pages"]:
        return None
    return PageImages(directory / PAGES).cached(str(status["rendition_sha256"]), page)


# --------------------------------------------------------------------------- making


def make_preview(state: PortalState, rfa_id: int, item_id: int) -> Preview:
    """Make the preview of the item (the worker's job); a finished one of the same key is
    reused. Never raises for what it can say: the reason is recorded in the status file."""
    with state.sessions() as db:
        try:
            plan = _plan(state, db, rfa_id, item_id, aware_utc(None))
        except _Refused as refused:
            logger.info("preview of item %s for request %s refused", item_id, rfa_id)
            return Preview("refused", reason=refused.reason)
    directory = _make_directory(state, plan.key)
    status = _read_status(directory)
    if status is None or status.get("state") != "done":
        try:
            status = _make(state, plan, directory)
        except (CannotRedact, CannotPrepare, PageImageFailed) as exc:
            status = {"state": "failed", "reason": f"{plan.item_code}: {exc.reason}"}
        except ValueError as exc:  # the leak check refuses a term too short (names its code)
            status = {"state": "failed", "reason": f"The leak check could not run: {exc}"}
        except Exception as exc:  # recorded by type only: a message could quote the file
            logger.error("preview of %s failed: %s", plan.item_code, type(exc).__name__)
            status = {
                "state": "failed",
                "reason": f"The preview could not be made ({type(exc).__name__}); try again, "
                "and tell the administrators if it fails again.",
            }
        _write_status(directory, status)
    _supersede(state, rfa_id, item_id, plan.key)
    with state.sessions() as db:
        return preview_state(state, db, rfa_id, item_id)


def _supersede(state: PortalState, rfa_id: int, item_id: int, key: str) -> None:
    """Make ``key`` the item's current preview for the request and delete the one it replaces
    (``current/<rfa id>-<item id>`` holds the key): previews show evidence, so none is kept
    longer than it can be shown."""
    pointer = _root(state) / CURRENT / f"{int(rfa_id)}-{int(item_id)}"
    try:
        before = pointer.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        before = ""
    if before == key:
        return
    pointer.parent.mkdir(mode=_MODE, exist_ok=True)
    with atomic_output(pointer) as out:
        out.write(key.encode("ascii"))
    if re.fullmatch(r"[0-9a-f]{64}", before):
        shutil.rmtree(_directory(state, before), ignore_errors=True)


def _found_named(state: PortalState, plan: _Plan, source: Path) -> bool:
    """Whether assembly would redact the item planned as-is (see the module notes)."""
    media_type = base_media_type(plan.media_type)
    if not plan.withheld:
        return False
    if media_type in IMAGE_MEDIA_TYPES and carries_position(source):
        return True
    if media_type not in REDACTED_WHEN_NAMED:
        return False
    found = check_files(
        [(RENDITION, source)],
        [(mark.code, mark.term or "") for mark in plan.withheld],
        pixels=PixelReading(
            ocr_cache(state), frozenset({RENDITION}) if plan.pixels_checked else frozenset()
        ),
    )
    return bool(found.hits)


def _make(state: PortalState, plan: _Plan, directory: Path) -> dict[str, Any]:
    source = state.blobs.path(plan.source_sha256)
    try:
        state.blobs.verify(plan.source_sha256)  # a preview of damaged bytes would mislead
    except BlobNotFound:
        raise CannotPrepare("the stored file is missing from the blob store") from None
    except DigestMismatch:
        raise CannotPrepare(
            "the stored file is damaged: it no longer matches its registered sha256; "
            "it must be restored from a backup"
        ) from None
    dest = directory / RENDITION
    terms: list[tuple[str, str]] = [(m.code, m.term or "") for m in plan.withheld]
    terms.extend(plan.other_terms)
    unmatched: list[str] = []
    rendition = plan.rendition
    if rendition == "as_is" and _found_named(state, plan, source):
        rendition = "redacted"
    if rendition == "redacted":
        outcome = redact(
            source,
            plan.media_type,
            redaction_marks(plan.media_type, plan.marks, plan.withheld),
            dest,
            matcher=searchable(plan.withheld),
            ocr_cache=ocr_cache(state),
        )
        media_type = outcome.media_type
        terms.extend(outcome.protected_terms)
        own = {mark.code for mark in plan.marks}
        unmatched = [a.code for a in outcome.applied if a.code in own and not a.occurrences]
    else:
        with atomic_output(dest) as out, source.open("rb") as handle:
            shutil.copyfileobj(handle, out)
        media_type = base_media_type(plan.media_type)
        terms.extend((m.code, m.term) for m in plan.marks if m.kind == "term" and m.term)
    terms = list(dict.fromkeys(terms))
    digest, _ = file_sha256(dest)
    pages = page_count(dest, media_type)
    images = PageImages(directory / PAGES)
    for page in range(1, pages + 1):
        images.render(dest, media_type, digest, page)
    leak = check_files(
        [(RENDITION, dest)],
        terms,
        pixels=PixelReading(
            ocr_cache(state), frozenset({RENDITION}) if plan.pixels_checked else frozenset()
        ),
    )
    page_hits: dict[int, set[str]] = defaultdict(set)
    file_hits: set[tuple[str, str]] = set()
    in_text: set[str] = set()
    for hit in leak.hits:
        match = _PAGE.search(hit.where)
        if match:
            page_hits[int(match.group(1))].add(hit.mark_code)
        elif hit.where == "pixels":  # an image's only frame
            page_hits[1].add(hit.mark_code)
        elif hit.where == "text":
            in_text.add(hit.mark_code)
        else:
            file_hits.add((hit.mark_code, hit.where))
    located: set[str] = set()
    for code, counts in hits_per_page(
        dest, media_type, [(c, t) for c, t in terms if c in in_text]
    ).items():
        for page in counts:
            page_hits[page].add(code)
            located.add(code)
    file_hits.update((code, "text") for code in in_text - located)
    return {
        "state": "done",
        "rendition": rendition,
        "media_type": media_type,
        "rendition_sha256": digest,
        "pages": pages,
        "page_hits": {str(page): sorted(codes) for page, codes in sorted(page_hits.items())},
        "file_hits": sorted(file_hits),
        "unchecked": [reason for _, reason in leak.unchecked],
        "unmatched": sorted(unmatched),
        "checked_terms": len(terms),
    }
