"""Pages anyone may see: the health (liveness) and readiness checks. (What the portal is and
who uses it is on the sign-in page, portal.accounts.signin_views; ``/`` is the signed-in
dashboard.)"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.authz.permissions import public
from portal.db import db
from portal.web.readiness import readiness

logger = logging.getLogger(__name__)

bp = Blueprint("public", __name__)


@bp.get("/healthz")
@public("load balancers and monitors poll it; it says only ok or error")
def healthz() -> tuple[Response, int]:
    """Report whether the portal can reach its database (for load balancers and monitors).

    The reason given to the caller is fixed; the exception goes to the server log only.
    """
    try:
        db().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # One line, no traceback: monitors poll often. Driver messages carry no passwords.
        logger.warning("Health check failed: database unavailable: %s", exc)
        return jsonify(status="error", reason="database unavailable"), 503
    return jsonify(status="ok"), 200


@bp.get("/readyz")
@public("monitors poll it; it gives statuses and numbers only, no paths, hosts or names")
def readyz() -> tuple[Response, int]:
    """Whether the portal can do its work (200) or not (503), check by check."""
    checks = readiness()
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return jsonify(body), 200 if ready else 503
