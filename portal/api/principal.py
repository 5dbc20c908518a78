"""Who is calling the API: a registered client acting for its authority.

The guard (:func:`portal.authz.permissions.install_guard`, via :mod:`portal.api.oauth`)
validates the bearer token and stores a :class:`ClientPrincipal` in ``g`` with the role
the endpoint's action is performed in (requester or recipient, see
``authz.API_PERMISSIONS``). Views pass it to the same scoped queries and domain functions
as the pages, through :func:`acting_user`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import abort, g

from portal.accounts.models import User

G_KEY = "api_principal"


@dataclass(frozen=True)
class ClientPrincipal:
    """An OAuth client acting as ``role`` of its authority for the current request.

    It has no user id (``id`` is None): rows it creates name no user, and the audit log
    names the client (``audit_actor``).
    """

    client_pk: int
    client_id: str
    authority_id: int
    scopes: frozenset[str]
    role: str
    id: None = None
    provider_id: None = None
    is_active: bool = True

    @property
    def audit_actor(self) -> str:
        return f"api:{self.client_id}"


def current_client() -> ClientPrincipal:
    """The principal the guard admitted (a 401 if a view runs without one, which the
    guard makes impossible for API actions)."""
    principal = g.get(G_KEY)
    if not isinstance(principal, ClientPrincipal):
        abort(401)
    return principal


def acting_user() -> User:
    """The principal, for domain functions typed for a user.

    Those functions read only ``id``, ``role``, ``authority_id``, ``provider_id`` and
    ``is_active`` of the acting user and name it in the audit log through
    ``audit.actor_label`` (which uses ``audit_actor``); the principal provides exactly
    those, so the API runs the very checks the pages run.
    """
    return cast(User, current_client())
