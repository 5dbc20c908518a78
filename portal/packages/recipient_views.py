"""The receiving authority's pages: its packages, downloads (resumable), the detached
signature, acknowledgement of receipt, and recall notices.

Views are thin over :mod:`portal.packages.downloads` and :mod:`portal.packages.recalls`. Packages
are loaded through the authz scope, so another authority's package is a 404, as is one still
being prepared. Downloads go through werkzeug's ``send_file(conditional=True)``, which
answers Range, If-Range and If-None-Match; the view then records exactly what werkzeug
is about to send.

Two app-wide hooks keep recalls in front of the recipient: the first page after signing
in is the recall page while any recall is unacknowledged, and every page shows a banner
until then (``templates/packages/recipient/_recall_banner.html``, included by ``base.html``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import PUBLIC, declared_permission, requires
from portal.authz.roles import is_recipient
from portal.authz.scopes import get_scoped_or_404
from portal.consent.models import Consent
from portal.consent.validity import last_valid_day
from portal.db import db, utcnow
from portal.integrity.serving import require_intact
from portal.packages import downloads, lifecycle, recalls
from portal.packages.file_responses import (
    issue_missing_notices,
    issue_missing_statement,
    package_file,
    planned_download,
    recipient_package,
    signature_file,
    statement_file,
)
from portal.packages.models import Package, PackageItem, Recall
from portal.pages.errors import error_response
from portal.pages.http_methods import is_head
from portal.pages.i18n import N_, Translated, refusal, translate
from portal.paging import page_number, paginate
from portal.registry.models import Authority, Item
from portal.rfa.models import Rfa
from portal.state import portal_state

bp = Blueprint("recipient", __name__, url_prefix="/received")
#: Packages a page of the recipient's list shows, newest release first (a phone's screenful
#: or two; an authority receives hundreds over the years).
RECIPIENT_PAGE_SIZE = 25

#: Set in the browser session once the post-sign-in recall check has run.
RECALLS_CHECKED = "recalls_checked"
RECALL_ENDPOINTS = frozenset({"recipient.recalls_page", "recipient.notice"})


def _package(code: str) -> Package:
    return recipient_package(signed_in_user(), code)


def _refused(reason: str, title: str = N_("Download refused")) -> BaseResponse:
    """A 403 page saying why, in the reader's language (``reason`` a domain refusal)."""
    return error_response(403, title=translate(title), message=translate(reason))


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"status_labels": Translated(downloads.STATUS_LABELS)}


# --- recalls in front of everything ------------------------------------------------------


def _pending_recalls() -> int:
    if not has_request_context() or not current_user.is_authenticated:
        return 0
    if not is_recipient(current_user):
        return 0
    if "pending_recalls" not in g:
        g.pending_recalls = recalls.pending_count(db(), signed_in_user())
    return int(g.pending_recalls)


def _recall_acknowledged(package_id: int) -> bool:
    """For the provider's "where my material went" page (which lists only packages
    holding the provider's own items)."""
    return recalls.all_acknowledged(db(), package_id)


#: The officers' package pages (``/packages/PKG-2026-0001``...) a recipient may be sent a link to.
_STAFF_PACKAGE_PAGES = frozenset({"packages"})
_PACKAGE_CODE = re.compile(r"PKG-\d{4}-\d{4,6}")


def _staff_page_help() -> str | None:
    """For a recipient refused one of the officers' package pages: where the same package
    would be on their own pages if it was sent to their authority. Made from the address
    alone, never from the database, so the answer is the same whether or not the package
    exists or is theirs (``templates/packages/recipient/_staff_link.html``)."""
    if not has_request_context() or not current_user.is_authenticated:
        return None
    if not is_recipient(current_user) or request.blueprint not in _STAFF_PACKAGE_PAGES:
        return None
    code = (request.view_args or {}).get("package_code", "")
    if isinstance(code, str) and _PACKAGE_CODE.fullmatch(code):
        return url_for("recipient.detail", package_code=code)
    return url_for("recipient.index")


@bp.app_context_processor
def _banner() -> dict[str, Any]:
    return {
        "pending_recalls": _pending_recalls,
        "recall_acknowledged": _recall_acknowledged,
        "staff_page_help": _staff_page_help,
    }


@dataclass(frozen=True)
class SharingCondition:
    """What a provider's consent to one item of the package asks of the recipient."""

    item_code: str
    conditions: str
    valid_until: str | None  # the grant's last valid day, ISO


