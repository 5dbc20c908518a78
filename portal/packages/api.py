"""Packages and recalls over the API: list, read, download (Range, ETag), the detached
signature, acknowledgement of receipt, recall notices and their acknowledgement.

The same functions as the recipient's pages (:mod:`portal.packages.downloads`,
:mod:`portal.packages.recalls`), with the client acting as a recipient of its authority. A
download is recorded as a :class:`~portal.models.Download` naming the client
(``client_id``) and audited as ``api:<client_id>``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, jsonify, request
from sqlalchemy import select

from portal.api import shapes
from portal.api.blueprint import bp
from portal.api.principal import acting_user, current_client
from portal.api.problem import bad_json, conflict, invalid, problem
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404
from portal.db import db
from portal.integrity.serving import require_intact
from portal.packages import downloads, recalls
from portal.packages.file_responses import (
    issue_missing_notices,
    package_file,
    planned_download,
    recipient_package,
    signature_file,
)
from portal.packages.models import Package, Recall
from portal.pages.http_methods import is_head
from portal.rfa.models import Rfa
from portal.state import portal_state

MAX_ID = 2**31 - 1


def _package(code: str) -> Package:
    return recipient_package(acting_user(), code)


def _package_json(package: Package) -> dict[str, Any]:
    rfa_code = db().scalar(select(Rfa.code).where(Rfa.id == package.rfa_id))
    return shapes.package(package, rfa_code, downloads.full_downloads(db(), package.id))


def _refused(reason: str, title: str = "Download refused") -> Response:
    return problem(403, title, reason, kind="download-refused")


@bp.get("/packages")
@requires("api.packages.read")
def list_packages() -> Response:
    found = downloads.recipient_packages(db(), acting_user())
    return jsonify({"items": [_package_json(p) for p in found]})


@bp.get("/packages/<code>")
@requires("api.packages.read")
def get_package(code: str) -> Response:
    return jsonify(_package_json(_package(code)))


@bp.get("/packages/<code>/download")
@requires("api.packages.read")
def download(code: str) -> Response:
    """The encrypted package; Range, If-Range and If-None-Match as werkzeug answers them,
    then recorded exactly as sent (a 304 sends and records nothing)."""
    package = _package(code)
    me = acting_user()
    reason = downloads.refusal(package, me)
    if reason is not None or package.file_sha256 is None:
        return _refused(reason or "This package is not available for download.")
    path = portal_state().blobs.path(package.file_sha256)
    if not path.is_file():
        return problem(
            503,
            "Package unavailable",
            "The package file is not available on the portal at the moment. Try again later.",
            kind="package-unavailable",
        )
    require_intact(package.file_sha256)
    response = package_file(path, package)
    plan = planned_download(response)
    if plan is None:
        return response  # a HEAD or 304 sends no content: nothing is recorded
    try:
        record = downloads.record_download(db(), package, me, plan, address=request.remote_addr)
    except downloads.DownloadRefused as exc:
        response.close()
        db().commit()  # keeps the refusal's audit event
        return _refused(str(exc))
    record.client_id = current_client().client_id
    db().commit()
    return response


@bp.get("/packages/<code>/signature")
@requires("api.packages.read")
def signature(code: str) -> Response:
    """The detached OpenPGP signature over the encrypted package file."""
    package = _package(code)
    me = acting_user()
    reason = downloads.refusal(package, me)
    if reason is not None:
        return _refused(reason)
    blobs = portal_state().blobs
    if package.signature_sha256 is None or not blobs.exists(package.signature_sha256):
        return problem(
            503,
            "Signature unavailable",
            "The signature of this package is not available at the moment. Try again later.",
            kind="package-unavailable",
        )
    require_intact(package.signature_sha256)
    if not is_head():
        downloads.record_signature_download(db(), package, me, address=request.remote_addr)
        db().commit()
    return signature_file(blobs.path(package.signature_sha256), package)


@bp.post("/packages/<code>/acknowledge")
@requires("api.packages.ack")
def acknowledge(code: str) -> Response:
    """Confirm receipt (only after a download; once)."""
    package = _package(code)
    try:
        downloads.acknowledge_receipt(db(), package, acting_user())
    except downloads.AcknowledgementRefused as exc:
        db().rollback()
        return conflict(str(exc), "Acknowledgement refused")
    db().commit()
    return jsonify(_package_json(package))


# --- recalls -------------------------------------------------------------------------------


def _recall_json(recall: Recall, package_code: str) -> dict[str, Any]:
    notice = None
    if recall.notice_sha256:
        notice = recalls.notice_bytes(portal_state(), recall).decode("utf-8", "replace")
    return shapes.recall(recall, package_code, notice)


@bp.get("/recalls")
@requires("api.packages.read")
def list_recalls() -> Response:
    """The authority's recalls, unacknowledged first, each with its signed notice."""
    issue_missing_notices(acting_user())
    entries = recalls.recall_entries(db(), acting_user())
    return jsonify({"items": [_recall_json(e.recall, e.package.code) for e in entries]})


@bp.post("/recalls/<int:recall_id>/acknowledge")
@requires("api.packages.ack")
def acknowledge_recall(recall_id: int) -> Response:
    """Confirm the recalled material was ``returned`` or ``destroyed``."""
    if recall_id > MAX_ID:
        abort(404)
    recall = get_scoped_or_404(db(), Recall, acting_user(), id=recall_id)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return bad_json()
    disposition = data.get("disposition")
    if disposition not in recalls.DISPOSITIONS or set(data) - {"disposition"}:
        return invalid(
            {"disposition": ["Say whether the material was returned or destroyed."]},
        )
    try:
        recalls.acknowledge(db(), recall, acting_user(), disposition=str(disposition))
    except recalls.RecallError as exc:
        db().rollback()
        return conflict(f"Nothing was recorded: {exc}.", "Acknowledgement refused")
    db().commit()
    package_code = db().scalar(select(Package.code).where(Package.id == recall.package_id))
    return jsonify(_recall_json(recall, package_code or ""))
