"""The preview page (legal officers): an item of a request as assembly would bag it for the
request's authority under its latest decision, page by page, with the leak check per page.

Thin views over :mod:`portal.packages.previews`. The preview is made by a worker (the
``make_preview`` job); while it is queued or being made the page refreshes itself (a meta
refresh: no script). Page images are served with ``Cache-Control: private`` (endpoint
``preview.page_image``).

The releasing officer's view of an assembled package (``preview.package_item``): each item's
rendition as it was bagged, kept by the assembler until the release
(:mod:`portal.packages.release_previews`), its pages rendered on demand by the worker.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404
from portal.db import db
from portal.packages import previews, release_previews
from portal.packages.assembly.jobs import jobs_for
from portal.packages.models import Package, PackageItem
from portal.pages.forms import TokenForm
from portal.redaction.page_responses import PREPARING, page_png, placeholder
from portal.registry.models import Item
from portal.rfa.models import Rfa, RfaItem
from portal.state import portal_state

logger = logging.getLogger(__name__)

bp = Blueprint("preview", __name__, url_prefix="/preview")

REFRESH_SECONDS = 3


def _rfa_item_or_404(rfa_code: str, item_code: str) -> tuple[Rfa, Item]:
    """The request (as the officer may see it) and one of its candidate items."""
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code[:32])
    item = db().scalar(
        select(Item)
        .join(RfaItem, RfaItem.item_id == Item.id)
        .where(RfaItem.rfa_id == rfa.id, Item.code == item_code[:40])
    )
    if item is None:
        abort(404)
    return rfa, item


@bp.get("/<rfa_code>/items/<item_code>")
@requires("mark.review")
def item_page(rfa_code: str, item_code: str) -> tuple[str, int]:
    """The preview's state: refused (why), none yet, being made, failed (why) or the pages."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    preview = previews.preview_state(portal_state(), db(), rfa.id, item.id)
    return render_template(
        "packages/preview.html",
        rfa=rfa,
        item=item,
        preview=preview,
        refresh=REFRESH_SECONDS if preview.state == "queued" else None,
        form=TokenForm(),
    ), 200


@bp.post("/<rfa_code>/items/<item_code>/make")
@requires("mark.review")
def make(rfa_code: str, item_code: str) -> BaseResponse:
    """Queue the preview's making (nothing to do when it is up to date)."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    target = url_for("preview.item_page", rfa_code=rfa.code, item_code=item.code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was queued. Try again.", "error")
        return redirect(target, 303)
    state = portal_state()
    preview = previews.preview_state(state, db(), rfa.id, item.id)
    if preview.state == "refused":
        flash(f"No preview: {preview.reason}", "error")
        return redirect(target, 303)
    if preview.state in ("done", "queued"):
        return redirect(target, 303)
    previews.mark_queued(state, preview.key)
    try:
        jobs_for(current_app).make_preview(rfa.id, item.id)
    except Exception:
        logger.exception("item %s: could not queue its preview", item.code)
        flash("The preview could not be queued; try again in a moment.", "error")
        return redirect(target, 303)
    flash("The preview is being made; this page shows it when it is ready.", "success")
    return redirect(target, 303)


@bp.get("/<rfa_code>/items/<item_code>/pages/<int:page>.png")
@requires("mark.review")
def page_image(rfa_code: str, item_code: str, page: int) -> BaseResponse:
    """A page of the finished, current preview (404 when it has no such page); a placeholder
    when the preview is not made yet or no longer current."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    state = portal_state()
    preview = previews.preview_state(state, db(), rfa.id, item.id)
    if preview.state != "done":  # changed since the page was shown, or not made yet
        return placeholder("No current preview: reload the page")
    found = previews.page_image(state, preview.key, page)
    if found is None:
        abort(404)
    return page_png(found)


PREFETCH = 4  # pages asked for at once when one is missing (the next few too)


def _assembled_item_or_404(
    package_code: str, item_code: str
) -> tuple[Package, Item, release_previews.KeptItem | None]:
    """An item of a package waiting for its release, and its kept rendition if there is one.
    404 for a package in any other state: its renditions are not kept beyond the release."""
    package = get_scoped_or_404(db(), Package, signed_in_user(), code=package_code[:32])
    if package.status != release_previews.KEPT_WHILE:
        abort(404)
    item = db().scalar(
        select(Item)
        .join(PackageItem, PackageItem.item_id == Item.id)
        .where(PackageItem.package_id == package.id, Item.code == item_code[:40])
    )
    if item is None:
        abort(404)
    kept = release_previews.kept_items(portal_state(), package.code).get(item.code)
    return package, item, kept


@bp.get("/packages/<package_code>/items/<item_code>")
@requires("package.release")
def package_item(package_code: str, item_code: str) -> tuple[str, int]:
    """An item of an assembled package as bagged: its pages, or its text."""
    package, item, kept = _assembled_item_or_404(package_code, item_code)
    state = portal_state()
    ready: set[int] = set()
    text = None
    if kept is not None:
        text = release_previews.text_of(state, package.code, kept)
        ready = {
            page
            for page in range(1, kept.pages + 1)
            if release_previews.page_image(state, package.code, kept, page) is not None
        }
    return render_template(
        "packages/package_preview.html",
        package=package,
        rfa=db().get(Rfa, package.rfa_id),
        item=item,
        kept=kept,
        ready=ready,
        text=text,
        items=sorted(release_previews.kept_items(state, package.code)),
    ), 200


@bp.get("/packages/<package_code>/items/<item_code>/pages/<int:page>.png")
@requires("package.release")
def package_page_image(package_code: str, item_code: str, page: int) -> BaseResponse:
    """A page of an assembled rendition, or a placeholder while the worker renders it."""
    package, item, kept = _assembled_item_or_404(package_code, item_code)
    if kept is None or not 1 <= page <= kept.pages:
        abort(404)
    state = portal_state()
    found = release_previews.page_image(state, package.code, kept, page)
    if found is not None:
        return page_png(found)
    try:
        jobs_for(current_app).render_package_pages(
            package.code, item.code, list(range(page, min(page + PREFETCH, kept.pages) + 1))
        )
    except Exception:  # the queue is down: say "preparing" and let the page try again
        logger.exception("package %s: could not queue a page of %s", package.code, item.code)
    return placeholder(PREPARING, retry_after=2)
