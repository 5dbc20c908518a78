"""The redaction review pages (legal officers): an item of a request seen page by page, its
marks drawn over the pages, where its terms occur, and the four-eyes steps — propose a term
or a box, move or re-reason a mark, confirm one or all, ask for a removal and agree to it.

Thin views over :mod:`portal.redaction.mark_review`. Page images are rendered by a worker
(:mod:`portal.redaction.page_images`, the ``render_pages`` job) and served from the cache;
a page not rendered yet is a placeholder the page's script (``static/js/review.js``) fills in
when it is ready, and a reload fills in without it. Drawing a box needs the script; the box
form with its four numbers works without. Terms are shown to legal officers on this page
and nowhere else: messages, history and audit name marks by code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404
from portal.db import db
from portal.packages.assembly.jobs import jobs_for
from portal.pages import labels
from portal.pages.forms import TokenForm
from portal.pages.numerals import whole_number
from portal.redaction import mark_review
from portal.redaction.found_names import FoundNames, current_search
from portal.redaction.hits import FoundHit, PageHits, hits_per_page
from portal.redaction.mark_review import REASONS, Box, MarkRefused
from portal.redaction.page_images import VIEWABLE, PageImageFailed, PageImages, page_count
from portal.redaction.page_responses import PREPARING, page_png, placeholder
from portal.registry.mark_terms import term_of
from portal.registry.models import Item, ItemPerson, Person, RedactionMark
from portal.rfa.models import Rfa, RfaItem
from portal.sealing import SealingError
from portal.state import portal_state

logger = logging.getLogger(__name__)

bp = Blueprint("review", __name__, url_prefix="/review")

#: Pages whose images are asked for at once when one is missing (the next few too).
PREFETCH = 4
APPLIES_LABELS = labels.MARK_APPLIES
ACTION_LABELS = {
    "imported": "Arrived by import",
    "proposed": "Proposed",
    "edited": "Changed",
    "confirmed": "Confirmed",
    "removal_requested": "Removal asked for",
    "removal_cancelled": "Removal request taken back",
    "removed": "Removed",
    "withdrawn": "Withdrawn by its proposer",
    "checked_by_eye": "Checked by eye",
}


@dataclass(frozen=True)
class Shown:
    """A mark as the page shows it: the row, its term (legal officers only) and its hits."""

    mark: RedactionMark
    term: str | None
    hits: Mapping[int, int]

    @property
    def overlay(self) -> tuple[float, float, float, float] | None:
        """x, y, width, height in the overlay's 0..1000 units, for a box."""
        m = self.mark
        if m.x0 is None or m.y0 is None or m.x1 is None or m.y1 is None:
            return None
        return (m.x0 * 1000, m.y0 * 1000, (m.x1 - m.x0) * 1000, (m.y1 - m.y0) * 1000)

    @property
    def on_page(self) -> int | None:
        return self.mark.page if self.mark.kind == "pdf_box" else 1


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


def _source(item: Item) -> Path:
    return portal_state().blobs.path(item.blob_key)


def _page_count(item: Item) -> int:
    if item.media_type not in VIEWABLE:
        return 0
    try:
        return page_count(_source(item), item.media_type)
    except PageImageFailed:
        return 0


