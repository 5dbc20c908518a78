"""Named role predicates: the one place that compares role names.

Code elsewhere asks ``is_legal_officer(user)`` or ``requests_for(user, authority_id)``
instead of comparing ``user.role`` with a string, so who counts as what is written once.
Predicates take a user or a bare role name (an invitation's, a form's). The ``where_*``
functions are the same rules as SQL conditions on :class:`User`, for queries picking people.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import ColumnElement, and_

from portal.accounts.models import AUTHORITY_ROLES, ROLES, STAFF_ROLES, User

ADMIN = "admin"
LEGAL_OFFICER = "legal_officer"
REQUESTER = "requester"
RECIPIENT = "recipient"
PROVIDER = "provider"

ALL_ROLES = frozenset(ROLES)
#: The Mechanism's own people: they see every authority's and provider's rows.
STAFF = frozenset(STAFF_ROLES)


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


class Member(HasRole, Protocol):
    """A user with the organisation they belong to (at most one of the two is set)."""

    @property
    def authority_id(self) -> int | None: ...
    @property
    def provider_id(self) -> int | None: ...


class Account(HasRole, Protocol):
    @property
    def is_active(self) -> bool: ...


def _role(who: HasRole | str) -> str:
    return who if isinstance(who, str) else who.role


def is_known_role(who: HasRole | str) -> bool:
    return _role(who) in ALL_ROLES


def is_admin(who: HasRole | str) -> bool:
    return _role(who) == ADMIN


def is_legal_officer(who: HasRole | str) -> bool:
    return _role(who) == LEGAL_OFFICER


def is_staff(who: HasRole | str) -> bool:
    """Legal officers and administrators."""
    return _role(who) in STAFF


def is_requester(who: HasRole | str) -> bool:
    return _role(who) == REQUESTER


def is_recipient(who: HasRole | str) -> bool:
    return _role(who) == RECIPIENT


def is_provider_user(who: HasRole | str) -> bool:
    """A representative of an information provider."""
    return _role(who) == PROVIDER


def works_for_an_authority(who: HasRole | str) -> bool:
    """Requesters and recipients belong to an authority (providers' users to a provider,
    staff to neither)."""
    return _role(who) in AUTHORITY_ROLES


def requests_for(user: Member, authority_id: int) -> bool:
    """A requester of the authority ``authority_id``: drafts, submits, writes for it."""
    return is_requester(user) and user.authority_id == authority_id


def receives_for(user: Member, authority_id: int) -> bool:
    """A recipient of the authority ``authority_id``: receives its packages and recalls."""
    return is_recipient(user) and user.authority_id == authority_id


def speaks_for(user: Member, provider_id: int) -> bool:
    """A representative of the provider ``provider_id``."""
    return is_provider_user(user) and user.provider_id == provider_id


def is_active_admin(user: Account) -> bool:
    return is_admin(user) and user.is_active


def is_active_officer(user: Account) -> bool:
    return is_legal_officer(user) and user.is_active


def require_active_officer(user: Account, refusal: Callable[[str], Exception]) -> None:
    """Raise ``refusal`` (the calling domain's typed refusal) unless ``user`` is an active
    legal officer. Signed-in users are active; this guards the CLI and direct callers."""
    if not is_legal_officer(user):
        raise refusal("Not allowed: only legal officers can do this.")
    if not user.is_active:
        raise refusal("Not allowed: this account is deactivated.")


# --- the same rules in SQL ---------------------------------------------------------------


def where_admin() -> ColumnElement[bool]:
    return User.role == ADMIN


def where_legal_officer() -> ColumnElement[bool]:
    return User.role == LEGAL_OFFICER


def where_requester_of(authority_id: int) -> ColumnElement[bool]:
    return and_(User.role == REQUESTER, User.authority_id == authority_id)


def where_recipient_of(authority_id: int) -> ColumnElement[bool]:
    return and_(User.role == RECIPIENT, User.authority_id == authority_id)


def where_provider_user_of(provider_id: int) -> ColumnElement[bool]:
    return and_(User.role == PROVIDER, User.provider_id == provider_id)
