"""Serving a package's files, shared by the recipients' pages and the JSON API.

werkzeug's ``send_file(conditional=True)`` answers Range, If-Range and If-None-Match; the
callers then record exactly what it is about to send (:func:`planned_download`).
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, request, send_file

from portal.downloads import DownloadPlan
from portal.models import Package


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


def planned_download(response: Response) -> DownloadPlan | None:
    """What ``response`` will send, or None when it sends no content (HEAD, 304, 416)."""
    if request.method == "HEAD" or response.status_code not in (200, 206):
        return None
    start = response.content_range.start if response.status_code == 206 else None
    return DownloadPlan(range_start=start, bytes_sent=response.content_length or 0)
