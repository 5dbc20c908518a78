"""Users and sign-in for web tests.

``make_user`` creates an enrolled user (and the authority or provider its role needs)
through ``portal.accounts.creation.create_user``; ``login`` signs a test client in through the
real two-step form (CSRF tokens read from the pages, a TOTP code generated from the
user's secret). Fixtures ``make_app``, ``app`` and ``client`` build the portal on the
test database; load them in a test module with::

    pytest_plugins = ["tests.support.auth"]
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from portal import create_app
from portal.accounts.creation import NewUser, create_user
from portal.accounts.models import AUTHORITY_ROLES, User
from portal.audit import CLI_ACTOR
from portal.config import Settings
from portal.registry.models import Authority, Provider
from portal.state import portal_state
from tests.support import factories as make

DEFAULT_AUTHORITY = "TST-AUTH"
DEFAULT_PROVIDER = "TST-PRV"
TEST_RATE_LIMIT = "1000 per minute"
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str
    totp_secret: str
    user_id: int


def _ensure_authority(session: Session, code: str) -> None:
    if session.scalar(select(Authority.id).where(Authority.code == code)) is None:
        make.authority(session, code, name=f"Test authority {code}", country="ZZ")


def _ensure_provider(session: Session, code: str) -> None:
    if session.scalar(select(Provider.id).where(Provider.code == code)) is None:
        make.provider(session, code, name=f"Test provider {code}", public_name=f"NGO {code}")


def make_user(
    session: Session,
    role: str,
    *,
    authority_code: str | None = None,
    provider_code: str | None = None,
    email: str | None = None,
    hash_profile: str = "fast",
) -> Credentials:
    """Create (and commit) an active, enrolled user of ``role``; returns its credentials.

    The password is hashed with the cheap test profile unless ``hash_profile`` says
    "standard" (for tests about hashing cost and rehashing)."""
    if role in AUTHORITY_ROLES:
        authority_code = authority_code or DEFAULT_AUTHORITY
        _ensure_authority(session, authority_code)
    elif role == "provider":
        provider_code = provider_code or DEFAULT_PROVIDER
        _ensure_provider(session, provider_code)
    tag = secrets.token_hex(4)
    address = email or f"{role.replace('_', '.')}.{tag}@example.test"
    password = f"test-pass-{secrets.token_urlsafe(12)}"
    secret = pyotp.random_base32()
    user = create_user(
        session,
        NewUser(
            email=address,
            display_name=f"Test {role.replace('_', ' ')} {tag}",
            role=role,
            authority_code=authority_code,
            provider_code=provider_code,
        ),
        password=password,
        totp_secret=secret,
        actor=CLI_ACTOR,
        hash_profile=hash_profile,
    )
    session.commit()
    return Credentials(email=user.email, password=password, totp_secret=secret, user_id=user.id)


# --- HTTP ----------------------------------------------------------------------------------


def csrf_token(response: TestResponse) -> str:
    """The CSRF token of the (first) form on a page."""
    found = _CSRF.search(response.get_data(as_text=True))
    assert found is not None, "the page has a form with a CSRF token"
    return found.group(1)


def fresh_totp_code(app: Flask, creds: Credentials) -> str:
    """A code the portal has not seen yet for this user: for the current time step, or the
    next one when the current was already used.

    When both were used already (a test signing one user in three times within one
    30-second step), the user's replay marker is moved back one step instead of waiting up
    to 30 s for the clock: the replay guard itself is tested with its own codes
    (tests/accounts/test_totp.py), and a sleeping helper cost CI minutes."""
    totp = pyotp.TOTP(creds.totp_secret)
    with portal_state(app).sessions() as session:
        last = session.scalar(select(User.totp_last_step).where(User.id == creds.user_id))
        current = int(time.time()) // 30
        # The current step (not the previous one): a step boundary passing before the
        # portal checks the code still leaves it inside the ±1 window.
        step = current if last is None else max(current, last + 1)
        if step > current + 1:
            user = session.get(User, creds.user_id)
            assert user is not None
            user.totp_last_step = current - 1
            session.commit()
            step = current
    return totp.at(datetime.fromtimestamp(step * 30, UTC))


def post_password(
    client: FlaskClient, email: str, password: str, *, next_target: str | None = None
) -> TestResponse:
    """Step 1 with a fresh CSRF token from the sign-in page."""
    query = {"next": next_target} if next_target is not None else None
    # (a signed-in browser is sent on from /login; any page of the session has the token)
    token = csrf_token(client.get("/login", query_string=query, follow_redirects=True))
    data = {"csrf_token": token, "email": email, "password": password}
    if next_target is not None:
        data["next"] = next_target
    return client.post("/login", data=data)


def post_code(client: FlaskClient, code: str) -> TestResponse:
    """Step 2, with the CSRF token of the code form (or of the sign-in page when there is
    no step 1 to continue: the token is the session's either way)."""
    page = client.get("/login/code")
    token = csrf_token(page if page.status_code == 200 else client.get("/login"))
    return client.post("/login/code", data={"csrf_token": token, "code": code})


def login(
    client: FlaskClient, creds: Credentials, *, next_target: str | None = None
) -> TestResponse:
    """Sign ``client`` in as ``creds`` through both steps; returns the final redirect."""
    first = post_password(client, creds.email, creds.password, next_target=next_target)
    assert first.status_code == 303, f"password step failed ({first.status_code})"
    assert first.headers["Location"].endswith("/login/code")
    app = client.application
    response = post_code(client, fresh_totp_code(app, creds))
    assert response.status_code == 303, f"code step failed ({response.status_code})"
    return response


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def make_app(settings: Settings, engine: Engine) -> Iterator[Callable[..., Flask]]:
    """Build portals on the test database (tables made by ``engine``), with settings
    overrides; their engines are disposed afterwards.

    The per-address sign-in limit is raised (every test client comes from 127.0.0.1)
    unless a test overrides ``login_rate_limit`` to test the limit itself.
    """
    built: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        overrides.setdefault("login_rate_limit", TEST_RATE_LIMIT)
        app = create_app(settings.with_overrides(**overrides))
        built.append(app)
        return app

    yield build
    for app in built:
        portal_state(app).engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session on the app's database (commit what the app should see)."""
    with portal_state(app).sessions() as session:
        yield session
