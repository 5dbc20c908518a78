"""API clients and tokens for JSON API tests.

``api_client`` registers a client through :func:`portal.api.clients.register_client` (as a
real admin would); ``token_for`` obtains an access token from the real token endpoint with
HTTP Basic client authentication. Load with::

    pytest_plugins = ["tests.support.auth", "tests.support.api"]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.accounts.models import User
from portal.api.clients import register_client
from portal.registry.models import Authority
from portal.state import portal_state
from tests.support.auth import make_user

TOKEN_URL = "/api/v1/oauth/token"
ALL_SCOPES = ("rfa:write", "rfa:read", "packages:read", "packages:ack")


@dataclass(frozen=True)
class ApiClient:
    client_id: str
    secret: str
    pk: int
    authority_id: int


def api_client(
    app: Flask, authority_code: str = "AUTH-A", scopes: Collection[str] = ALL_SCOPES
) -> ApiClient:
    """A client of ``authority_code`` (created, with an admin, when missing)."""
    with portal_state(app).sessions() as session:
        admin_creds = make_user(session, "admin")
        if session.scalar(select(Authority).where(Authority.code == authority_code)) is None:
            make_user(session, "requester", authority_code=authority_code)
        authority = session.scalar(select(Authority).where(Authority.code == authority_code))
        admin = session.get(User, admin_creds.user_id)
        assert authority is not None and admin is not None
        created = register_client(session, authority, "Case system", list(scopes), by=admin)
        session.commit()
        return ApiClient(created.client.client_id, created.secret, created.client.id, authority.id)


def token_for(client: FlaskClient, api: ApiClient, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = client.post(TOKEN_URL, data=data, auth=(api.client_id, api.secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    token: str = response.get_json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
