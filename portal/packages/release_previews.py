"""What the releasing officer sees: the renditions of an assembled package, page by page.

The bagged package is encrypted to the authority's recipients only, so the portal cannot open
it again. While the assembler still holds the renditions in its staging directory, it keeps
them here (:func:`keep`): a redacted rendition is hard-linked (or copied) into
``<data_dir>/previews/packages/<package code>/renditions/<sha256>``; a file shared as it is
needs no copy, its bytes are the registered blob. ``index.json`` lists each item's rendition
(sha256, media type, redacted or as-is, pages). Pages are rendered on demand by the worker
(the ``render_package_pages`` job) into ``pages/`` of the same directory, like the review's
page cache.

They are kept only while the package waits for its release: :func:`prune` deletes the
directory of every package that is no longer ``assembled`` (released, blocked by a consent
revocation, failed, queued again), and is run after a release, after a consent revocation and
when an assembly starts. The pages are never served for a package in any
other state, whatever is left on disk. Directories are 0700 and files 0600: they show evidence.
Nothing here knows Flask.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from portal.packages.models import Package
from portal.redaction.page_images import VIEWABLE, PageImageFailed, PageImages, page_count
from portal.redaction.renditions import atomic_output

if TYPE_CHECKING:
    from portal.packages.assembly.bag import BagEntry
    from portal.packages.assembly.facts import ItemEntry
    from portal.state import PortalState

__all__ = [
    "KEPT_WHILE",
    "KeptItem",
    "keep",
    "kept_items",
    "page_image",
    "prune",
    "render_pages",
    "text_of",
]

logger = logging.getLogger(__name__)

DIRECTORY = Path("previews") / "packages"  # under settings.data_dir
INDEX = "index.json"
RENDITIONS = "renditions"
PAGES = "pages"
KEPT_WHILE = "assembled"  # the package status the previews are kept (and shown) in
TEXT_SHOWN = 200_000  # characters of a text rendition shown on the page
_MODE = 0o700
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


@dataclass(frozen=True)
class KeptItem:
    """One item's rendition as bagged. ``pages`` is 0 for a file that is not shown as pages
    (text is shown as text; other formats not at all)."""

    code: str
    sha256: str
    media_type: str
    rendition: str  # "redacted" or "as_is"
    pages: int
    kept: bool  # its bytes are in the preview directory (else: the blob store's)


def _root(state: PortalState) -> Path:
    return state.settings.data_dir / DIRECTORY


def _directory(state: PortalState, package_code: str) -> Path:
    if not _CODE.fullmatch(package_code):
        raise ValueError("not a package code")
    return _root(state) / package_code


def _make_directories(state: PortalState, package_code: str) -> Path:
    """``previews/packages/<code>/renditions``, each level 0700 (``mkdir(parents=True)``
    would give the levels it makes the umask's mode)."""
    path = state.settings.data_dir
    for part in (*DIRECTORY.parts, package_code, RENDITIONS):
        path = path / part
        path.mkdir(mode=_MODE, exist_ok=True)
        os.chmod(path, _MODE)
    return path


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except FileExistsError:
        return
    except OSError:  # another file system, or links not allowed: copy (0600, then renamed)
        with atomic_output(dest) as out, source.open("rb") as handle:
            shutil.copyfileobj(handle, out)
        return
    os.chmod(dest, 0o600)


def keep(
    state: PortalState,
    package_code: str,
    items: Iterable[ItemEntry],
    entries: Iterable[BagEntry],
) -> None:
    """Keep the renditions of an assembled package for its releasing officer (the assembler
    calls this before its staging directory is removed). A failure here (a full disk) is
    logged and leaves no preview; it never fails the package."""
    directory = _directory(state, package_code)
    sources = {entry.path: entry.source for entry in entries}
    try:
        shutil.rmtree(directory, ignore_errors=True)  # an earlier assembly's
        _make_directories(state, package_code)
        index: dict[str, Any] = {}
        for item in items:
            kept = item.rendition == "redacted"
            path = sources[item.path]
            if kept:
                target = directory / RENDITIONS / item.sha256
                _link_or_copy(path, target)
                path = target
            index[item.code] = {
                "sha256": item.sha256,
                "media_type": item.media_type,
                "rendition": item.rendition,
                "pages": _pages(path, item.media_type),
                "kept": kept,
            }
        with atomic_output(directory / INDEX) as out:
            out.write(json.dumps({"items": index}, sort_keys=True).encode())
    except Exception as exc:  # by type only: a message could quote a path or a name
        logger.error(
            "package %s: its renditions could not be kept for the release preview: %s",
            package_code,
            type(exc).__name__,
        )
        shutil.rmtree(directory, ignore_errors=True)


def _pages(path: Path, media_type: str) -> int:
    if media_type not in VIEWABLE:
        return 0
    try:
        return page_count(path, media_type)
    except PageImageFailed:
        return 0


def kept_items(state: PortalState, package_code: str) -> dict[str, KeptItem]:
    """The kept renditions of the package by item code (empty when none were kept)."""
    try:
        found = json.loads((_directory(state, package_code) / INDEX).read_text("utf-8"))
        return {
            code: KeptItem(
                code=code,
                sha256=str(entry["sha256"]),
                media_type=str(entry["media_type"]),
                rendition=str(entry["rendition"]),
                pages=int(entry["pages"]),
                kept=bool(entry["kept"]),
            )
            for code, entry in found["items"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _file(state: PortalState, package_code: str, item: KeptItem) -> Path:
    if item.kept:
        return _directory(state, package_code) / RENDITIONS / item.sha256
    return state.blobs.path(item.sha256)


def _images(state: PortalState, package_code: str) -> PageImages:
    return PageImages(_directory(state, package_code) / PAGES)


def page_image(state: PortalState, package_code: str, item: KeptItem, page: int) -> Path | None:
    """The rendered PNG of a page, if the worker has rendered it."""
    if not 1 <= page <= item.pages:
        return None
    return _images(state, package_code).cached(item.sha256, page)


def render_pages(state: PortalState, package_code: str, item_code: str, pages: list[int]) -> None:
    """Render pages of a kept rendition (the worker's job; rendered ones are skipped)."""
    item = kept_items(state, package_code).get(item_code)
    if item is None:
        logger.info("package %s: no kept rendition of %s to render", package_code, item_code)
        return
    source = _file(state, package_code, item)
    images = _images(state, package_code)
    for page in dict.fromkeys(p for p in pages if 1 <= p <= item.pages):
        try:
            images.render(source, item.media_type, item.sha256, page)
        except (PageImageFailed, OSError) as failed:
            logger.warning(
                "package %s item %s page %s: no page image: %s",
                package_code,
                item_code,
                page,
                getattr(failed, "reason", type(failed).__name__),
            )


def text_of(state: PortalState, package_code: str, item: KeptItem) -> str | None:
    """The start of a text rendition (None for other formats or when it cannot be read)."""
    if item.media_type != "text/plain":
        return None
    try:
        with _file(state, package_code, item).open("r", encoding="utf-8", errors="replace") as f:
            return f.read(TEXT_SHOWN)
    except OSError:
        return None


def prune(state: PortalState) -> list[str]:
    """Delete the kept renditions of every package no longer waiting for its release; return
    the codes deleted."""
    root = _root(state)
    try:
        codes = [p.name for p in root.iterdir() if p.is_dir() and _CODE.fullmatch(p.name)]
    except OSError:  # none kept yet (or unreadable: nothing this can do)
        return []
    if not codes:
        return []
    with state.sessions() as db:
        statuses = dict(
            db.execute(select(Package.code, Package.status).where(Package.code.in_(codes))).all()
        )
    deleted = [code for code in codes if statuses.get(code) != KEPT_WHILE]
    for code in deleted:
        shutil.rmtree(root / code, ignore_errors=True)
        logger.info("package %s: its release preview was deleted", code)
    return deleted