def _sharing_conditions(package: Package) -> list[SharingCondition]:
    """The conditions of the consent events the package's items were shared on (as the
    transmittal letter lists them), in item order."""
    rows = db().execute(
        select(Item.code, Consent.conditions, Consent.expires_at)
        .join(PackageItem, PackageItem.item_id == Item.id)
        .join(Consent, Consent.id == PackageItem.consent_id)
        .where(PackageItem.package_id == package.id)
        .order_by(Item.code)
    )
    return [
        SharingCondition(
            code, text.strip(), last_valid_day(expires).isoformat() if expires else None
        )
        for code, text, expires in rows
        if text.strip() or expires is not None
    ]


@bp.before_app_request
def _recalls_first() -> BaseResponse | None:
    """The first page a recipient opens after signing in is the recall page while any
    recall is unacknowledged (the sign-in clears the browser session, so the flag is
    fresh for every sign-in)."""
    endpoint = request.endpoint or ""
    if (
        request.method != "GET"
        or endpoint in ("", "static")
        or endpoint.startswith(("auth.", "api"))
        or declared_permission(current_app.view_functions.get(endpoint)) == PUBLIC
        or not current_user.is_authenticated
        or not is_recipient(current_user)
        or session.get(RECALLS_CHECKED)
    ):
        return None
    if not is_head():  # a HEAD changes nothing, not even this flag
        session[RECALLS_CHECKED] = True
    if endpoint not in RECALL_ENDPOINTS and _pending_recalls():
        return redirect(url_for("recipient.recalls_page"))
    return None


# --- packages ------------------------------------------------------------------------------


@bp.get("")
@requires("recipient.view")
def index() -> str:
    me = signed_in_user()
    now = utcnow()
    found = paginate(
        db(),
        downloads.recipient_packages_query(me),
        page_number(request.args.get("page")),
        size=RECIPIENT_PAGE_SIZE,
    )
    packages = found.items
    counts = downloads.full_download_counts(db(), [p.id for p in packages])
    rows = [(p, downloads.effective_status(p, now), counts[p.id]) for p in packages]
    return render_template("packages/recipient/index.html", rows=rows, found=found)


@bp.get("/<package_code>")
@requires("recipient.view")
def detail(package_code: str) -> str:
    me = signed_in_user()
    package = _package(package_code)
    issue_missing_statement(package)
    authority = db().get(Authority, package.authority_id)
    acknowledged_by = (
        db().get(User, package.acknowledged_by_id) if package.acknowledged_by_id else None
    )
    counted, fetched = downloads.download_counts(db(), package.id)
    return render_template(
        "packages/recipient/detail.html",
        package=package,
        authority=authority,
        rfa=db().get(Rfa, package.rfa_id),
        conditions=_sharing_conditions(package),
        status=downloads.effective_status(package),
        refusal=translate(downloads.refusal(package, me)) or None,
        counted=counted,
        downloaded=fetched > 0,
        acknowledged_by=acknowledged_by,
        recalls=recalls.recall_entries(db(), me, package_id=package.id),
        replacing=lifecycle.replacing(db(), package),
        replaced_by=lifecycle.replaced_by(db(), package, released_only=True),
    )


@bp.get("/<package_code>/download")
@requires("recipient.download")
def download(package_code: str) -> BaseResponse:
    me = signed_in_user()
    package = _package(package_code)
    reason = downloads.refusal(package, me)
    if reason is not None or package.file_sha256 is None:
        return _refused(reason or N_("This package is not available for download."))
    path = portal_state().blobs.path(package.file_sha256)
    if not path.is_file():
        return _refused(
            N_(
                "The package file is not available on the portal at the moment. Contact the "
                "Mechanism."
            ),
            title=N_("Package unavailable"),
        )
    require_intact(package.file_sha256)
    # 416 (range out of bounds) propagates as an error page with Content-Range.
    response = package_file(path, package)
    plan = planned_download(response)
    if plan is None:
        return response  # 304 Not Modified or a HEAD: nothing is sent, nothing recorded
    try:
        downloads.record_download(db(), package, me, plan, address=request.remote_addr)
    except downloads.DownloadRefused as exc:
        response.close()
        db().commit()  # keeps the refusal's audit event
        return _refused(exc.args[0] if exc.args else str(exc))
    db().commit()
    return response


