"""TOTP seeds sealed at rest under the TOTP key file, `portal init` sealing seeds stored in the
clear, and `portal rotate-totp-key` (issue 18): checked on the raw rows, with real sign-ins
through HTTP before and after."""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from portal import create_app
from portal.accounts import totp_seeds
from portal.accounts.models import User
from portal.cli import main
from portal.config import Settings
from portal.sealing import RotatingSealer, key_id, pending_key_path, read_sealing_key, sealed_by
from portal.state import portal_state
from tests.conftest import DatabaseUnderTest
from tests.support.auth import (
    TEST_RATE_LIMIT,
    Credentials,
    login,
    make_user,
    post_code,
    post_password,
)

pytest_plugins = ["tests.support.auth"]  # fixtures app, db


def _raw_seeds(app: Flask) -> list[str]:
    """The totp_secret column as the database holds it (no ORM, no sealer)."""
    with portal_state(app).engine.connect() as connection:
        rows = connection.execute(text("SELECT totp_secret FROM user_account")).scalars()
        return [row for row in rows if row is not None]


def test_a_new_user_s_seed_is_not_stored_in_the_clear(app: Flask, db: Session) -> None:
    """Regression: the column held the base32 seed itself."""
    creds = make_user(db, "legal_officer")
    stored = _raw_seeds(app)
    assert stored and all(creds.totp_secret not in value for value in stored)
    assert all(sealed_by(value) is not None for value in stored)
    login(app.test_client(), creds)


# --- a portal with its TOTP key file, as `portal init` makes it ---------------------------


class Instance:
    def __init__(self, settings: Settings, database: DatabaseUnderTest) -> None:
        self.settings = settings
        self.env = {
            "PORTAL_INSTANCE_DIR": str(settings.instance_dir),
            "PORTAL_DATABASE_URL": database.url,
            "PORTAL_DEMO": "",
            "PORTAL_TESTING": "",
        }
        self.key_path = settings.instance_dir / "totp_key"
        self.runner = CliRunner()

    def cli(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args), env=self.env)

    def key_id(self, path: Path | None = None) -> str:
        return key_id(read_sealing_key(path or self.key_path))

    def portal(self) -> Flask:
        """A test portal whose sessions seal seeds with the key file, like a deployed one
        (test mode alone would give it a random key)."""
        app = create_app(self.settings.with_overrides(login_rate_limit=TEST_RATE_LIMIT))
        sealer = RotatingSealer(self.key_path, key_setting=totp_seeds.KEY_SETTING)
        totp_seeds.attach_sealer(portal_state(app).sessions, sealer)
        return app


@pytest.fixture
def instance(settings: Settings, database: DatabaseUnderTest) -> Iterator[Instance]:
    made = Instance(settings, database)
    result = made.cli("init")
    assert result.exit_code == 0, result.output
    assert "Created TOTP key" in result.output
    yield made


@pytest.fixture
def portal(instance: Instance) -> Iterator[Flask]:
    app = instance.portal()
    yield app
    portal_state(app).engine.dispose()


def _user(app: Flask, role: str = "legal_officer") -> Credentials:
    with portal_state(app).sessions() as session:
        return make_user(session, role)


def test_portal_init_makes_a_private_totp_key_once(instance: Instance) -> None:
    assert stat.S_IMODE(instance.key_path.stat().st_mode) == 0o600
    key = instance.key_path.read_bytes()
    again = instance.cli("init")
    assert again.exit_code == 0, again.output
    assert "Created TOTP key" not in again.output and "Sealed" not in again.output
    assert instance.key_path.read_bytes() == key


def test_rotation_reseals_every_seed_and_sign_in_still_works(
    instance: Instance, portal: Flask
) -> None:
    first, second = _user(portal), _user(portal, "recipient")
    old_id = instance.key_id()
    stored = _raw_seeds(portal)
    assert {sealed_by(value) for value in stored} == {old_id}
    login(portal.test_client(), first)

    result = instance.cli("rotate-totp-key")
    assert result.exit_code == 0, result.output
    new_id = instance.key_id()
    assert new_id != old_id and "Re-sealed 2 TOTP seed(s)" in result.output
    assert stat.S_IMODE(instance.key_path.stat().st_mode) == 0o600
    assert not pending_key_path(instance.key_path).exists()
    stored = _raw_seeds(portal)
    assert {sealed_by(value) for value in stored} == {new_id}
    for creds in (first, second):
        assert all(creds.totp_secret not in value for value in stored)
    # The same running portal (no restart) signs both in under the new key.
    login(portal.test_client(), first)
    login(portal.test_client(), second)


