"""Responses several views send alike."""

from __future__ import annotations

from flask import Response


def pdf_download(pdf: bytes, filename: str) -> Response:
    """A generated PDF as a download that no cache keeps (``filename``: ASCII, no quotes;
    the callers build it from codes)."""
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
