"""The legal officer's triage pages: the queue, one request's officer actions (assignment,
status moves, candidate items, consent requests) and the repository search.

Views are thin: they parse the form or query string, call :mod:`portal.rfa.triage` or
:mod:`portal.rfa.search`, and turn :class:`~portal.rfa.triage.TriageError` into a message on the
page with what was typed kept. Requests load through authz scopes; drafts are a 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.consent.ledger import current_state
from portal.consent.models import ConsentRequest
from portal.db import db, utcnow
from portal.eligibility.decisions import latest_decision
from portal.pages import labels
from portal.pages.forms import TokenForm, query_date
from portal.pages.numerals import whole_number, whole_numbers
from portal.paging import Page, page_number
from portal.registry.models import ITEM_KINDS, Authority, Provider
from portal.rfa.models import URGENCY_LABELS, Rfa
from portal.rfa.officer_list import DUE_WINDOWS, SORTS, listing, parse
from portal.rfa.search import ItemQuery, SearchError, search
from portal.rfa.status import LABELS, next_states, status_label
from portal.rfa.triage import (
    BULK_MOVES,
    OPEN_STATUSES,
    QUEUE_STATUSES,
    QueueFilter,
    RowResult,
    TriageError,
    add_candidates,
    ask_for_consent,
    assign,
    bulk_assign,
    bulk_move,
    can_remove_candidates,
    candidate_ids,
    candidates,
    decide,
    flagged_for_recheck,
    missing_consent,
    officers,
    queue,
    remove_candidate,
    request_clarification,
    search_position,
    start_review,
)

bp = Blueprint("triage", __name__, url_prefix="/triage")

QUEUE_FILTER_KEYS = ("status", "authority", "assignee")
SEARCH_KEYS = ("title", "tags", "kind", "provider", "from", "to", "place")
KIND_LABELS = labels.ITEM_KIND


@bp.context_processor
def _template_labels() -> dict[str, Any]:
    """The labels of these pages only (``when``... are app-wide: :mod:`portal.pages.templating`)."""
    return {
        "status_label": status_label,
        "kind_labels": KIND_LABELS,
        "urgency_labels": URGENCY_LABELS,
    }


def _int_arg(name: str) -> int | None:
    return whole_number(request.args.get(name))


# --- queue -----------------------------------------------------------------------------------


@bp.get("")
@requires("triage.view")
def index() -> tuple[str, int]:
    me = signed_in_user()
    status = request.args.get("status", "").strip() or None
    assignee = request.args.get("assignee", "").strip() or None
    authority_text = request.args.get("authority", "").strip()
    wanted = QueueFilter(
        status=status,
        authority_id=whole_number(authority_text),
        assignee=assignee,
    )
    error = None
    found: Page[Rfa] | None = None
    try:
        if authority_text and wanted.authority_id is None:
            raise TriageError("Choose an authority from the list.")
        found = queue(db(), me, wanted, page=page_number(request.args.get("page")))
    except TriageError as exc:
        error = str(exc)
    authorities = list(db().scalars(scoped(Authority, me).order_by(Authority.name)))
    staff = officers(db())
    names = {u.id: u.display_name for u in staff}
    authority_names = {a.id: a.name for a in authorities}
    filters = {
        k: request.args[k] for k in ("status", "authority", "assignee") if request.args.get(k)
    }
    page = render_template(
        "rfa/triage/queue.html",
        rows=found.items if found is not None else [],
        found=found,
        filters=filters,
        wanted=wanted,
        error=error,
        statuses=QUEUE_STATUSES,
        authorities=authorities,
        authority_names=authority_names,
        officers=staff,
        names=names,
        me=me,
        form=TokenForm(),
        today=utcnow().date(),
        bulk_moves=BULK_MOVES,
    )
    return page, 400 if error else 200


@bp.post("/<rfa_code>/assign")
@requires("triage.act")
def assign_request(rfa_code: str) -> BaseResponse:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    back = request.form.get("back") == "queue"
    target = url_for("triage.index") if back else url_for("triage.detail", rfa_code=rfa.code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return redirect(target, 303)
    choice = request.form.get("assignee", "").strip()
    me = signed_in_user()
    assignee: User | None
    if choice == "me":
        assignee = me
    elif choice == "nobody":
        assignee = None
    elif (chosen := whole_number(choice)) is not None:
        assignee = db().get(User, chosen)
        if assignee is None:
            flash("Choose an officer from the list; nothing was changed.", "error")
            return redirect(target, 303)
    else:
        flash("Choose who the request is assigned to; nothing was changed.", "error")
        return redirect(target, 303)
    try:
        assign(db(), rfa, assignee, by=me)
    except TriageError as exc:
        db().rollback()
        flash(f"The request was not assigned: {exc}", "error")
        return redirect(target, 303)
    db().commit()
    who = "nobody" if assignee is None else assignee.display_name
    flash(f"{rfa.code} is assigned to {who}.", "success")
    return redirect(target, 303)


# --- bulk actions ----------------------------------------------------------------------------


def _bulk_done(action: str, results: list[RowResult], *, target: str) -> tuple[str, int]:
    """The per-row results page of a bulk action (committed rows first, refused ones after)."""
    moved = [r for r in results if r.done]
    page = render_template(
        "rfa/triage/bulk_result.html",
        action=action,
        target=target,
        results=results,
        moved=len(moved),
        refused=len(results) - len(moved),
    )
    return page, 200 if moved else 409


def _bulk_refused(message: str, status: int = 400) -> tuple[str, int]:
    return render_template(
        "rfa/triage/bulk_result.html",
        action="",
        target="",
        results=[],
        moved=0,
        refused=0,
        error=message,
    ), status


@bp.post("/bulk/assign")
@requires("triage.act")
def bulk_assign_requests() -> tuple[str, int]:
    """Assign the chosen requests, each in its own savepoint; the page lists every row's
    result (assigned, or refused with the reason). The rows assigned are committed."""
    if not TokenForm().validate_on_submit():
        return _bulk_refused("The form has expired; nothing was changed. Try again.")
    me = signed_in_user()
    choice = request.form.get("assignee", "").strip()
    assignee: User | None
    if choice == "me":
        assignee = me
    elif choice == "nobody":
        assignee = None
    elif (chosen := whole_number(choice)) is not None and (found := db().get(User, chosen)):
        assignee = found
    else:
        return _bulk_refused("Choose who the requests are assigned to; nothing was changed.")
    try:
        results = bulk_assign(db(), request.form.getlist("rfa"), assignee, by=me)
    except TriageError as exc:
        db().rollback()
        return _bulk_refused(f"Nothing was changed: {exc}")
    db().commit()
    who = "nobody" if assignee is None else assignee.display_name
    return _bulk_done("Assigned", results, target=f"assigned to {who}")


@bp.post("/bulk/status")
@requires("triage.act")
def bulk_move_requests() -> tuple[str, int]:
    """Move the chosen requests through the status machine, row by row (see
    :func:`bulk_assign_requests`)."""
    if not TokenForm().validate_on_submit():
        return _bulk_refused("The form has expired; nothing was changed. Try again.")
    to_status = request.form.get("to_status", "").strip()
    try:
        results = bulk_move(db(), request.form.getlist("rfa"), to_status, by=signed_in_user())
    except TriageError as exc:
        db().rollback()
        return _bulk_refused(f"Nothing was changed: {exc}")
    db().commit()
    return _bulk_done("Moved", results, target=f"moved to {status_label(to_status).lower()}")


# --- the officers' list of requests (GET /requests for legal officers) ----------------------


def officer_request_list() -> tuple[str, int]:
    """The requests page as legal officers see it: reference, authority, status, deadline and
    assignee; search, filters, sortable columns and pages (portal.rfa.officer_list). Rendered
    by ``requests.index`` for legal officers; requesters keep their own page."""
    me = signed_in_user()
    query = parse(request.args)
    found = listing(db(), me, query)
    rows = list(found.items)
    authorities = list(db().scalars(scoped(Authority, me).order_by(Authority.name)))
    staff = officers(db())
    page = render_template(
        "rfa/triage/requests.html",
        rows=rows,
        found=found,
        query=query,
        sorts=SORTS,
        due_windows=DUE_WINDOWS,
        statuses=[s for s in labels.RFA_STATUS if s != "draft"],
        authorities=authorities,
        authority_names={a.id: a.name for a in authorities},
        officers=staff,
        names={u.id: u.display_name for u in staff},
        me=me,
        today=utcnow().date(),
        bulk_moves=BULK_MOVES,
    )
    return page, 400 if query.problems else 200


# --- one request -----------------------------------------------------------------------------


def _render_detail(
    rfa: Rfa, *, error: str | None = None, typed: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    items = candidates(db(), rfa)
    states: dict[int, str] = {}
    by_provider: dict[int, list[int]] = {}
    for item in items:
        by_provider.setdefault(item.provider_id, []).append(item.id)
    for provider_id, ids in by_provider.items():
        for item_id, state in current_state(db(), provider_id, rfa.authority_id, ids).items():
            states[item_id] = state.status
    providers = {
        p.id: p
        for p in db().scalars(select(Provider).where(Provider.id.in_(list(by_provider) or [0])))
    }
    requests_made = list(
        db().scalars(
            select(ConsentRequest)
            .where(ConsentRequest.rfa_id == rfa.id)
            .order_by(ConsentRequest.created_at, ConsentRequest.id)
        )
    )
    page = render_template(
        "rfa/triage/detail.html",
        rfa=rfa,
        authority=db().get(Authority, rfa.authority_id),
        assignee=db().get(User, rfa.assigned_to_id) if rfa.assigned_to_id else None,
        officers=officers(db()),
        moves=next_states(rfa.status, "legal_officer"),
        decision=latest_decision(db(), rfa.id),
        items=items,
        states=states,
        flagged=flagged_for_recheck(db(), rfa.id),
        removable=can_remove_candidates(rfa),
        providers=providers,
        missing=missing_consent(db(), rfa),
        consent_requests=requests_made,
        all_providers={p.id: p for p in db().scalars(select(Provider))} if requests_made else {},
        error=error,
        typed=typed or {},
        form=TokenForm(),
    )
    return page, status


@bp.get("/<rfa_code>")
@requires("triage.view")
def detail(rfa_code: str) -> tuple[str, int]:
    return _render_detail(get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code))


@bp.post("/<rfa_code>/status")
@requires("triage.act")
def move(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    typed = {k: request.form.get(k, "") for k in ("message", "note", "outcome")}
    if not TokenForm().validate_on_submit():
        return _render_detail(
            rfa, error="The form has expired; nothing was changed.", typed=typed, status=400
        )
    action = request.form.get("action", "")
    me = signed_in_user()
    try:
        if action == "start_review":
            start_review(db(), rfa, by=me)
            done = "is in review"
        elif action == "clarify":
            request_clarification(db(), rfa, typed["message"], by=me)
            done = "awaits clarification from the requester"
        elif action == "decide":
            decide(db(), rfa, typed["outcome"], typed["note"], by=me)
            done = f"is {LABELS[rfa.status]}"
        else:
            return _render_detail(
                rfa, error="Choose what to do with the request.", typed=typed, status=400
            )
    except TriageError as exc:
        db().rollback()
        return _render_detail(rfa, error=f"Nothing was changed: {exc}", typed=typed, status=409)
    db().commit()
    flash(f"{rfa.code} {done}.", "success")
    return redirect(url_for("triage.detail", rfa_code=rfa.code), 303)


@bp.post("/<rfa_code>/candidates/remove")
@requires("triage.act")
def remove(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    if not TokenForm().validate_on_submit():
        return _render_detail(rfa, error="The form has expired; nothing was changed.", status=400)
    text = request.form.get("item_id", "").strip()
    try:
        item_id = whole_number(text)
        if item_id is None:
            raise TriageError("Choose the item to remove.")
        remove_candidate(db(), rfa, item_id, by=signed_in_user())
    except TriageError as exc:
        db().rollback()
        return _render_detail(rfa, error=str(exc), status=400)
    db().commit()
    if rfa.status in OPEN_STATUSES:
        flash("The item is no longer a candidate.", "success")
    else:
        flash(
            "The item is no longer a candidate. Run the eligibility check again before the "
            "next package.",
            "success",
        )
    return redirect(url_for("triage.detail", rfa_code=rfa.code) + "#candidates", 303)


@bp.post("/<rfa_code>/consent-requests")
@requires("triage.act")
def ask_consent(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    if not TokenForm().validate_on_submit():
        return _render_detail(rfa, error="The form has expired; nothing was changed.", status=400)
    try:
        made = ask_for_consent(db(), rfa, by=signed_in_user())
    except TriageError as exc:
        db().rollback()
        return _render_detail(rfa, error=str(exc), status=400)
    db().commit()
    flash(f"{len(made)} consent request(s) sent to providers.", "success")
    return redirect(url_for("triage.detail", rfa_code=rfa.code) + "#consent", 303)


# --- search ----------------------------------------------------------------------------------


def _date(name: str, errors: list[str]) -> date | None:
    which = "start" if name == "from" else "end"
    return query_date(name, errors, f"Enter the {which} date as YYYY-MM-DD.")


@bp.get("/<rfa_code>/search")
@requires("triage.view")
def search_items(rfa_code: str) -> tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    errors: list[str] = []
    kind = request.args.get("kind", "").strip() or None
    tags = tuple(t.strip() for t in request.args.get("tags", "").split(",") if t.strip())
    query = ItemQuery(
        title=request.args.get("title", ""),
        tags=tags,
        kind=kind,
        provider_id=_int_arg("provider"),
        collected_from=_date("from", errors),
        collected_to=_date("to", errors),
        place=request.args.get("place", ""),
    )
    args = {k: request.args[k] for k in SEARCH_KEYS if request.args.get(k, "").strip()}
    result = None
    position = None
    after = _int_arg("after")
    if not errors:
        try:
            result = search(db(), query, after=after)
            position = search_position(
                db(), query, result, after, page_number(request.args.get("page"))
            )
        except SearchError as exc:
            errors.append(str(exc))
    items = result.items if result is not None else []
    page = render_template(
        "rfa/triage/search.html",
        rfa=rfa,
        args=args,
        errors=errors,
        items=items,
        next_after=result.next_after if result is not None else None,
        position=position,
        chosen=candidate_ids(db(), rfa.id, [i.id for i in items]),
        providers=list(db().scalars(select(Provider).order_by(Provider.name))),
        kinds=ITEM_KINDS,
        query_string=urlencode(
            {**args, **({"after": request.args["after"]} if "after" in request.args else {})}
        ),
        form=TokenForm(),
    )
    return page, 400 if errors else 200


@bp.post("/<rfa_code>/candidates")
@requires("triage.act")
def add(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    kept = dict(parse_qsl(request.form.get("query", "")))
    back_args = {k: v for k, v in kept.items() if k in (*SEARCH_KEYS, "after")}
    back = url_for("triage.search_items", rfa_code=rfa.code)
    if back_args:
        back += "?" + urlencode(back_args)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was added. Try again.", "error")
        return redirect(back, 303)
    texts = request.form.getlist("item_id")
    try:
        item_ids = whole_numbers(texts)
        if item_ids is None:
            raise TriageError("Choose items from the results.")
        added = add_candidates(db(), rfa, item_ids, by=signed_in_user())
    except TriageError as exc:
        db().rollback()
        flash(f"Nothing was added: {exc}", "error")
        return redirect(back, 303)
    db().commit()
    flash(f"{added} item(s) added as candidates.", "success")
    return redirect(back, 303)
