"""The one place that says who may do what.

Two layers:

1. **Permissions** — a table of action → roles. Every view declares the action it
   performs with ``@requires("action")`` (or ``@public("why")`` for the handful of
   pages anyone may open). A guard that runs before every request denies any endpoint
   that declares nothing: deny unless a rule here allows.
2. **Scopes** — which rows of a model a user may see at all. Views load objects only
   through :func:`scoped` / :func:`get_scoped_or_404`, so another tenant's object is a
   404, indistinguishable from one that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol, TypeVar

from flask import Flask, abort, request
from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.orm import Session

from portal.accounts.models import ROLES, Invitation, User
from portal.api.models import OAuthClient
from portal.audit import AuditEvent
from portal.consent.models import Consent, ConsentRequest
from portal.eligibility.models import Decision
from portal.packages.models import Package, Recall
from portal.registry.models import Assessment, Authority, Item, Provider, RecipientKey
from portal.rfa.models import Rfa

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")

PERMISSION_ATTRIBUTE = "__portal_permission__"
PUBLIC = "public"

ALL_ROLES = frozenset(ROLES)
STAFF = frozenset({"legal_officer", "admin"})

#: action -> roles allowed to perform it. Adding a view means adding its action here.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "dashboard.view": ALL_ROLES,
    "account.view": ALL_ROLES,
    "account.change_password": ALL_ROLES,
    "account.logout": ALL_ROLES,
    "account.recovery_codes": ALL_ROLES,
    "admin.users.view": frozenset({"admin"}),
    "admin.users.invite": frozenset({"admin"}),
    "admin.users.manage": frozenset({"admin"}),
    "admin.authorities.view": STAFF,
    "admin.providers.view": STAFF,
    "audit.view": frozenset({"admin"}),
    "rfa.check": frozenset({"legal_officer"}),
    # The legal officer's triage: queue, status moves, repository search, candidates.
    "triage.view": frozenset({"legal_officer"}),
    "triage.act": frozenset({"legal_officer"}),
    "rfa.view": frozenset({"requester", "legal_officer", "admin"}),
    "rfa.edit": frozenset({"requester"}),
    "rfa.withdraw": frozenset({"requester"}),
    "rfa.message": frozenset({"requester", "legal_officer"}),
    # Attachments and death-penalty assurances (portal.rfa.uploads says when, per request).
    "rfa.attach": frozenset({"requester", "legal_officer"}),
    # The published figures: the Figures page and its PDF and CSV exports.
    "reports.view": STAFF,
    "decision.view": STAFF,
    "eligibility.view": STAFF,
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
    # Recipient keys: import, out-of-band verification, revocation (staff).
    "keys.view": STAFF,
    "keys.manage": STAFF,
    # The officers' package pages; making, retrying and releasing (four-eyes) is legal work.
    "package.view": STAFF,
    "package.create": frozenset({"legal_officer"}),
    "package.retry": frozenset({"legal_officer"}),
    "package.release": frozenset({"legal_officer"}),
    "item.clear_as_is": frozenset({"legal_officer"}),
    # OAuth clients of the JSON API (registered per authority by admins).
    "admin.api_clients.view": frozenset({"admin"}),
    "admin.api_clients.manage": frozenset({"admin"}),
}

#: JSON API action -> (OAuth scope the bearer token must carry, role the client then acts
#: in). API clients have no role of their own: a client of an authority acts as that
#: authority's requester (``rfa:*``) or recipient (``packages:*``) for the one request, and
#: is scoped by :data:`SCOPES` exactly like a signed-in user of that role. Users signed in
#: with a browser never pass these (their roles are not scopes).
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


class UserLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def authority_id(self) -> int | None: ...
    @property
    def provider_id(self) -> int | None: ...


def requires(action: str) -> Callable[[F], F]:
    """Declare the action a view performs; only roles allowed that action reach it."""
    if action not in PERMISSIONS and action not in API_PERMISSIONS:
        raise KeyError(f"unknown action {action!r}: add it to PERMISSIONS in authz.py")

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


# --- scopes ---------------------------------------------------------------------------


def _by_authority(column: Any, user: UserLike) -> ColumnElement[bool]:
    if user.role in STAFF:
        return true()
    if user.role in ("requester", "recipient") and user.authority_id is not None:
        return column == user.authority_id  # type: ignore[no-any-return]
    return false()


def _by_provider(column: Any, user: UserLike) -> ColumnElement[bool]:
    if user.role in STAFF:
        return true()
    if user.role == "provider" and user.provider_id is not None:
        return column == user.provider_id  # type: ignore[no-any-return]
    return false()


def _staff_only(user: UserLike) -> ColumnElement[bool]:
    return true() if user.role in STAFF else false()


def _admin_only(user: UserLike) -> ColumnElement[bool]:
    return true() if user.role == "admin" else false()


def _self_or_admin(user: UserLike) -> ColumnElement[bool]:
    return true() if user.role == "admin" else User.id == user.id


#: model -> the condition selecting the rows ``user`` may see.
SCOPES: Mapping[type[Any], Callable[[UserLike], ColumnElement[bool]]] = {
    Authority: lambda u: _by_authority(Authority.id, u),
    Assessment: _staff_only,
    RecipientKey: lambda u: _by_authority(RecipientKey.authority_id, u),
    Provider: lambda u: _by_provider(Provider.id, u),
    Item: lambda u: _by_provider(Item.provider_id, u),
    Consent: lambda u: _by_provider(Consent.provider_id, u),
    ConsentRequest: lambda u: _by_provider(ConsentRequest.provider_id, u),
    Rfa: lambda u: _by_authority(Rfa.authority_id, u),
    Decision: _staff_only,
    Package: lambda u: _by_authority(Package.authority_id, u),
    Recall: lambda u: Recall.package_id.in_(
        select(Package.id).where(_by_authority(Package.authority_id, u))
    ),
    User: _self_or_admin,
    Invitation: _admin_only,
    AuditEvent: _admin_only,
    OAuthClient: _admin_only,
}


def visible(model: type[Any], user: UserLike) -> ColumnElement[bool]:
    """The condition for rows of ``model`` that ``user`` may see (nothing if unscoped)."""
    rule = SCOPES.get(model)
    if rule is None:
        raise KeyError(f"{model.__name__} has no scope in authz.SCOPES; add one")
    return rule(user)


def scoped(model: type[M], user: UserLike) -> Select[M]:
    """``select(model)`` restricted to what ``user`` may see."""
    return select(model).where(visible(model, user))


def get_scoped_or_404(db: Session, model: type[M], user: UserLike, **by: Any) -> M:
    """One row of ``model`` matching ``by`` that ``user`` may see, else 404 (never 403)."""
    stmt = scoped(model, user).filter_by(**by)
    found = db.scalars(stmt.limit(2)).all()
    if len(found) != 1:
        abort(404)
    return found[0]
