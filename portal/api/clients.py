"""OAuth 2.0 clients of the JSON API: register one for an authority, revoke it, check its
secret, and keep track of the access tokens issued to it.

A client secret and an access token are 256-bit random strings, so a SHA-256 of each is
stored (a slow password hash would add nothing against guessing) and compared in
constant time. The plain secret is returned once, to be shown to the admin, and never
again; tokens are handed to Authlib, which gives them to the client.

Functions take the session explicitly, flush but never commit, and refuse bad input with
:class:`ClientRefused` before changing anything.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import audit
from portal.accounts.models import User
from portal.api.models import API_SCOPES, OAuthClient, OAuthToken
from portal.authz.roles import is_active_admin
from portal.canonical import sha256_hex
from portal.db import stored_utc, utcnow
from portal.registry.models import Authority

__all__ = [
    "API_SCOPES",
    "TOKEN_LIFETIME",
    "ClientRefused",
    "NewClient",
    "clients",
    "find_token",
    "record_token",
    "register_client",
    "revoke_client",
    "revoke_token",
]

#: Access tokens live 15 minutes; a client asks for a new one with its credentials.
TOKEN_LIFETIME = timedelta(minutes=15)
NAME_MAX = 200
CLIENT_ID_PREFIX = "spc_"


class ClientRefused(Exception):
    """A client change was refused; nothing changed. The message says why."""


@dataclass(frozen=True)
class NewClient:
    """A client just registered, with the secret that is shown this once."""

    client: OAuthClient
    secret: str


def _admin(user: User) -> None:
    if not is_active_admin(user):
        raise ClientRefused("Only an active admin can manage API clients.")


def register_client(
    db: Session,
    authority: Authority,
    name: str,
    scopes: Collection[str],
    *,
    by: User,
    now: datetime | None = None,
) -> NewClient:
    """Register a client acting for ``authority`` with ``scopes``; returns it and its secret."""
    _admin(by)
    name = " ".join(name.split())
    if not name:
        raise ClientRefused("Name the client (e.g. the authority's case-management system).")
    if len(name) > NAME_MAX:
        raise ClientRefused(f"The name must be at most {NAME_MAX} characters.")
    chosen = [scope for scope in API_SCOPES if scope in set(scopes)]
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise ClientRefused("Unknown scope: " + ", ".join(unknown) + ".")
    if not chosen:
        raise ClientRefused("Choose at least one scope.")
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=CLIENT_ID_PREFIX + secrets.token_hex(10),
        secret_sha256=sha256_hex(secret),
        name=name,
        authority_id=authority.id,
        scopes=chosen,
        created_by_id=by.id,
        created_at=now or utcnow(),
    )
    db.add(client)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "api_client.register",
        f"api_client:{client.client_id}",
        {"authority": authority.code, "scopes": chosen, "name": name},
        now=now,
    )
    return NewClient(client=client, secret=secret)


def revoke_client(
    db: Session, client: OAuthClient, *, by: User, now: datetime | None = None
) -> int:
    """Revoke the client and every live token of it; returns how many tokens were revoked."""
    _admin(by)
    if client.revoked_at is not None:
        raise ClientRefused(f"Client {client.client_id} was already revoked.")
    moment = now or utcnow()
    client.revoked_at = moment
    client.revoked_by_id = by.id
    result = db.execute(
        update(OAuthToken)
        .where(OAuthToken.client_id == client.id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=moment)
        .execution_options(synchronize_session=False)
    )
    revoked = int(getattr(result, "rowcount", 0) or 0)
    db.flush()
    audit.record(
        db,
        audit.actor_label(by),
        "api_client.revoke",
        f"api_client:{client.client_id}",
        {"access_grants_revoked": revoked},
        now=moment,
    )
    return revoked


def clients(db: Session) -> Sequence[tuple[OAuthClient, Authority]]:
    """Every client with its authority: live ones first, newest first."""
    rows = db.execute(
        select(OAuthClient, Authority)
        .join(Authority, Authority.id == OAuthClient.authority_id)
        .order_by(
            OAuthClient.revoked_at.is_not(None), OAuthClient.created_at.desc(), OAuthClient.id
        )
    )
    return [(client, authority) for client, authority in rows]


def record_token(
    db: Session,
    client: OAuthClient,
    access_token: str,
    scopes: Collection[str],
    *,
    expires_in: int,
    now: datetime | None = None,
) -> OAuthToken:
    """Keep the SHA-256 of a token Authlib is about to hand to ``client``."""
    moment = now or utcnow()
    token = OAuthToken(
        token_sha256=sha256_hex(access_token),
        client_id=client.id,
        scopes=sorted(scopes),
        issued_at=moment,
        expires_at=moment + timedelta(seconds=expires_in),
    )
    db.add(token)
    db.flush()
    audit.record(
        db,
        f"api:{client.client_id}",
        "api_client.token_issued",
        f"api_client:{client.client_id}",
        {"scopes": sorted(scopes), "expires_at": token.expires_at.isoformat()},
        now=moment,
    )
    return token


def find_token(db: Session, access_token: str) -> tuple[OAuthToken, OAuthClient] | None:
    """The token (live or not) with this value and its client, else None."""
    row = db.execute(
        select(OAuthToken, OAuthClient)
        .join(OAuthClient, OAuthClient.id == OAuthToken.client_id)
        .where(OAuthToken.token_sha256 == sha256_hex(access_token))
    ).first()
    return (row[0], row[1]) if row is not None else None


def revoke_token(db: Session, token: OAuthToken, client: OAuthClient) -> None:
    """The client gives up one of its tokens (RFC 7009); revoking twice changes nothing."""
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    db.flush()
    audit.record(
        db,
        f"api:{client.client_id}",
        "api_client.token_revoked",
        f"api_client:{client.client_id}",
        {"issued_at": stored_utc(token.issued_at).isoformat()},
    )
