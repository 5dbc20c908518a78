"""Eligibility pages for legal officers: requests, checks, decisions (page and PDF), and
the authorities' assessments.

Views are thin: they load rows through :mod:`portal.authz.scopes`, call
:func:`portal.eligibility.decisions.run_check` or the read functions beside it, and render
:class:`portal.eligibility.decision_view.DecisionView`. Everything here is for staff;
only legal officers run checks (``rfa.check``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from portal import audit
from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import User
from portal.authz.permissions import requires
from portal.authz.scopes import get_scoped_or_404, scoped
from portal.db import db, utcnow
from portal.eligibility.decision_pdf import decision_pdf, decision_pdf_filename
from portal.eligibility.decision_view import (
    ITEM_OUTCOME_LABELS,
    REQUEST_OUTCOME_LABELS,
    build_decision_view,
)
from portal.eligibility.decisions import (
    CheckRefused,
    changes_since_previous,
    decision_history,
    latest_decision,
    load_result,
    run_check,
)
from portal.eligibility.models import Decision
from portal.eligibility.policy import ITEM_OUTCOMES, Policy
from portal.pages.forms import TokenForm
from portal.pages.responses import pdf_download
from portal.paging import page_number
from portal.registry.models import ASSESSMENT_CRITERIA, Assessment, Authority
from portal.rfa.models import Rfa, RfaItem
from portal.rfa.status import status_label
from portal.state import portal_state

bp = Blueprint("eligibility", __name__, url_prefix="/eligibility")

REQUESTS_PER_PAGE = 50
ROWS_PER_PAGE = 100
HISTORY_SHOWN = 100
#: The rule of the sharing policy whose ``max_age`` applies to each assessment criterion.
CRITERION_RULES = {
    "fair_trial": "fair-trial",
    "death_penalty": "no-death-penalty",
    "witness_protection": "witness-protection",
}


@bp.context_processor
def _template_labels() -> dict[str, Any]:
    """The labels of these pages only (``can``, ``when``... are app-wide:
    :mod:`portal.pages.templating`)."""
    return {
        "request_outcome_labels": REQUEST_OUTCOME_LABELS,
        "item_outcome_labels": ITEM_OUTCOME_LABELS,
        "status_label": status_label,
    }


def _page_number() -> int:
    """``?page=N`` (1 when missing or not a positive number)."""
    return page_number(request.args.get("page"))


def _names(user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of the staff who ran checks (a label on staff-only pages)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = db().execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


def _requester(names: Mapping[int, str], user_id: int | None) -> str:
    if user_id is None:
        return "the portal itself"
    return names.get(user_id, f"user {user_id}")


# --- requests --------------------------------------------------------------------------------


@bp.get("/requests")
@requires("eligibility.view")
def requests() -> str:
    me = signed_in_user()
    page = _page_number()
    visible = scoped(Rfa, me)
    total = int(db().scalar(visible.with_only_columns(func.count(Rfa.id))) or 0)
    rfas = list(
        db().scalars(
            visible.order_by(Rfa.submitted_at.desc(), Rfa.id.desc())
            .offset((page - 1) * REQUESTS_PER_PAGE)
            .limit(REQUESTS_PER_PAGE)
        )
    )
    ids = [rfa.id for rfa in rfas]
    authorities = {
        authority_id: name
        for authority_id, name in db().execute(
            select(Authority.id, Authority.name).where(
                Authority.id.in_({rfa.authority_id for rfa in rfas})
            )
        )
    }
    latest: dict[int, Decision] = {}
    if ids:  # newest first: the first seen per request is its latest
        for decision in db().scalars(
            scoped(Decision, me)
            .where(Decision.rfa_id.in_(ids))
            .order_by(Decision.created_at.desc(), Decision.id)
        ):
            latest.setdefault(decision.rfa_id, decision)
    return render_template(
        "eligibility/requests.html",
        rows=[(rfa, authorities.get(rfa.authority_id, ""), latest.get(rfa.id)) for rfa in rfas],
        page=page,
        pages=max(1, -(-total // REQUESTS_PER_PAGE)),
        total=total,
    )


@bp.get("/requests/<int:rfa_id>")
@requires("eligibility.view")
def request_detail(rfa_id: int) -> str:
    me = signed_in_user()
    rfa = get_scoped_or_404(db(), Rfa, me, id=rfa_id)
    authority = get_scoped_or_404(db(), Authority, me, id=rfa.authority_id)
    candidates = int(
        db().scalar(select(func.count(RfaItem.id)).where(RfaItem.rfa_id == rfa.id)) or 0
    )
    history = decision_history(db(), rfa.id)[:HISTORY_SHOWN]
    names = _names(decision.requested_by_id for decision in history)
    return render_template(
        "eligibility/request.html",
        rfa=rfa,
        authority=authority,
        candidates=candidates,
        history=[(d, _requester(names, d.requested_by_id)) for d in history],
        form=TokenForm(),
    )


@bp.post("/requests/<int:rfa_id>/check")
@requires("rfa.check")
def check(rfa_id: int) -> BaseResponse:
    me = signed_in_user()
    rfa = get_scoped_or_404(db(), Rfa, me, id=rfa_id)
    back = url_for("eligibility.request_detail", rfa_id=rfa.id)
    if not TokenForm().validate_on_submit():
        flash("The form could not be verified, so no check was run. Try again.", "error")
        return redirect(back, 303)
    try:
        decision = run_check(
            db(), rfa, portal_state().policy, requested_by=me, actor=audit.actor_label(me)
        )
        db().commit()
    except CheckRefused as exc:
        db().rollback()
        flash(f"The check was not run: {exc}.", "error")
        return redirect(back, 303)
    flash(f"Eligibility check recorded for {rfa.code}.", "success")
    return redirect(url_for("eligibility.decision", decision_id=decision.id), 303)


# --- decisions -------------------------------------------------------------------------------


def _decision_or_404(decision_id: str) -> tuple[Decision, Rfa]:
    me = signed_in_user()
    decision = get_scoped_or_404(db(), Decision, me, id=decision_id)
    return decision, get_scoped_or_404(db(), Rfa, me, id=decision.rfa_id)


@bp.get("/decisions/<decision_id>")
@requires("decision.view")
def decision(decision_id: str) -> tuple[str, int]:
    record, rfa = _decision_or_404(decision_id)
    asked = request.args.get("outcome", "").strip()
    unknown = asked if asked and asked not in ITEM_OUTCOMES else None
    outcome = asked if asked in ITEM_OUTCOMES else None
    page = _page_number()
    view = build_decision_view(
        record,
        load_result(record),
        requested_by=_requester(_names([record.requested_by_id]), record.requested_by_id),
        changes=changes_since_previous(db(), record),
        outcome_filter=outcome,
        offset=(page - 1) * ROWS_PER_PAGE,
        limit=ROWS_PER_PAGE,
    )
    newest = latest_decision(db(), rfa.id)
    page_html = render_template(
        "eligibility/decision.html",
        view=view,
        rfa=rfa,
        newer=newest if newest is not None and newest.id != record.id else None,
        unknown_filter=unknown,
        page=page,
        pages=max(1, -(-view.matching // ROWS_PER_PAGE)),
        total_items=len(view.result.items),
    )
    return page_html, 400 if unknown is not None else 200


@bp.get("/decisions/<decision_id>.pdf")
@requires("decision.view")
def decision_pdf_export(decision_id: str) -> Response:
    record, _rfa = _decision_or_404(decision_id)
    view = build_decision_view(
        record,
        load_result(record),
        requested_by=_requester(_names([record.requested_by_id]), record.requested_by_id),
        changes=changes_since_previous(db(), record),
    )
    pdf = decision_pdf(view, portal_state().settings.templates_dir)
    return pdf_download(pdf, decision_pdf_filename(view))


# --- assessments -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """An authority's standing on one criterion: its latest assessment and what it is worth
    now. ``state``: ``current``, ``not_satisfied``, ``expired``, ``stale`` or ``missing``;
    ``note`` says it in words."""

    criterion: str
    assessment: Assessment | None
    state: str
    note: str
    older: int  # earlier assessments on file for the same criterion


def max_ages(policy: Policy) -> dict[str, timedelta | None]:
    """The policy's maximum assessment age per criterion (None: no limit, or no rule)."""
    ages: dict[str, timedelta | None] = {}
    for criterion, rule_id in CRITERION_RULES.items():
        try:
            value = policy.rule(rule_id).params.get("max_age")
        except KeyError:
            value = None
        ages[criterion] = value if isinstance(value, timedelta) else None
    return ages


