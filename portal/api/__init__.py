"""JSON API v1 for authorities' systems, under ``/api/v1``, with OAuth 2.0 client
credentials (Authlib).

- :mod:`portal.api.oauth` — token and revocation endpoints, the bearer-token guard;
- :mod:`portal.rfa.api`, :mod:`portal.packages.api` — the endpoints, thin over the same
  domain functions as the pages;
- :mod:`portal.api.openapi` — the OpenAPI 3.1 description at ``/api/v1/openapi.json``;
- :mod:`portal.api.problem` — errors as ``application/problem+json``.

Every API view declares an action of ``authz.API_PERMISSIONS``; the app-wide guard checks
it (deny by default). The blueprint is exempt from CSRF (bearer tokens are not sent by
browsers on their own) and rate-limited per client (per address for the token endpoints).
"""

from __future__ import annotations

from flask import Flask, g, request

PROTECTED_BY_ADDRESS = frozenset({"api.token", "api.revoke", "api.openapi_json"})
DEFAULT_RATE_LIMIT = "300 per minute"
DEFAULT_TOKEN_RATE_LIMIT = "30 per minute"  # noqa: S105 - a rate, not a secret


def _rate_key() -> str:
    from portal.api.principal import G_KEY, ClientPrincipal

    principal = g.get(G_KEY)
    if isinstance(principal, ClientPrincipal):
        return f"client:{principal.client_id}"
    return f"address:{request.remote_addr or 'unknown'}"


def _rate_scope(endpoint: str) -> str:
    return "api-oauth" if endpoint in PROTECTED_BY_ADDRESS else "api"


def init_api(app: Flask) -> None:
    """Register the API on ``app`` (after the limiter: its limits join the app's)."""
    from flask_limiter import Limiter
    from flask_wtf.csrf import CSRFProtect

    from portal.api import openapi  # noqa: F401  (routes on the blueprint)
    from portal.api.blueprint import bp
    from portal.api.oauth import init_oauth
    from portal.authz.limiter import EXTENSION_KEY
    from portal.packages import api as package_routes  # noqa: F401  (routes on the blueprint)
    from portal.rfa import api as rfa_routes  # noqa: F401  (routes on the blueprint)

    init_oauth(app)
    api_rate = str(app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT)
    token_rate = str(app.config.get("API_TOKEN_RATE_LIMIT") or DEFAULT_TOKEN_RATE_LIMIT)

    def rate() -> str:
        return token_rate if request.endpoint in PROTECTED_BY_ADDRESS else api_rate

    limiter: Limiter = app.extensions[EXTENSION_KEY]
    limiter.shared_limit(rate, scope=_rate_scope, key_func=_rate_key)(bp)
    csrf: CSRFProtect = app.extensions["csrf"]
    csrf.exempt(bp)
    app.register_blueprint(bp)