@bp.get("/<package_code>/signature")
@requires("recipient.download")
def signature(package_code: str) -> BaseResponse:
    me = signed_in_user()
    package = _package(package_code)
    reason = downloads.refusal(package, me)
    if reason is not None:
        return _refused(reason)
    blobs = portal_state().blobs
    if package.signature_sha256 is None or not blobs.exists(package.signature_sha256):
        return _refused(
            N_("The signature of this package is not available. Contact the Mechanism."),
            title=N_("Signature unavailable"),
        )
    require_intact(package.signature_sha256)
    if not is_head():  # a HEAD sends no content: nothing to record (as the API)
        downloads.record_signature_download(db(), package, me, address=request.remote_addr)
        db().commit()
    return signature_file(blobs.path(package.signature_sha256), package)


@bp.get("/<package_code>/release-statement")
@requires("recipient.download")
def release_statement(package_code: str) -> BaseResponse:
    """The release statement, signed by the worker after the release: the same rules as the
    detached signature (a package the recipient may not download, it may not take either)."""
    me = signed_in_user()
    package = _package(package_code)
    reason = downloads.refusal(package, me)
    if reason is not None:
        return _refused(reason)
    issue_missing_statement(package)  # queued again when missing (immediate: signed now)
    key = package.release_statement_sha256
    if key is None or not portal_state().blobs.exists(key):
        return error_response(
            404,
            title=gettext("Release statement being prepared"),
            message=gettext(
                "The signed release statement of this package is being prepared. Open the "
                "package page again shortly."
            ),
        )
    require_intact(key)
    return statement_file(portal_state().blobs.path(key), package)


@bp.post("/<package_code>/acknowledge")
@requires("recipient.acknowledge")
def acknowledge(package_code: str) -> BaseResponse:
    package = _package(package_code)
    target = url_for("recipient.detail", package_code=package.code)
    if request.form.get("confirm") != "yes":
        flash(gettext("Tick the box to confirm receipt. Nothing was recorded."), "error")
        return redirect(target, 303)
    try:
        downloads.acknowledge_receipt(db(), package, signed_in_user())
        db().commit()
    except downloads.AcknowledgementRefused as exc:
        db().rollback()
        flash(refusal(exc), "error")
        return redirect(target, 303)
    flash(
        gettext(
            "Receipt of %(code)s acknowledged. The Mechanism has been told.", code=package.code
        ),
        "success",
    )
    return redirect(target, 303)


# --- recalls -------------------------------------------------------------------------------


@bp.get("/recalls")
@requires("recipient.recalls")
def recalls_page() -> str:
    me = signed_in_user()
    issue_missing_notices(me)
    entries = recalls.recall_entries(db(), me)
    replacements = {
        e.package.id: lifecycle.replaced_by(db(), e.package, released_only=True) for e in entries
    }
    return render_template(
        "packages/recipient/recalls.html", entries=entries, replacements=replacements
    )


@bp.get("/recalls/<int:recall_id>/notice")
@requires("recipient.recalls")
def notice(recall_id: int) -> BaseResponse:
    recall = get_scoped_or_404(db(), Recall, signed_in_user(), id=recall_id)
    if not recall.notice_sha256:
        return error_response(
            404,
            title=gettext("Notice not ready"),
            message=gettext(
                "The recall notice has not been issued yet. Open the recalls page again shortly."
            ),
        )
    package = db().get(Package, recall.package_id)
    name = f"{package.code if package else 'package'}-recall-{recall.id}.txt.asc"
    require_intact(recall.notice_sha256)
    return send_file(
        portal_state().blobs.path(recall.notice_sha256),
        mimetype="text/plain",
        as_attachment=True,
        download_name=name,
        etag=recall.notice_sha256,
        max_age=0,
    )


@bp.post("/recalls/<int:recall_id>/acknowledge")
@requires("recipient.recalls_acknowledge")
def acknowledge_recall(recall_id: int) -> BaseResponse:
    recall = get_scoped_or_404(db(), Recall, signed_in_user(), id=recall_id)
    target = url_for("recipient.recalls_page")
    disposition = request.form.get("disposition", "")
    if disposition not in recalls.DISPOSITIONS:
        flash(
            gettext("Say whether the material was returned or destroyed. Nothing was recorded."),
            "error",
        )
        return redirect(target, 303)
    try:
        recalls.acknowledge(db(), recall, signed_in_user(), disposition=disposition)
        db().commit()
    except recalls.RecallError as exc:
        db().rollback()
        flash(gettext("Nothing was recorded: %(reason)s.", reason=refusal(exc)), "error")
        return redirect(target, 303)
    flash(
        gettext("Recall acknowledged. The Mechanism and the information provider have been told."),
        "success",
    )
    return redirect(target, 303)
