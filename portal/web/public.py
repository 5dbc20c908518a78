"""Pages anyone may see: the health check. (What the portal is and who uses it is on the
sign-in page, portal.accounts.signin_views; ``/`` is the signed-in dashboard.)"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.authz.permissions import public
from portal.db import db

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
