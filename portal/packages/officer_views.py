"""The legal officers' package pages: every package (or one request's), what a new package
from a request's latest decision would hold and why it cannot be made yet, the package page
(status, stage and progress, items and what assembly did to each, leak check, failure,
manifest summary), retry, clearing
unredactable items as-is, checks by eye of term marks that matched nothing (with the item's
original to read), and the four-eyes release.

Thin views over :mod:`portal.packages.lifecycle`; the assembly job is queued after the commit
through
:func:`portal.packages.assembly.jobs.jobs_for`. Recipients have their own pages
(portal.packages.recipient_views).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal import audit
from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.authz.roles import is_legal_officer
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db, transaction
from portal.eligibility.decisions import load_result
from portal.integrity.serving import require_intact
from portal.packages import lifecycle, release_previews
from portal.packages.assembly.item_report import ItemReport
from portal.packages.assembly.jobs import jobs_for, queue_release_statements
from portal.packages.lifecycle import (
    DEFAULT_EXPIRY_DAYS,
    MAX_DOWNLOAD_LIMIT,
    MAX_EXPIRY_DAYS,
    STATUS_LABELS,
    PackageRefused,
    clear_as_is,
    create_package,
    fail_package,
    plan_package,
    release_package,
    retry_package,
    stalled,
)
from portal.packages.mark_checks import (
    item_of_package,
    mark_of_package,
    record_checked_by_eye,
    record_pixels_checked_by_eye,
)
from portal.packages.models import Package, PackageItem
from portal.pages.forms import TokenForm
from portal.pages.http_methods import is_head
from portal.pages.numerals import whole_number
from portal.paging import page_number, paginate
from portal.registry.mark_terms import term_of
from portal.registry.models import Authority, Item, RedactionMark
from portal.rfa.models import Rfa
from portal.sealing import SealingError
from portal.state import portal_state

logger = logging.getLogger(__name__)

bp = Blueprint("packages", __name__, url_prefix="/packages")

#: Statuses in which the page refreshes itself (a <meta> refresh: no script under the CSP).
IN_PROGRESS = ("queued", "assembling")
_NOT_QUEUED = (
    "The job queue is unavailable, so assembly did not start; nothing was lost. Retry the "
    "package once the queue is back."
)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS}


def _redactable() -> frozenset[str]:
    return portal_state().policy.redactable_media_types


def _package_or_404(code: str) -> Package:
    return get_scoped_or_404(db(), Package, signed_in_user(), code=code)


def _enqueue(package: Package) -> bool:
    """Queue the assembly after the commit; a queue that cannot be reached fails the package
    with a reason (so it can be retried) rather than leaving it queued for ever."""
    try:
        jobs_for(current_app._get_current_object()).enqueue_assembly(package.id)  # type: ignore[attr-defined]
    except Exception:
        logger.exception("could not queue the assembly of %s", package.code)
        with transaction(portal_state().sessions) as session:
            fail_package(session, package.id, _NOT_QUEUED)
        return False
    return True


# --- lists -----------------------------------------------------------------------------------


@bp.get("")
@requires("package.view")
def index() -> str:
    me = signed_in_user()
    status = request.args.get("status", "").strip()
    stmt = scoped(Package, me)
    if status in STATUS_LABELS:
        stmt = stmt.where(Package.status == status)
    found = paginate(
        db(),
        stmt.order_by(Package.created_at.desc(), Package.id.desc()),
        page_number(request.args.get("page")),
    )
    packages = list(found.items)
    rfas = {
        r.id: r
        for r in db().scalars(select(Rfa).where(Rfa.id.in_([p.rfa_id for p in packages] or [0])))
    }
    authorities = {a.id: a for a in db().scalars(select(Authority))}
    return render_template(
        "packages/officer/index.html",
        packages=packages,
        found=found,
        rfas=rfas,
        authorities=authorities,
        status=status,
    )


def _render_rfa(rfa: Rfa, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    redactable = _redactable()
    plan = plan_package(db(), rfa, redactable)
    to_clear: list[Item] = []
    if plan.decision is not None:
        ids = [r.item_id for r in load_result(plan.decision).items]
        to_clear = [
            item
            for item in db().scalars(
                select(Item).where(Item.id.in_(ids or [0])).order_by(Item.code)
            )
            if item.media_type not in redactable and not item.cleared_as_is
        ]
    packages = list(
        db().scalars(
            scoped(Package, signed_in_user())
            .where(Package.rfa_id == rfa.id)
            .order_by(Package.id.desc())
        )
    )
    page = render_template(
        "packages/officer/rfa.html",
        rfa=rfa,
        authority=db().get(Authority, rfa.authority_id),
        plan=plan,
        to_clear=to_clear,
        packages=packages,
        can_create=is_legal_officer(signed_in_user()),
        error=error,
        form=TokenForm(),
    )
    return page, status


@bp.get("/requests/<rfa_code>")
@requires("package.view")
def for_rfa(rfa_code: str) -> tuple[str, int]:
    return _render_rfa(get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code))


@bp.post("/requests/<rfa_code>")
@requires("package.create")
def create(rfa_code: str) -> BaseResponse | tuple[str, int]:
    rfa = get_scoped_or_404(db(), Rfa, signed_in_user(), code=rfa_code)
    if not TokenForm().validate_on_submit():
        return _render_rfa(rfa, error="The form has expired; nothing was made.", status=400)
    if request.form.get("reviewed") != "yes":
        return _render_rfa(
            rfa,
            error="Confirm that you reviewed the items and their renditions.",
            status=400,
        )
    try:
        package = create_package(db(), rfa, _redactable(), by=signed_in_user())
    except PackageRefused as exc:
        db().rollback()
        return _render_rfa(rfa, error=f"No package was made: {exc}", status=409)
    db().commit()
    if _enqueue(package):
        flash(f"{package.code} is queued for assembly.", "success")
    else:
        flash(f"{package.code} was made but not queued: {_NOT_QUEUED}", "error")
    return redirect(url_for("packages.detail", package_code=package.code), 303)


@bp.post("/items/<int:item_id>/clear")
@requires("item.clear_as_is")
def clear_item(item_id: int) -> BaseResponse:
    item = get_scoped_or_404(db(), Item, signed_in_user(), id=item_id)
    back_code = request.form.get("rfa", "").strip()
    back = (
        url_for("packages.for_rfa", rfa_code=back_code)
        if back_code and db().scalar(scoped(Rfa, signed_in_user()).where(Rfa.code == back_code))
        else url_for("packages.index")
    )
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return redirect(back, 303)
    try:
        clear_as_is(db(), item, _redactable(), by=signed_in_user())
    except PackageRefused as exc:
        db().rollback()
        flash(f"Nothing was changed: {exc}", "error")
        return redirect(back, 303)
    db().commit()
    flash(
        f"{item.code} is cleared to be shared as-is; run the eligibility check again so the "
        "decision takes it into account.",
        "success",
    )
    return redirect(back, 303)


# --- one package -----------------------------------------------------------------------------


def _leak_rows(leak_check: Mapping[str, object] | None) -> list[tuple[str, str]]:
    """(file, what was found) per file of a leak check that did not pass: the mark codes of the
    protected terms found (never the terms: the assembler stores none), or why the file could
    not be read."""
    if not leak_check:
        return []
    found: dict[str, list[str]] = {}
    hits = leak_check.get("hits")
    for hit in hits if isinstance(hits, list) else []:
        if isinstance(hit, Mapping):
            codes = found.setdefault(str(hit.get("path", "")), [])
            code = str(hit.get("mark_code", ""))
            if code and code not in codes:
                codes.append(code)
    rows = [(path, "marks " + ", ".join(codes)) for path, codes in sorted(found.items())]
    unchecked = leak_check.get("unchecked")
    for entry in unchecked if isinstance(unchecked, list) else []:
        if isinstance(entry, Mapping):
            rows.append((str(entry.get("path", "")), f"not readable: {entry.get('reason', '')}"))
    return rows


def _identifiers_checked(leak_check: Mapping[str, object] | None) -> list[str] | None:
    """The codes of the protected identifiers every file was checked against (None for a
    package assembled before they were recorded)."""
    codes = leak_check.get("identifiers") if leak_check else None
    return [str(code) for code in codes] if isinstance(codes, list) else None


def _unmatched_terms(
    rows: Sequence[tuple[PackageItem, Item]], reports: Mapping[int, ItemReport]
) -> dict[tuple[str, str], str | None]:
    """(item code, mark code) -> the term, for the marks that matched nothing and wait for a
    check by eye: the legal officer must know what to look for (None when it cannot be
    opened). Only ever rendered for legal officers."""
    wanted = {(item.id, code): item.code for pi, item in rows for code in reports[pi.id].unmatched}
    if not wanted:
        return {}
    marks = db().scalars(
        select(RedactionMark).where(
            RedactionMark.item_id.in_({item_id for item_id, _ in wanted}),
            RedactionMark.code.in_({code for _, code in wanted}),
        )
    )
    terms: dict[tuple[str, str], str | None] = {}
    for mark in marks:
        item_code = wanted.get((mark.item_id, mark.code))
        if item_code is None:
            continue
        try:
            terms[(item_code, mark.code)] = term_of(portal_state().sealer, mark, item_code)
        except SealingError:
            terms[(item_code, mark.code)] = None
    return terms


def _render_detail(
    package: Package,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    rows = (
        db()
        .execute(
            select(PackageItem, Item)
            .join(Item, Item.id == PackageItem.item_id)
            .where(PackageItem.package_id == package.id)
            .order_by(Item.code)
        )
        .all()
    )
    people = [package.assembled_by_id, package.released_by_id]
    names = {
        u.id: u.display_name
        for u in db().scalars(select(User).where(User.id.in_([p for p in people if p] or [0])))
    }
    me = signed_in_user()
    is_stalled = stalled(package)
    reports = {pi.id: ItemReport.from_json(pi.report) for pi, _item in rows}
    officer = is_legal_officer(me)
    page = render_template(
        "packages/officer/detail.html",
        package=package,
        rfa=db().get(Rfa, package.rfa_id),
        authority=db().get(Authority, package.authority_id),
        rows=rows,
        names=names,
        leak_rows=_leak_rows(package.leak_check),
        reports=reports,
        unmatched_terms=_unmatched_terms(rows, reports) if officer else {},
        identifiers=_identifiers_checked(package.leak_check),
        refresh=package.status in IN_PROGRESS and not is_stalled,
        stalled=is_stalled,
        is_assembler=me.id == package.assembled_by_id,
        may_act=officer,
        total_redactions=sum(pi.redaction_count for pi, _item in rows),
        replacing=lifecycle.replacing(db(), package),
        replaced_by=lifecycle.replaced_by(db(), package),
        error=error,
        typed=typed or {},
        default_days=DEFAULT_EXPIRY_DAYS,
        max_days=MAX_EXPIRY_DAYS,
        max_limit=MAX_DOWNLOAD_LIMIT,
        form=TokenForm(),
    )
    return page, status


@bp.get("/<package_code>")
@requires("package.view")
def detail(package_code: str) -> tuple[str, int]:
    return _render_detail(_package_or_404(package_code))


def _whole_number(text: str, what: str) -> int:
    number = whole_number(text, maximum=999_999)
    if number is None:
        raise PackageRefused(f"Enter {what} as a whole number.")
    return number


@bp.post("/<package_code>/release")
@requires("package.release")
def release(package_code: str) -> BaseResponse | tuple[str, int]:
    package = _package_or_404(package_code)
    typed = {k: request.form.get(k, "") for k in ("expires_in_days", "download_limit")}
    if not TokenForm().validate_on_submit():
        return _render_detail(
            package, error="The form has expired; nothing was released.", status=400
        )
    if request.form.get("reviewed") != "yes":
        return _render_detail(
            package,
            error="Confirm that you reviewed the manifest summary and the leak check.",
            typed=typed,
            status=400,
        )
    try:
        days = _whole_number(typed["expires_in_days"], "the days until the package expires")
        limit_text = typed["download_limit"].strip()
        limit = _whole_number(limit_text, "the download limit") if limit_text else None
    except PackageRefused as exc:
        return _render_detail(package, error=str(exc), typed=typed, status=400)
    try:
        release_package(
            db(), package, by=signed_in_user(), expires_in_days=days, download_limit=limit
        )
    except PackageRefused as exc:
        db().rollback()
        return _render_detail(
            _package_or_404(package_code), error=f"Not released: {exc}", typed=typed, status=409
        )
    db().commit()
    queue_release_statements(current_app)  # the worker signs the release statement
    release_previews.prune(portal_state())  # its renditions were kept for this release only
    flash(f"{package.code} is released to the authority's recipients.", "success")
    return redirect(url_for("packages.detail", package_code=package.code), 303)


@bp.post("/<package_code>/retry")
@requires("package.retry")
def retry(package_code: str) -> BaseResponse:
    package = _package_or_404(package_code)
    target = url_for("packages.detail", package_code=package.code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return redirect(target, 303)
    try:
        retry_package(db(), package, by=signed_in_user())
    except PackageRefused as exc:
        db().rollback()
        flash(f"Nothing was changed: {exc}", "error")
        return redirect(target, 303)
    db().commit()
    if _enqueue(package):
        flash(f"{package.code} is queued for assembly again.", "success")
    else:
        flash(_NOT_QUEUED, "error")
    return redirect(target, 303)


def _check_by_eye(
    package_code: str, unconfirmed: str, record: Callable[[Package], str]
) -> BaseResponse:
    """The form of a check by eye: the token, the officer's confirmation (``unconfirmed``
    says what was not confirmed), then ``record`` (PackageRefused: nothing recorded; else the
    message to show), committed."""
    package = _package_or_404(package_code)
    target = url_for("packages.detail", package_code=package.code)
    if not TokenForm().validate_on_submit():
        flash("The form has expired; nothing was changed. Try again.", "error")
        return redirect(target, 303)
    if request.form.get("read") != "yes":
        flash(f"Nothing was recorded: confirm that you {unconfirmed}.", "error")
        return redirect(target, 303)
    try:
        message = record(package)
    except PackageRefused as exc:
        db().rollback()
        flash(f"Nothing was recorded: {exc}", "error")
        return redirect(target, 303)
    db().commit()
    flash(message, "success")
    return redirect(target, 303)


@bp.post("/<package_code>/items/<item_code>/marks/<mark_code>/checked-by-eye")
@requires("mark.check_by_eye")
def check_mark_by_eye(package_code: str, item_code: str, mark_code: str) -> BaseResponse:
    """Record that the officer read the item and the mark's term does not occur in it."""

    def record(package: Package) -> str:
        mark = mark_of_package(db(), package, item_code, mark_code)
        record_checked_by_eye(db(), mark, mark.item, by=signed_in_user())
        return f"Recorded: mark {mark.code} does not occur in {mark.item.code}. Retry the assembly."

    return _check_by_eye(
        package_code, "read the whole item and the term does not occur in it", record
    )


