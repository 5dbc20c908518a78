"""A recipient's packages and their files, shared by the recipients' pages and the JSON API.

werkzeug's ``send_file(conditional=True)`` answers Range, If-Range and If-None-Match; the
callers then record exactly what it is about to send (:func:`planned_download`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flask import Response, abort, current_app, send_file

from portal.accounts.models import User
from portal.authz.scopes import get_scoped_or_404
from portal.db import db
from portal.packages import recalls
from portal.packages.assembly.jobs import queue_recall_notices, queue_release_statements
from portal.packages.downloads import RECIPIENT_STATUSES, DownloadPlan
from portal.packages.models import Package
from portal.packages.release_statement import download_name
from portal.pages.http_methods import is_head

logger = logging.getLogger(__name__)


def recipient_package(user: User, code: str) -> Package:
    """``user``'s authority's package by code; 404 for another authority's package, or one
    not released yet."""
    package = get_scoped_or_404(db(), Package, user, code=code[:32])
    if package.status not in RECIPIENT_STATUSES:
        abort(404)
    return package


def issue_missing_notices(user: User) -> None:
    """Recall notices that could not be signed when the revocation queued them (no key, gpg
    or the queue down) are queued again when the authority looks: the worker signs them, never
    the web process. Until then the page says the notice is not ready."""
    missing = [r for r in recalls.recalls_for(db(), user, pending_only=True) if not r.notice_sha256]
    if not missing:
        return
    queue_recall_notices(current_app)
    for recall in missing:  # an immediate queue signed them in its own session
        db().expire(recall)


#: ``app.extensions`` key: when (``time.monotonic``) a page last queued the statements.
_STATEMENTS_ASKED = "portal.release_statements_asked_at"
#: A page asks the worker again at most this often: one job signs every missing statement,
#: and with the worker down every page view would otherwise add another job to the queue.
STATEMENTS_ASKED_EVERY = 30.0


def issue_missing_statement(package: Package) -> None:
    """A released package whose release statement the worker has not signed yet (no key,
    gpg or the queue down when it was released) has it queued again when the authority looks
    (at most every :data:`STATEMENTS_ASKED_EVERY` seconds); until then the page says it is
    being prepared."""
    if package.released_at is None or package.release_statement_sha256:
        return
    now = time.monotonic()
    asked = current_app.extensions.get(_STATEMENTS_ASKED)
    if asked is not None and now - asked < STATEMENTS_ASKED_EVERY:
        return
    current_app.extensions[_STATEMENTS_ASKED] = now
    queue_release_statements(current_app)
    db().expire(package)  # an immediate queue signed it in its own session


def package_file(path: Path, package: Package) -> Response:
    """The encrypted package, resumable; its strong ETag is the file's sha256."""
    return send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"{package.code}.tar.gpg",
        conditional=True,
        etag=package.file_sha256 or False,
        last_modified=package.released_at,
        max_age=0,
    )


def signature_file(path: Path, package: Package) -> Response:
    """The detached OpenPGP signature over the encrypted package file."""
    return send_file(
        path,
        mimetype="application/pgp-signature",
        as_attachment=True,
        download_name=f"{package.code}.tar.gpg.sig",
        conditional=True,
        etag=package.signature_sha256 or False,
        max_age=0,
    )


def statement_file(path: Path, package: Package) -> Response:
    """The clearsigned release statement, named so ``portal-verify`` finds it beside the
    package file."""
    return send_file(
        path,
        mimetype="text/plain",
        as_attachment=True,
        download_name=download_name(package),
        conditional=True,
        etag=package.release_statement_sha256 or False,
        max_age=0,
    )


def planned_download(response: Response) -> DownloadPlan | None:
    """What ``response`` will send, or None when it sends no content (HEAD, 304, 416)."""
    if is_head() or response.status_code not in (200, 206):
        return None
    start = response.content_range.start if response.status_code == 206 else None
    return DownloadPlan(range_start=start, bytes_sent=response.content_length or 0)