def _names(ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db().execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {row.id: row.display_name for row in rows}


@bp.get("/<rfa_code>/items/<item_code>")
@requires("mark.review")
def item_page(rfa_code: str, item_code: str) -> tuple[str, int]:
    """The item, page by page, with its marks, their hits and history, and the forms."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    marks = (
        db()
        .scalars(
            select(RedactionMark).where(RedactionMark.item_id == item.id).order_by(RedactionMark.id)
        )
        .all()
    )
    sealer = portal_state().sealer
    terms: dict[str, str] = {}
    for mark in marks:
        try:
            term = term_of(sealer, mark, item.code)
        except SealingError:
            term = None
        if term is not None:
            terms[mark.code] = term
    found: PageHits = hits_per_page(_source(item), item.media_type, list(terms.items()))
    shown = [Shown(mark, terms.get(mark.code), found.get(mark.code, {})) for mark in marks]
    history = mark_review.history_of(db(), item)
    user = signed_in_user()
    names = _names(
        {m.proposed_by_id for m in marks}
        | {m.confirmed_by_id for m in marks}
        | {m.removal_requested_by_id for m in marks}
        | {e.actor_id for e in history}
    )
    searched = _found_names(item)
    pages = _page_count(item)
    cache = PageImages(portal_state().settings.page_cache_dir)
    ready = {page for page in range(1, pages + 1) if cache.cached(item.sha256, page)}
    text = None
    if item.media_type == "text/plain":
        text = _source(item).read_bytes()[:200_000].decode("utf-8", errors="replace")
    persons = (
        db()
        .scalars(
            select(Person)
            .join(ItemPerson, ItemPerson.person_id == Person.id)
            .where(ItemPerson.item_id == item.id)
            .order_by(Person.code)
        )
        .all()
    )
    return render_template(
        "redaction/review.html",
        rfa=rfa,
        item=item,
        marks=shown,
        history=history,
        names=names,
        user=user,
        pages=pages,
        ready=ready,
        searched=searched,
        text=text,
        persons=persons,
        reasons=REASONS,
        applies_labels=APPLIES_LABELS,
        action_labels=ACTION_LABELS,
        pending=[s for s in shown if s.mark.review == "pending"],
        can_draw=item.media_type in mark_review.BOX_MEDIA_TYPES and pages > 0,
        can_term=item.media_type in mark_review.TERM_MEDIA_TYPES,
        form=TokenForm(),
    ), 200


@bp.get("/<rfa_code>/items/<item_code>/pages/<int:page>.png")
@requires("mark.review")
def page_image(rfa_code: str, item_code: str, page: int) -> BaseResponse:
    """A page image from the cache, or a placeholder while the worker renders it."""
    _rfa, item = _rfa_item_or_404(rfa_code, item_code)
    if item.media_type not in VIEWABLE or page < 1:
        abort(404)
    cache = PageImages(portal_state().settings.page_cache_dir)
    cached = cache.cached(item.sha256, page)
    if cached is not None:
        return page_png(cached)
    try:
        jobs_for(current_app).render_pages(item.id, list(range(page, page + PREFETCH + 1)))
    except Exception:  # the queue is down: say "preparing" and let the page try again
        logger.exception("item %s page %s: could not queue its rendering", item.code, page)
    return placeholder(PREPARING, retry_after=2)


@dataclass(frozen=True)
class Searched:
    """The search of the item's pages for its terms and the register, as it stands."""

    state: str  # "none", "queued", "failed" or "done"
    hits: tuple[FoundHit, ...] = ()
    reason: str = ""

    def on_page(self, page: int) -> list[FoundHit]:
        return [hit for hit in self.hits if hit.page == page and hit.box is not None]

    def by_code(self) -> dict[str, list[int]]:
        """code -> the pages it was found on (sorted, once each)."""
        pages: dict[str, set[int]] = {}
        for hit in self.hits:
            pages.setdefault(hit.code, set()).add(hit.page)
        return {code: sorted(found) for code, found in sorted(pages.items())}


def _found_names(item: Item) -> Searched:
    store = FoundNames(portal_state().settings.found_names_dir)
    key = current_search(db(), item)
    found = store.load(item.sha256, key)
    if isinstance(found, dict):
        return Searched("failed", reason=found["failed"])
    if found is not None:
        return Searched("done", tuple(found))
    return Searched("queued" if store.queued(item.sha256, key) else "none")


@bp.post("/<rfa_code>/items/<item_code>/find")
@requires("mark.review")
def find_names(rfa_code: str, item_code: str) -> BaseResponse:
    """Queue the search of the item's pages (text and OCR) for its terms and the register."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return _back(rfa, item, "names")
    store = FoundNames(portal_state().settings.found_names_dir)
    store.mark_queued(item.sha256, current_search(db(), item))
    try:
        jobs_for(current_app).find_hits(item.id)
    except Exception:  # the queue is down: say so, nothing is lost
        logger.exception("item %s: could not queue the search for names", item.code)
        flash("The search could not be queued (the worker queue is unavailable).", "error")
        return _back(rfa, item, "names")
    flash(f"Searching {item.code} for names: reload the page in a moment.", "success")
    return _back(rfa, item, "names")


def _back(rfa: Rfa, item: Item, anchor: str = "marks") -> BaseResponse:
    target = url_for("review.item_page", rfa_code=rfa.code, item_code=item.code)
    return redirect(f"{target}#{anchor}", 303)


def _number(name: str) -> float:
    try:
        return float(request.form.get(name, ""))
    except ValueError:
        raise MarkRefused(
            "Give each corner of the box as a number from 0 to 1 (x0, y0 top left; x1, y1 "
            "bottom right)."
        ) from None


def _whole(name: str, what: str) -> int:
    number = whole_number(request.form.get(name))
    if number is None:
        raise MarkRefused(f"Give {what} as a whole number.")
    return number


def _box_from_form() -> Box:
    return Box(_number("x0"), _number("y0"), _number("x1"), _number("y1"))


def _act(rfa_code: str, item_code: str, step: Any, anchor: str = "marks") -> BaseResponse:
    """The shape of every form: token, the step (MarkRefused: nothing changed, said why),
    commit, the message, back to the page."""
    rfa, item = _rfa_item_or_404(rfa_code, item_code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return _back(rfa, item, anchor)
    try:
        message = step(item)
    except MarkRefused as exc:
        db().rollback()
        flash(f"Nothing was changed: {exc}", "error")
        return _back(rfa, item, anchor)
    db().commit()
    flash(message, "success")
    return _back(rfa, item, anchor)


def _mark(item: Item, mark_code: str) -> RedactionMark:
    return mark_review.mark_of_item(db(), item, mark_code)


@bp.post("/<rfa_code>/items/<item_code>/marks/term")
@requires("mark.propose")
def propose_term(rfa_code: str, item_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = mark_review.propose_term(
            db(),
            portal_state().sealer,
            item,
            request.form.get("term", ""),
            request.form.get("reason", ""),
            by=signed_in_user(),
            applies=request.form.get("applies", "always"),
            person_code=request.form.get("person") or None,
        )
        found = hits_per_page(
            _source(item), item.media_type, [(mark.code, request.form.get("term", ""))]
        ).get(mark.code, {})
        where = ", ".join(f"p. {page}: {count}" for page, count in sorted(found.items()))
        hits = (
            f"{sum(found.values())} hit(s) in the text ({where})" if found else "no hit in the text"
        )
        elsewhere = _elsewhere(rfa_code, item, mark.code, request.form.get("term", ""))
        return (
            f"Mark {mark.code} proposed: {hits}; {elsewhere}. Pages that are images are "
            "searched with OCR by the search of names and when the package is made. Another "
            "legal officer must confirm it."
        )

    return _act(rfa_code, item_code, step)


#: The other candidates searched at once for a new term (text and PDF text layers only).
ELSEWHERE_ITEMS = 100


def _elsewhere(rfa_code: str, item: Item, code: str, term: str) -> str:
    """How often ``term`` occurs in the text of the request's other candidate items."""
    others = (
        db()
        .scalars(
            select(Item)
            .join(RfaItem, RfaItem.item_id == Item.id)
            .join(Rfa, Rfa.id == RfaItem.rfa_id)
            .where(
                Rfa.code == rfa_code[:32],
                Item.id != item.id,
                Item.media_type.in_(("text/plain", "application/pdf")),
            )
            .order_by(Item.code)
            .limit(ELSEWHERE_ITEMS)
        )
        .all()
    )
    counts = []
    for other in others:
        found = hits_per_page(_source(other), other.media_type, [(code, term)]).get(code, {})
        if found:
            counts.append(f"{other.code} ({sum(found.values())})")
    if not counts:
        return f"no hit in the text of the request's {len(others)} other candidate item(s)"
    return "also in " + ", ".join(counts)


@bp.post("/<rfa_code>/items/<item_code>/marks/box")
@requires("mark.propose")
def propose_box(rfa_code: str, item_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        page = _whole("page", "the page") if item.media_type == "application/pdf" else None
        mark = mark_review.propose_box(
            db(),
            item,
            page,
            _box_from_form(),
            request.form.get("reason", ""),
            page_count=_page_count(item),
            by=signed_in_user(),
            applies=request.form.get("applies", "always"),
            person_code=request.form.get("person") or None,
        )
        return f"Box {mark.code} proposed. Another legal officer must confirm it."

    return _act(rfa_code, item_code, step)


@bp.post("/<rfa_code>/items/<item_code>/marks/<mark_code>/edit")
@requires("mark.propose")
def edit(rfa_code: str, item_code: str, mark_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = _mark(item, mark_code)
        moved = request.form.get("x0") is not None and mark.kind in ("pdf_box", "image_box")
        mark_review.edit_mark(
            db(),
            mark,
            item,
            version=_whole("version", "the version"),
            by=signed_in_user(),
            box=_box_from_form() if moved else None,
            page=_whole("page", "the page") if moved and mark.kind == "pdf_box" else None,
            page_count=_page_count(item),
            reason=request.form.get("reason") or None,
            applies=request.form.get("applies") or None,
        )
        return f"Mark {mark.code} changed; it waits for another legal officer's confirmation."

    return _act(rfa_code, item_code, step, f"mark-{mark_code}")


@bp.post("/<rfa_code>/items/<item_code>/marks/<mark_code>/confirm")
@requires("mark.confirm")
def confirm(rfa_code: str, item_code: str, mark_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = _mark(item, mark_code)
        mark_review.confirm_mark(
            db(), mark, item, version=_whole("version", "the version"), by=signed_in_user()
        )
        return f"Mark {mark.code} confirmed."

    return _act(rfa_code, item_code, step, f"mark-{mark_code}")


@bp.post("/<rfa_code>/items/<item_code>/marks/confirm-all")
@requires("mark.confirm")
def confirm_all(rfa_code: str, item_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        versions: dict[str, int] = {}
        for key, value in request.form.items():
            if key.startswith("seen-"):
                version = whole_number(value)
                if version is None:
                    raise MarkRefused("The list of marks you saw is damaged: reload.")
                versions[key.removeprefix("seen-")[:40]] = version
        confirmed, own = mark_review.confirm_all(db(), item, versions, by=signed_in_user())
        message = f"Confirmed: {', '.join(confirmed) or 'none'}."
        if own:
            message += f" Left for another legal officer (you proposed them): {', '.join(own)}."
        return message

    return _act(rfa_code, item_code, step)


@bp.post("/<rfa_code>/items/<item_code>/marks/<mark_code>/remove")
@requires("mark.propose")
def remove(rfa_code: str, item_code: str, mark_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = _mark(item, mark_code)
        code = mark.code
        gone = mark_review.request_removal(
            db(), mark, item, version=_whole("version", "the version"), by=signed_in_user()
        )
        if gone:
            return f"Mark {code} withdrawn (it was yours and never confirmed)."
        return f"Removal of {code} asked for: it still applies until another legal officer agrees."

    return _act(rfa_code, item_code, step)


@bp.post("/<rfa_code>/items/<item_code>/marks/<mark_code>/cancel-removal")
@requires("mark.propose")
def cancel_removal(rfa_code: str, item_code: str, mark_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = _mark(item, mark_code)
        mark_review.cancel_removal(db(), mark, item, by=signed_in_user())
        return f"Mark {mark.code} stays: the request to remove it is taken back."

    return _act(rfa_code, item_code, step, f"mark-{mark_code}")


@bp.post("/<rfa_code>/items/<item_code>/marks/<mark_code>/confirm-removal")
@requires("mark.confirm")
def confirm_removal(rfa_code: str, item_code: str, mark_code: str) -> BaseResponse:
    def step(item: Item) -> str:
        mark = _mark(item, mark_code)
        code = mark.code
        mark_review.confirm_removal(
            db(), mark, item, version=_whole("version", "the version"), by=signed_in_user()
        )
        return f"Mark {code} removed."

    return _act(rfa_code, item_code, step)
