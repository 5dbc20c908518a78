"""The preview page (legal officers): an item of a request as assembly would bag it for the
request's authority under its latest decision, page by page, with the leak check per page.

Thin views over :mod:`portal.packages.previews`. The preview is made by a worker (the
``make_preview`` job); while it is queued or being made the page refreshes itself (a meta
refresh: no script). Page images are served with ``Cache-Control: private`` (endpoint
``preview.page_image``).
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
    send_file,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404
from portal.db import db
from portal.packages import previews
from portal.packages.assembly.jobs import jobs_for
from portal.pages.forms import TokenForm
from portal.registry.models import Item
from portal.rfa.models import Rfa, RfaItem
from portal.state import portal_state

logger = logging.getLogger(__name__)

bp = Blueprint("preview", __name__, url_prefix="/preview")

REFRESH_SECONDS = 3
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="850" height="1100" viewBox="0 0 850 1100">'
    '<rect width="850" height="1100" fill="#f3f3f3"/>'
    '<text x="425" y="550" font-family="sans-serif" font-size="28" text-anchor="middle" '
    'fill="#555">No current preview: reload the page</text></svg>'
)


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
        response = current_app.response_class(PLACEHOLDER, mimetype="image/svg+xml")
        response.headers["Cache-Control"] = "no-store"
        return response
    found = previews.page_image(state, preview.key, page)
    if found is None:
        abort(404)
    response = send_file(found, mimetype="image/png", max_age=3600, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