@bp.post("/<package_code>/items/<item_code>/pixels/checked-by-eye")
@requires("mark.check_by_eye")
def check_pixels_by_eye(package_code: str, item_code: str) -> BaseResponse:
    """Record that the officer read every page of the item, where OCR cannot be trusted, and
    no protected identifier shows in it beyond what its marks cover."""

    def record(package: Package) -> str:
        item = item_of_package(db(), package, item_code)
        record_pixels_checked_by_eye(db(), item, package, by=signed_in_user())
        return f"Recorded: you read {item.code} by eye. Retry the assembly."

    return _check_by_eye(
        package_code,
        "read every page of the item and no protected name or identifier shows in it beyond "
        "what its marks cover",
        record,
    )


@bp.get("/<package_code>/items/<item_code>/original")
@requires("item.read_original")
def item_original(package_code: str, item_code: str) -> BaseResponse:
    """The registered file of an item of the package, for a legal officer to read (always a
    download, never shown inline: the file is whatever the provider handed over); audited."""
    package = _package_or_404(package_code)
    try:
        item = item_of_package(db(), package, item_code)
    except PackageRefused:
        abort(404)
    path = portal_state().blobs.path(item.sha256)
    if path is None or not path.is_file():
        abort(404)
    require_intact(item.sha256)
    if not is_head():  # a HEAD sends no content: nothing was read
        audit.record(
            db(),
            audit.actor_label(signed_in_user()),
            "item.original_read",
            f"item:{item.code}",
            {"package": package.code},
        )
        db().commit()
    response = send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        # named by its code: the original name may name a protected person, and headers
        # travel through proxies and their logs
        download_name=item.code + PurePosixPath(item.original_filename or "").suffix[:12],
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
