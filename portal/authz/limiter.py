"""Per-address rate limit on the sign-in steps (Flask-Limiter).

Both steps (``auth.login`` and ``auth.login_totp``) and the enrolment steps share one
budget of *failed* attempts per client address, by default 20 a minute and 200 an hour
(``Settings.login_rate_limit``), counted in a moving window. Only refusals are counted
(any answer of 400 or more): a whole war crimes unit behind one address signs in all
morning without touching the budget, while one address guessing passwords for many
accounts is stopped. Every method counts except a GET of the form itself (a HEAD
reaches the app as that GET, see :mod:`portal.pages.http_methods`): a method is never a
way around the budget. Beyond it the portal answers 429 with the usual error page.

This is the address's budget; each account has its own, smaller one: the per-account
lockout (portal.accounts.throttle, 5 failures in 15 minutes) stops guessing one account's
password or code whatever the addresses.

Counters live in memory by default (one process), or in Redis when
``Settings.redis_url`` is set, so that every worker shares them. Each app gets its own
:class:`~flask_limiter.Limiter` (no module-level instance). When Redis is configured
but unreachable, each process counts in its own memory (logged as a warning) until Redis
answers again: sign-in keeps working and stays limited, per process instead of shared (the
per-account lockout, kept in the database, is unaffected).

The client address is ``request.remote_addr``; behind reverse proxies set
``PORTAL_TRUSTED_PROXIES`` so that it is the visitor's address, not the proxy's.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_limiter import ApplicationLimit, Limiter
from limits import parse_many

from portal.config import ConfigError, Settings

# Sign-in and enrolment: each POST may cost an argon2 hash or guesses a secret.
LIMITED_ENDPOINTS = frozenset(
    {"auth.login", "auth.login_totp", "enrol.start", "enrol.authenticator"}
)
SCOPE = "login"
DEFAULT_KEY_PREFIX = "portal"
EXTENSION_KEY = "portal_limiter"


def client_address() -> str:
    return request.remote_addr or "unknown"


def _not_a_sign_in_step() -> bool:
    """Exempt: other endpoints, and showing a form (GET, or a HEAD presented as GET)."""
    return request.endpoint not in LIMITED_ENDPOINTS or request.method == "GET"


def _refused(response: Response) -> bool:
    """Deduct from the address's budget only what was refused (a success costs nothing)."""
    return response.status_code >= 400


def init_limiter(app: Flask, settings: Settings) -> Limiter:
    """Attach a limiter to ``app`` limiting sign-in attempts per client address.

    The Redis key prefix is ``portal`` unless ``RATELIMIT_KEY_PREFIX`` is set in the
    app config (tests use a unique one so runs do not share counters).
    """
    try:
        parse_many(settings.login_rate_limit)
    except ValueError:
        raise ConfigError(
            f"PORTAL_LOGIN_RATE_LIMIT is not a rate limit: {settings.login_rate_limit!r} "
            "(write e.g. '10 per minute;100 per hour')"
        ) from None
    limiter = Limiter(
        key_func=client_address,
        application_limits=[
            ApplicationLimit(
                limit_provider=settings.login_rate_limit,
                key_function=client_address,
                scope=SCOPE,
                methods=None,  # every method; _not_a_sign_in_step exempts the GET form
                exempt_when=_not_a_sign_in_step,
                deduct_when=_refused,
            )
        ],
        storage_uri=settings.redis_url or "memory://",
        in_memory_fallback_enabled=settings.redis_url is not None,
        # Redis lost between the check and the deduction of a refusal (found by
        # bench/faults.py): the deduction has no fallback of its own, so log it and answer,
        # never a 500; the headers that follow fall back to memory and count it there.
        swallow_errors=True,
        strategy="moving-window",
        key_prefix=str(app.config.get("RATELIMIT_KEY_PREFIX") or DEFAULT_KEY_PREFIX),
        headers_enabled=True,
    )
    limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = limiter
    return limiter