def test_a_rotation_interrupted_before_the_rename_converges(
    instance: Instance, portal: Flask
) -> None:
    """A crash after the new key was written and some seeds re-sealed under it: both kinds
    open meanwhile, and running the command again finishes with the same new key."""
    first, second = _user(portal), _user(portal)
    old_id = instance.key_id()
    pending = pending_key_path(instance.key_path)
    pending.write_text(secrets.token_hex(32))
    pending.chmod(0o600)
    new_id = instance.key_id(pending)
    with portal_state(portal).sessions() as session:
        user = session.get(User, first.user_id)
        assert user is not None
        seed = totp_seeds.open_seed(user)
        assert seed == first.totp_secret
        totp_seeds.seal_seed(user, seed)  # a sealer seals with the pending key
        session.commit()
    assert sorted(sealed_by(value) or "" for value in _raw_seeds(portal)) == sorted(
        [old_id, new_id]
    )
    login(portal.test_client(), first)
    login(portal.test_client(), second)

    result = instance.cli("rotate-totp-key")
    assert result.exit_code == 0, result.output
    assert instance.key_id() == new_id and not pending.exists()
    assert {sealed_by(value) for value in _raw_seeds(portal)} == {new_id}
    login(portal.test_client(), first)
    login(portal.test_client(), second)


def test_portal_init_seals_seeds_stored_in_the_clear(instance: Instance, portal: Flask) -> None:
    """Seeds from before sealing still sign in, and `portal init` seals them (once)."""
    creds = _user(portal)
    with portal_state(portal).sessions() as session:
        session.execute(
            update(User).where(User.id == creds.user_id).values(totp_secret=creds.totp_secret)
        )
        session.commit()
    assert creds.totp_secret in _raw_seeds(portal)
    login(portal.test_client(), creds)

    result = instance.cli("init")
    assert result.exit_code == 0, result.output
    assert "Sealed 1 TOTP seed(s)" in result.output
    stored = _raw_seeds(portal)
    assert all(creds.totp_secret not in value for value in stored)
    assert {sealed_by(value) for value in stored} == {instance.key_id()}
    login(portal.test_client(), creds)
    again = instance.cli("init")
    assert again.exit_code == 0 and "Sealed" not in again.output


def test_rotation_refuses_a_key_others_can_read(instance: Instance, portal: Flask) -> None:
    creds = _user(portal)
    before = _raw_seeds(portal)
    instance.key_path.chmod(0o644)
    result = instance.cli("rotate-totp-key")
    assert result.exit_code != 0
    assert "readable by other users" in result.output
    assert creds.totp_secret not in result.output
    assert _raw_seeds(portal) == before  # nothing re-sealed


def test_a_seed_under_an_unknown_key_is_a_clear_error(instance: Instance, portal: Flask) -> None:
    """A replaced key file: the rotation stops with an error naming the key file, never the
    seed, and re-seals nothing."""
    creds = _user(portal)
    instance.key_path.write_text(secrets.token_hex(32))
    result = instance.cli("rotate-totp-key")
    assert result.exit_code != 0
    assert "another key" in result.output and "totp_key" in result.output
    assert creds.totp_secret not in result.output
    assert all(sealed_by(value) != instance.key_id() for value in _raw_seeds(portal))


def test_sign_in_without_the_right_totp_key_is_a_503_not_a_500(
    instance: Instance, portal: Flask
) -> None:
    creds = _user(portal)
    instance.key_path.write_text(secrets.token_hex(32))  # the key file replaced by another
    client = portal.test_client()
    first = post_password(client, creds.email, creds.password)
    assert first.status_code == 303
    answer = post_code(client, pyotp.TOTP(creds.totp_secret).now())
    assert answer.status_code == 503
    page = answer.get_data(as_text=True)
    assert "TOTP key" in page and creds.totp_secret not in page