def standing(
    criterion: str,
    assessments: list[Assessment],
    now: datetime,
    max_age: timedelta | None,
) -> Standing:
    """The latest assessment made by ``now`` decides (as the policy's rules do)."""
    made = sorted(
        (a for a in assessments if a.assessed_at <= now),
        key=lambda a: (a.assessed_at, a.code),
        reverse=True,
    )
    if not made:
        return Standing(criterion, None, "missing", "No assessment on file", 0)
    latest, older = made[0], len(made) - 1
    if latest.valid_until is not None and latest.valid_until <= now:
        note = f"Expired on {latest.valid_until:%Y-%m-%d}"
        return Standing(criterion, latest, "expired", note, older)
    if max_age is not None and now - latest.assessed_at > max_age:
        note = f"Older than the policy's maximum age of {max_age.days} days"
        return Standing(criterion, latest, "stale", note, older)
    if latest.finding != "satisfied":
        return Standing(criterion, latest, "not_satisfied", "Current, negative finding", older)
    return Standing(criterion, latest, "current", "Current", older)


@bp.get("/assessments")
@requires("assessment.view")
def assessments() -> str:
    me = signed_in_user()
    now = utcnow()
    ages = max_ages(portal_state().policy)
    authorities = list(db().scalars(scoped(Authority, me).order_by(Authority.name)))
    by_key: dict[tuple[int, str], list[Assessment]] = {}
    for assessment in db().scalars(scoped(Assessment, me)):
        by_key.setdefault((assessment.authority_id, assessment.criterion), []).append(assessment)
    rows = [
        (
            authority,
            [
                standing(c, by_key.get((authority.id, c), []), now, ages.get(c))
                for c in ASSESSMENT_CRITERIA
            ],
        )
        for authority in authorities
    ]
    return render_template("eligibility/assessments.html", rows=rows, ages=ages, now=now)
