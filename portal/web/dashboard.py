"""The signed-in home page and the role-dependent navigation of every page.

Links are listed here by endpoint; a link appears only when its view exists and the
user's role may perform the view's declared action (portal.authz.permissions), so
navigation never offers a page that would answer 403 and grows as pages are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from portal.accounts.login_manager import signed_in_user
from portal.accounts.models import ROLE_LABELS
from portal.authz.permissions import PUBLIC, allowed, declared_permission, requires
from portal.authz.roles import is_legal_officer
from portal.consent.models import ConsentRequest
from portal.db import db
from portal.pages.i18n import N_, Translated, gettext
from portal.paging import page_number
from portal.registry.models import Item
from portal.web import worklists

bp = Blueprint("dashboard", __name__)


@dataclass(frozen=True)
class Link:
    label: str
    endpoint: str
    description: str = ""


#: The main navigation, in order (shown when the view exists and the role may use it).
NAV: tuple[Link, ...] = (
    Link(N_("Home"), "dashboard.index"),
    Link(N_("Requests"), "requests.index"),
    Link(N_("Queue"), "triage.index"),
    Link(N_("Eligibility"), "eligibility.requests"),
    Link(N_("Consent"), "consent.index"),
    Link(N_("Figures"), "reports.index"),
    Link(N_("Packages"), "packages.index"),
    Link(N_("Packages"), "recipient.index"),
    Link(N_("Recalls"), "recipient.recalls_page"),
    Link(N_("Users"), "admin.users"),
    Link(N_("Authorities"), "admin.authorities"),
    Link(N_("Keys"), "keys.index"),
    Link(N_("Protected identifiers"), "register.index"),
    Link(N_("API clients"), "api_clients.index"),
    Link(N_("Providers"), "admin.providers"),
    Link(N_("Audit log"), "audit.index"),
)

#: What each role does next, as links with a sentence each (same rule as NAV).
NEXT_STEPS: dict[str, tuple[Link, ...]] = {
    "requester": (
        Link(
            N_("Your requests for assistance"),
            "requests.index",
            N_("Submit a request, answer the Mechanism's questions and follow its status."),
        ),
    ),
    "legal_officer": (
        Link(
            "Triage queue",
            "triage.index",
            "New and open requests by urgency and age: assign, review, search, ask for consent.",
        ),
        Link(
            "Requests to review",
            "requests.index",
            "Triage new requests, check eligibility and assemble packages.",
        ),
        Link(
            "Eligibility checks",
            "eligibility.requests",
            "Run the sharing rules on a request and read the recorded decisions.",
        ),
        Link(
            "Assessments",
            "eligibility.assessments",
            "Fair trial, death penalty and witness protection, with stale ones flagged.",
        ),
        Link(
            "Packages",
            "packages.index",
            "Make packages from decisions, follow their assembly, release them (four-eyes).",
        ),
        Link(
            "Recipient keys",
            "keys.index",
            "Import authorities' keys and record how each fingerprint was confirmed.",
        ),
        Link(
            "Protected identifiers",
            "register.index",
            "Names, aliases and numbers of persons at risk, checked in every package.",
        ),
        Link("Authorities", "admin.authorities", "Assessments of each receiving authority."),
        Link("Providers", "admin.providers", "The information providers and their material."),
        Link(
            "Figures",
            "reports.index",
            "Requests, packages and consent for a period, with the PDF and CSV report.",
        ),
    ),
    "provider": (
        Link(
            N_("Consent requests"),
            "consent.index",
            N_("Grant, decline or revoke consent to share your material with each authority."),
        ),
    ),
    "recipient": (
        Link(
            N_("Packages for your authority"),
            "recipient.index",
            N_("Download packages, verify them and acknowledge receipt."),
        ),
        Link(
            N_("Recall notices"),
            "recipient.recalls_page",
            N_("Read signed recall notices and confirm the material was returned or destroyed."),
        ),
    ),
    "admin": (
        Link("Users", "admin.users", "Invite people, change roles, unlock or deactivate accounts."),
        Link("Authorities", "admin.authorities", "Receiving authorities and their keys."),
        Link("Recipient keys", "keys.index", "Import, verify and revoke authorities' keys."),
        Link(
            "API clients",
            "api_clients.index",
            "Register and revoke authorities' systems that use the JSON API.",
        ),
        Link("Providers", "admin.providers", "Information providers."),
        Link("Audit log", "audit.index", "Who did what, in a tamper-evident log."),
        Link("Figures", "reports.index", "The published figures and the period report."),
    ),
}


def usable(endpoint: str, role: str | None) -> bool:
    """Does ``endpoint`` exist, and may ``role`` open it?"""
    view = current_app.view_functions.get(endpoint)
    action = declared_permission(view)
    if action is None:
        return False
    return action == PUBLIC or allowed(role, action)


def _links(links: tuple[Link, ...], role: str | None) -> list[Link]:
    return [link for link in links if usable(link.endpoint, role)]


@bp.app_context_processor
def _navigation() -> dict[str, Any]:
    def nav_links() -> list[dict[str, Any]]:
        if not current_user.is_authenticated:
            return []
        return [
            {
                "label": gettext(link.label),
                "url": url_for(link.endpoint),
                "current": request.endpoint == link.endpoint,
            }
            for link in _links(NAV, current_user.role)
        ]

    return {"nav_links": nav_links}


@bp.get("/")
@requires("dashboard.view")
def index() -> str:
    role = current_user.role
    return render_template(
        "web/dashboard.html",
        role_label=Translated(ROLE_LABELS).get(role, role),
        next_steps=_links(NEXT_STEPS.get(role, ()), role),
        worklists=_officer_worklists() if is_legal_officer(role) else None,
    )


def _officer_worklists() -> dict[str, Any]:
    """The counts and first rows of every worklist of the signed-in legal officer."""
    me = signed_in_user()
    session = db()
    marks = worklists.first_rows(session, worklists.marks_pending(me))
    consent = worklists.first_rows(session, worklists.consent_pending())
    stale_count, stale = worklists.requests_and_count(session, worklists.stale_decisions())
    return {
        "counts": worklists.counts(session, me, stale=stale_count),
        "assigned": worklists.first_rows(session, worklists.assigned_to(me)),
        "due": worklists.first_rows(session, worklists.due_soon()),
        "release": worklists.first_rows(session, worklists.awaiting_release(me)),
        "stale": stale,
        "consent": consent,
        "marks": marks,
        **_names(session, marks, consent),
        "today": worklists.today(),
        "due_days": worklists.DUE_WITHIN_DAYS,
    }


def _names(
    session: Session, items: Sequence[Item], asked: Sequence[ConsentRequest]
) -> dict[str, Any]:
    """What the worklists' rows show by id: the review request of each item, request codes
    and provider names of consent requests."""
    return {
        "review_rfa": worklists.review_requests(session, [i.id for i in items]),
        "rfa_codes": worklists.rfa_codes(session, [c.rfa_id for c in asked]),
        "provider_names": worklists.provider_names(session, [c.provider_id for c in asked]),
    }


@bp.get("/worklists/<worklist_name>")
@requires("worklists.view")
def worklist(worklist_name: str) -> str:
    """Every row of one worklist, paged: what a dashboard count links to."""
    name = worklist_name
    if name not in worklists.LISTS:
        abort(404)
    me = signed_in_user()
    session = db()
    found = worklists.page_of(session, name, me, page_number(request.args.get("page")))
    rows = list(found.items)
    extra: dict[str, Any] = {}
    if name == "marks":
        extra = _names(session, rows, [])  # type: ignore[arg-type]
    elif name == "consent":
        extra = _names(session, [], rows)  # type: ignore[arg-type]
    return render_template(
        "web/worklist.html",
        name=name,
        heading=worklists.LISTS[name],
        rows=rows,
        found=found,
        me=me,
        **extra,
    )
