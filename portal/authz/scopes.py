"""Scopes: which rows of a model a user may see at all.

Views load objects only through :func:`scoped` / :func:`get_scoped_or_404`, so another
tenant's object is a 404, indistinguishable from one that does not exist. Drafts are a
scope rule too: a request in draft is its authority's requesters' alone until submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from flask import abort
from sqlalchemy import ColumnElement, Select, and_, false, select, true
from sqlalchemy.orm import Session

from portal.accounts.models import Invitation, User
from portal.api.models import OAuthClient
from portal.audit import AuditEvent
from portal.authz.roles import (
    is_admin,
    is_provider_user,
    is_requester,
    is_staff,
    works_for_an_authority,
)
from portal.consent.models import Consent, ConsentRequest
from portal.eligibility.models import Decision
from portal.packages.models import Package, Recall
from portal.registry.models import Assessment, Authority, Item, Provider, RecipientKey
from portal.rfa.models import Rfa

M = TypeVar("M")

DRAFT = "draft"


class UserLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def authority_id(self) -> int | None: ...
    @property
    def provider_id(self) -> int | None: ...


def _by_organisation(
    column: Any, user: UserLike, member: bool, own: int | None
) -> ColumnElement[bool]:
    """Staff see every row; a ``member`` of an organisation the rows of its own (``own``)."""
    if is_staff(user):
        return true()
    if member and own is not None:
        return column == own  # type: ignore[no-any-return]
    return false()


def _by_authority(column: Any, user: UserLike) -> ColumnElement[bool]:
    return _by_organisation(column, user, works_for_an_authority(user), user.authority_id)


def _by_provider(column: Any, user: UserLike) -> ColumnElement[bool]:
    return _by_organisation(column, user, is_provider_user(user), user.provider_id)


def _staff_only(user: UserLike) -> ColumnElement[bool]:
    return true() if is_staff(user) else false()


def _admin_only(user: UserLike) -> ColumnElement[bool]:
    return true() if is_admin(user) else false()


def _self_or_admin(user: UserLike) -> ColumnElement[bool]:
    return true() if is_admin(user) else User.id == user.id


def _requests(user: UserLike) -> ColumnElement[bool]:
    """Requests of the user's authority (staff: of every authority); drafts only for the
    requesters of the draft's authority, who write it together (portal.rfa.drafting)."""
    if is_admin(user):
        return false()  # admins (IT) do not read case content
    of_authority = _by_authority(Rfa.authority_id, user)
    if is_requester(user):
        return of_authority
    return and_(of_authority, Rfa.status != DRAFT)


#: model -> the condition selecting the rows ``user`` may see.
SCOPES: Mapping[type[Any], Callable[[UserLike], ColumnElement[bool]]] = {
    Authority: lambda u: _by_authority(Authority.id, u),
    Assessment: _staff_only,
    RecipientKey: lambda u: _by_authority(RecipientKey.authority_id, u),
    Provider: lambda u: _by_provider(Provider.id, u),
    Item: lambda u: _by_provider(Item.provider_id, u),
    Consent: lambda u: _by_provider(Consent.provider_id, u),
    ConsentRequest: lambda u: _by_provider(ConsentRequest.provider_id, u),
    Rfa: _requests,
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
        raise KeyError(f"{model.__name__} has no scope in authz.scopes.SCOPES; add one")
    return rule(user)


def scoped(model: type[M], user: UserLike) -> Select[M]:
    """``select(model)`` restricted to what ``user`` may see."""
    return select(model).where(visible(model, user))


def find_scoped(db: Session, model: type[M], user: UserLike, **by: Any) -> M | None:
    """The one row of ``model`` matching ``by`` that ``user`` may see, else None (for domain
    functions and the CLI, which refuse in their own words)."""
    found = db.scalars(scoped(model, user).filter_by(**by).limit(2)).all()
    return found[0] if len(found) == 1 else None


def get_scoped_or_404(db: Session, model: type[M], user: UserLike, **by: Any) -> M:
    """One row of ``model`` matching ``by`` that ``user`` may see, else 404 (never 403)."""
    found = find_scoped(db, model, user, **by)
    if found is None:
        abort(404)
    return found
