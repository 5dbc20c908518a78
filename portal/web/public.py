"""Pages anyone may see: the landing page and the health check."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, render_template
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.security.authz import public
from portal.web import db

logger = logging.getLogger(__name__)

bp = Blueprint("public", __name__)


@bp.get("/")
@public("landing page; becomes the signed-in dashboard with the login issue")
def index() -> str:
    return render_template("public/index.html")


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
