"""OAuth 2.0 for the JSON API with Authlib: the client-credentials grant at
``POST /api/v1/oauth/token`` (client_secret_basic or client_secret_post), token revocation
(RFC 7009) at ``POST /api/v1/oauth/revoke``, and the bearer-token check the authz guard
calls for every API action.

Authlib is given adapters over the plain rows of :mod:`portal.api.models`; storing,
hashing and revoking stay in :mod:`portal.api.clients`. One
:class:`~authlib.integrations.flask_oauth2.AuthorizationServer` and one
:class:`~authlib.integrations.flask_oauth2.ResourceProtector` per app, kept in
``app.extensions``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from flask import Flask, Response, current_app, g
from sqlalchemy import select

from portal.api import clients as api_clients
from portal.api.blueprint import bp
from portal.api.models import API_SCOPES, OAuthClient, OAuthToken
from portal.api.principal import G_KEY, ClientPrincipal
from portal.api.problem import problem
from portal.authz.permissions import API_GUARD, client_allowed, public
from portal.canonical import sha256_hex
from portal.db import db, stored_utc, utcnow

SERVER_KEY = "portal_oauth_server"
PROTECTOR_KEY = "portal_oauth_protector"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
TOKEN_BYTES = 32


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """Authlib's view of an :class:`OAuthClient`: confidential, client credentials only."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """All the client's scopes when none is asked for, else those asked for (the grant
        has refused any it does not hold)."""
        if not scope:
            return " ".join(self.row.scopes)
        return " ".join(s for s in scope_to_list(scope) if s in self.row.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        given = sha256_hex(client_secret)
        return hmac.compare_digest(self.row.secret_sha256, given)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return bool(grant_type == ClientCredentialsGrant.GRANT_TYPE)


class IssuedToken(TokenMixin):  # type: ignore[misc]
    """Authlib's view of an :class:`OAuthToken` and its client."""

    def __init__(self, token: OAuthToken, client: OAuthClient) -> None:
        self.token = token
        self.client = client

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client.client_id)

    def get_scope(self) -> str:
        return " ".join(self.token.scopes)

    def get_expires_in(self) -> int:
        expires = self.token.expires_at
        issued = self.token.issued_at
        return int((expires - issued).total_seconds())

    def is_expired(self) -> bool:
        return stored_utc(self.token.expires_at) <= utcnow()

    def is_revoked(self) -> bool:
        return self.token.revoked_at is not None or self.client.revoked_at is not None

    def get_user(self) -> None:
        return None

    def get_client(self) -> RegisteredClient:
        return RegisteredClient(self.client)


