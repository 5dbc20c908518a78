"""The one place that says who may do what: a table of action → roles.

Every view declares the action it performs with ``@requires("action")`` (or
``@public("why")`` for the handful of pages anyone may open). A guard that runs before
every request denies any endpoint that declares nothing: deny unless a rule here allows.
Which rows a user may see is :mod:`portal.authz.scopes`; who counts as what is
:mod:`portal.authz.roles`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from flask import Flask, abort, request

from portal.authz.roles import ALL_ROLES, STAFF

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

PERMISSION_ATTRIBUTE = "__portal_permission__"
PUBLIC = "public"

#: action -> roles allowed to perform it. Adding a view means adding its action here.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "dashboard.view": ALL_ROLES,
    # The legal officer's worklists behind the dashboard's counts (packages to release, stale
    # decisions, consent requests and redaction marks awaiting someone).
    "worklists.view": frozenset({"legal_officer"}),
    "account.view": ALL_ROLES,
    "account.change_password": ALL_ROLES,
    "account.language": ALL_ROLES,
    "account.logout": ALL_ROLES,
    "account.recovery_codes": ALL_ROLES,
    "admin.users.view": frozenset({"admin"}),
    "admin.users.invite": frozenset({"admin"}),
    "admin.users.manage": frozenset({"admin"}),
    # Four-eyes on accounts: a second admin approves (portal.accounts.approval says who may).
    "admin.users.approve": frozenset({"admin"}),
    "admin.authorities.view": STAFF,
    "admin.providers.view": STAFF,
    "audit.view": frozenset({"admin"}),
    "audit.verify": frozenset({"admin"}),
    "rfa.check": frozenset({"legal_officer"}),
    # The legal officer's triage: queue, status moves, repository search, candidates.
    "triage.view": frozenset({"legal_officer"}),
    "triage.act": frozenset({"legal_officer"}),
    # Case content (requests, attachments, messages, items) is for the parties and legal
    # officers only: admins run the portal (IT) and do not read it.
    "rfa.view": frozenset({"requester", "legal_officer"}),
    "rfa.edit": frozenset({"requester"}),
    "rfa.withdraw": frozenset({"requester"}),
    "rfa.message": frozenset({"requester", "legal_officer"}),
    # Attachments and death-penalty assurances (portal.rfa.uploads says when, per request).
    "rfa.attach": frozenset({"requester", "legal_officer"}),
    # The published figures: the Figures page and its PDF and CSV exports.
    "reports.view": STAFF,
    "decision.view": frozenset({"legal_officer"}),  # case content: not for admins
    "eligibility.view": frozenset({"legal_officer"}),  # case content: not for admins
    "assessment.view": STAFF,
    # Providers' own consent pages (staff read consent through the eligibility pages).
    "consent.view": frozenset({"provider"}),
    "consent.answer": frozenset({"provider"}),
    "consent.manage": frozenset({"provider"}),
    # Everyone's own notification inbox (each sees only their own).
    "notifications.view": ALL_ROLES,
    "notifications.read": ALL_ROLES,
    # The receiving authority's pages: its packages, downloads, receipt, recalls.
    "recipient.view": frozenset({"recipient"}),
    "recipient.download": frozenset({"recipient"}),
    "recipient.acknowledge": frozenset({"recipient"}),
    "recipient.recalls": frozenset({"recipient"}),
    "recipient.recalls_acknowledge": frozenset({"recipient"}),
    # Recipient keys: import and revocation (staff); recording the out-of-band verification is
    # a legal officer's, never the importer's (portal.registry.keys enforces the second).
    "keys.view": STAFF,
    "keys.manage": STAFF,
    "keys.verify": frozenset({"legal_officer"}),
    # The officers' package pages; making, retrying and releasing (four-eyes) is legal work.
    "package.view": frozenset({"legal_officer"}),  # case content: not for admins
    "package.create": frozenset({"legal_officer"}),
    "package.retry": frozenset({"legal_officer"}),
    "package.release": frozenset({"legal_officer"}),
    "item.clear_as_is": frozenset({"legal_officer"}),
    # A term mark that matched nothing: reading the item's original, recording the check.
    "item.read_original": frozenset({"legal_officer"}),
    "mark.check_by_eye": frozenset({"legal_officer"}),
    # Redaction review: seeing an item's pages and marks, proposing and confirming (four eyes).
    "mark.review": frozenset({"legal_officer"}),
    "mark.propose": frozenset({"legal_officer"}),
    "mark.confirm": frozenset({"legal_officer"}),
    # The register of protected identifiers: their values are for legal officers' eyes only.
    "identifiers.view": frozenset({"legal_officer"}),
    "identifiers.manage": frozenset({"legal_officer"}),
    # OAuth clients of the JSON API (registered per authority by admins).
    "admin.api_clients.view": frozenset({"admin"}),
    "admin.api_clients.manage": frozenset({"admin"}),
}

#: JSON API action -> (OAuth scope the bearer token must carry, role the client then acts
#: in). API clients have no role of their own: a client of an authority acts as that
#: authority's requester (``rfa:*``) or recipient (``packages:*``) for the one request, and
#: is scoped by :data:`portal.authz.scopes.SCOPES` exactly like a signed-in user of that
#: role. Users signed in with a browser never pass these (their roles are not scopes).
API_PERMISSIONS: Mapping[str, tuple[str, str]] = {
    "api.rfa.read": ("rfa:read", "requester"),
    "api.rfa.write": ("rfa:write", "requester"),
    "api.packages.read": ("packages:read", "recipient"),
    "api.packages.ack": ("packages:ack", "recipient"),
}

#: Installed by the API (portal.api.oauth) as ``app.extensions[API_GUARD]``: called with
#: the action, its scope and its role; returns an error response or None (let through).
API_GUARD = "portal_api_guard"

#: Endpoints the guard lets through without any declaration (Flask's static files).
UNDECLARED_OK = frozenset({"static"})


def requires(action: str) -> Callable[[F], F]:
    """Declare the action a view performs; only roles allowed that action reach it."""
    if action not in PERMISSIONS and action not in API_PERMISSIONS:
        raise KeyError(f"unknown action {action!r}: add it to authz.permissions.PERMISSIONS")

    def mark(view: F) -> F:
        setattr(view, PERMISSION_ATTRIBUTE, action)
        return view

    return mark


def public(why: str) -> Callable[[F], F]:
    """Declare a view open to anyone (login, health check). ``why`` documents the reason."""
    if not why.strip():
        raise ValueError("say why the view is public")

    def mark(view: F) -> F:
        setattr(view, PERMISSION_ATTRIBUTE, PUBLIC)
        return view

    return mark


def declared_permission(view: Callable[..., Any] | None) -> str | None:
    """The action declared on a view function (``PUBLIC`` for public views), or None."""
    return getattr(view, PERMISSION_ATTRIBUTE, None) if view is not None else None


def client_allowed(scopes: Collection[str], action: str) -> bool:
    """May an API client holding ``scopes`` perform ``action``? Unknown actions never."""
    needed = API_PERMISSIONS.get(action)
    return needed is not None and needed[0] in scopes


def allowed(role: str | None, action: str) -> bool:
    """May a user with ``role`` perform ``action``? Unknown actions are never allowed."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def install_guard(app: Flask, unauthenticated: Callable[[], Any]) -> None:
    """Check every request against the declared permission of its endpoint.

    ``unauthenticated`` produces the response for a visitor who is not signed in
    (a redirect to the login page for browsers).
    """

    @app.before_request
    def _guard() -> Any:
        from flask_login import current_user

        endpoint = request.endpoint
        if endpoint is None or endpoint in UNDECLARED_OK:
            return None  # no route (404 follows) or a static file
        action = declared_permission(app.view_functions.get(endpoint))
        if action is None:
            logger.error("endpoint %s declares no permission; denied", endpoint)
            abort(403)
        if action == PUBLIC:
            return None
        if action in API_PERMISSIONS:
            api_guard = app.extensions.get(API_GUARD)
            if api_guard is None:
                abort(403)
            scope, role = API_PERMISSIONS[action]
            return api_guard(action, scope, role)
        if not current_user.is_authenticated:
            return unauthenticated()
        if not allowed(current_user.role, action):
            abort(403)
        return None
