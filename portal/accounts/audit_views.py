"""The admins' audit-log page: filters, pages, CSV export and the chain's verification.

Thin views over :mod:`portal.accounts.audit_log`, which decides what an admin may read (who did
what to which object and when, never case content). Admin pages stay English.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from portal.accounts import audit_log
from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.audit import head
from portal.authz.permissions import requires
from portal.db import db, utcnow
from portal.pages.forms import TokenForm
from portal.state import portal_state
from portal.transparency import checkpoints

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


@bp.get("")
@requires("audit.view")
def index() -> tuple[str, int]:
    session = db()
    query = audit_log.parse(request.args)
    found = audit_log.page_of(session, query)
    rows = list(found.items)
    check = audit_log.last_check(session)
    checked_by = session.get(User, check.checked_by_id) if check and check.checked_by_id else None
    page = render_template(
        "accounts/admin/audit.html",
        query=query,
        found=found,
        rows=[(row, *audit_log.safe_details(row.details)) for row in rows],
        names=audit_log.actor_names(session, rows),
        head=head(session),
        check=check,
        checked_by=checked_by,
        checkpoint=checkpoints.latest(session),
        form=TokenForm(),
    )
    return page, 400 if query.problems else 200


@bp.get("/export.csv")
@requires("audit.view")
def export() -> Response | tuple[str, int]:
    """The matching events as CSV, streamed row by row (the same safe subset as the page).
    The rows are read in a session of the stream's own, which lives exactly as long as the
    download, not the request."""
    query = audit_log.parse(request.args)
    if query.problems:
        return index()
    sessions = portal_state().sessions

    def lines() -> Iterator[str]:
        with sessions() as session:
            yield from audit_log.csv_lines(session, query)

    name = f"audit-log-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    return Response(
        lines(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/verify")
@requires("audit.verify")
def verify() -> BaseResponse:
    """Recompute the whole chain now and record the outcome (the page shows the last one)."""
    target = url_for("audit.index")
    if not TokenForm().validate_on_submit():
        flash("The form has expired; the chain was not verified. Try again.", "error")
        return redirect(target, 303)
    session = db()
    check = audit_log.run_check(session, by=signed_in_user())
    session.commit()
    if check.ok:
        flash(f"The audit chain is intact: {check.event_count} events verified.", "success")
    else:
        flash(f"The audit chain is broken at {check.reason}.", "error")
    return redirect(target, 303)