class Grant(ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials, authenticated by HTTP Basic or in the form; a scope the client
    was not given is refused (``invalid_scope``), not silently dropped."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        super().validate_requested_scope()
        asked = set(scope_to_list(self.request.payload.scope) or [])
        held = set(self.request.client.row.scopes)
        if not asked <= held:
            missing = " ".join(sorted(asked - held))
            raise InvalidScopeError(f"The client was not given the scope: {missing}.")


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return _issued(token_string)

    def revoke_token(self, token: IssuedToken, request: Any) -> None:
        api_clients.revoke_token(db(), token.token, token.client)
        db().commit()


class Validator(BearerTokenValidator):  # type: ignore[misc]
    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        return _issued(token_string)


def _issued(token_string: str) -> IssuedToken | None:
    if not token_string or len(token_string) > 200:
        return None
    found = api_clients.find_token(db(), token_string)
    return IssuedToken(*found) if found is not None else None


def _query_client(client_id: str) -> RegisteredClient | None:
    row = db().scalar(select(OAuthClient).where(OAuthClient.client_id == str(client_id)[:64]))
    if row is None or row.revoked_at is not None:
        return None
    return RegisteredClient(row)


def _save_token(token: dict[str, Any], request: Any) -> None:
    client: RegisteredClient = request.client
    api_clients.record_token(
        db(),
        client.row,
        token["access_token"],
        scope_to_list(token.get("scope")) or [],
        expires_in=int(token["expires_in"]),
    )
    db().commit()


def _generate_token(*_args: Any, **_kwargs: Any) -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


# --- the guard ------------------------------------------------------------------------------


#: Plain words for the OAuth errors whose stock descriptions say little to an integrator.
PLAIN_WORDS = {
    "invalid_client": "The client id or secret is wrong, or the client has been revoked.",
    "invalid_token": "The access token is unknown, expired or revoked; obtain a new one.",
    "missing_authorization": "Send an access token: Authorization: Bearer <token>.",
    "unsupported_token_type": "Send an access token: Authorization: Bearer <token>.",
    "unsupported_grant_type": "Use grant_type=client_credentials.",
}


def _oauth_response(
    status: int, code: str, description: str | None, headers: list[tuple[str, str]]
) -> Response:
    detail = PLAIN_WORDS.get(code) or description or code.replace("_", " ").capitalize() + "."
    title = {
        "invalid_client": "Client authentication failed",
        "insufficient_scope": "Insufficient scope",
    }.get(code, "Authentication required" if status == 401 else "OAuth request refused")
    return problem(
        status,
        title,
        detail,
        kind=f"oauth-{code}",
        headers=[*headers, ("Cache-Control", "no-store")],
        extra={"error": code, "error_description": detail},
    )


def oauth_problem(error: OAuth2Error) -> Response:
    """An Authlib error as problem+json, keeping RFC 6749's ``error`` members and headers."""
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return _oauth_response(
        int(error.status_code or 400),
        str(error.error or "invalid_request"),
        error.get_error_description(),
        [h for h in headers if h[0].lower() == "www-authenticate"],
    )


def guard(action: str, scope: str, role: str) -> Response | None:
    """Admit the request when it carries a live bearer token with ``scope``; the client
    then acts as ``role`` of its authority (``g.api_principal``)."""
    protector: ResourceProtector = current_app.extensions[PROTECTOR_KEY]
    try:
        issued: IssuedToken = protector.acquire_token()
    except OAuth2Error as error:
        return oauth_problem(error)
    scopes = frozenset(issued.token.scopes)
    if not client_allowed(scopes, action):
        return problem(
            403,
            "Insufficient scope",
            f"This needs an access token with the scope {scope}.",
            kind="insufficient-scope",
            headers=[("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{scope}"')],
            extra={"error": "insufficient_scope", "scope": scope},
        )
    g.setdefault(
        G_KEY,
        ClientPrincipal(
            client_pk=issued.client.id,
            client_id=issued.client.client_id,
            authority_id=issued.client.authority_id,
            scopes=scopes,
            role=role,
        ),
    )
    return None


# --- endpoints ------------------------------------------------------------------------------


def _as_problem(response: Response) -> Response:
    """Authlib's error answers (``{"error": ...}``) in the API's one error shape."""
    if response.status_code < 400:
        return response
    try:
        payload = json.loads(response.get_data(as_text=True))
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    headers = [(k, v) for k, v in response.headers.items() if k.lower() == "www-authenticate"]
    description = payload.get("error_description")
    return _oauth_response(
        response.status_code,
        str(payload.get("error") or "invalid_request"),
        str(description) if description else None,
        headers,
    )


@bp.post("/oauth/token")
@public("OAuth token endpoint: the client credentials in the request are the credential")
def token() -> Response:
    server: AuthorizationServer = current_app.extensions[SERVER_KEY]
    try:
        return _as_problem(server.create_token_response())
    except OAuth2Error as error:  # e.g. insecure_transport: plain HTTP beyond localhost
        return oauth_problem(error)


@bp.post("/oauth/revoke")
@public("OAuth revocation endpoint: the client credentials in the request are the credential")
def revoke() -> Response:
    server: AuthorizationServer = current_app.extensions[SERVER_KEY]
    try:
        return _as_problem(server.create_endpoint_response(Revocation.ENDPOINT_NAME))
    except OAuth2Error as error:
        return oauth_problem(error)


def init_oauth(app: Flask) -> None:
    """Attach the authorization server, the resource protector and the API guard."""
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(API_SCOPES))
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
        ClientCredentialsGrant.GRANT_TYPE: int(api_clients.TOKEN_LIFETIME.total_seconds())
    }
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _generate_token
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = False
    server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(Grant)
    server.register_endpoint(Revocation)
    protector = ResourceProtector()
    protector.register_token_validator(Validator())
    app.extensions[SERVER_KEY] = server
    app.extensions[PROTECTOR_KEY] = protector
    app.extensions[API_GUARD] = guard
