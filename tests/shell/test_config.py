"""Settings, the secret key, `portal init` and the console script."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal import create_app, migrate
from portal.cli import main
from portal.config import ConfigError, Settings, ensure_secret_key, read_secret_key
from portal.db import make_engine
from tests.conftest import DatabaseUnderTest


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "PORTAL_INSTANCE_DIR": str(tmp_path / "instance"),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_DEMO": "",
        "PORTAL_TESTING": "",
    }


def test_settings_from_env_defaults_live_in_the_instance_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'portal.db'}"
    assert settings.blob_dir == tmp_path / "data" / "blobs"
    assert settings.secret_key_file == tmp_path / "secret_key"
    assert settings.policies_dir.name == "policies"
    assert not settings.demo and not settings.testing
    assert settings.signing_key_file is None
    assert settings.compute_slots == 2


def test_settings_from_env_reads_every_variable(tmp_path: Path) -> None:
    env = {
        "PORTAL_INSTANCE_DIR": str(tmp_path / "i"),
        "PORTAL_DATABASE_URL": "postgresql://db.example/portal",
        "PORTAL_DATA_DIR": str(tmp_path / "d"),
        "PORTAL_POLICIES_DIR": str(tmp_path / "p"),
        "PORTAL_TEMPLATES_DIR": str(tmp_path / "t"),
        "PORTAL_SECRET_KEY_FILE": str(tmp_path / "s"),
        "PORTAL_SIGNING_KEY": str(tmp_path / "k.asc"),
        "PORTAL_SIGNING_PASSPHRASE_FILE": str(tmp_path / "pass"),
        "PORTAL_ARCHIVE_KEY": str(tmp_path / "a.asc"),
        "PORTAL_REDIS_URL": "redis://127.0.0.1:6379/1",
        "PORTAL_QUEUE_NAME": "staging.portal-2",
        "PORTAL_DEMO": "1",
        "PORTAL_MAX_UPLOAD_BYTES": "1024",
        "PORTAL_TRUSTED_PROXIES": "1",
        "PORTAL_COMPUTE_SLOTS": "3",
        "PORTAL_API_RATE_LIMIT": "50 per minute",
        "PORTAL_API_TOKEN_RATE_LIMIT": "5 per minute",
    }
    s = Settings.from_env(env)
    assert s.database_url == "postgresql://db.example/portal"
    assert (s.data_dir, s.policies_dir, s.templates_dir) == (
        tmp_path / "d",
        tmp_path / "p",
        tmp_path / "t",
    )
    assert s.secret_key_file == tmp_path / "s"
    assert s.signing_key_file == tmp_path / "k.asc"
    assert s.signing_passphrase_file == tmp_path / "pass"
    assert s.archive_key_file == tmp_path / "a.asc"
    assert s.redis_url == "redis://127.0.0.1:6379/1"
    assert s.queue_name == "staging.portal-2"
    assert s.demo and s.demo_or_test
    assert s.max_upload_bytes == 1024
    assert s.trusted_proxies == 1
    assert s.compute_slots == 3
    assert (s.api_rate_limit, s.api_token_rate_limit) == ("50 per minute", "5 per minute")


@pytest.mark.parametrize("name", ["has space", "x" * 65, "a/b", "naïve"])
def test_a_bad_queue_name_is_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="PORTAL_QUEUE_NAME"):
        Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path), "PORTAL_QUEUE_NAME": name})
    assert Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)}).queue_name == (
        "sharing-portal"
    )


def test_bad_number_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PORTAL_MAX_UPLOAD_BYTES"):
        Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path), "PORTAL_MAX_UPLOAD_BYTES": "1G"})


def test_app_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="portal init"):
        create_app(settings)


def test_secret_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    assert ensure_secret_key(settings) is True
    key = read_secret_key(settings)
    assert len(key) == 64
    assert stat.S_IMODE(settings.secret_key_file.stat().st_mode) == 0o600
    assert ensure_secret_key(settings) is False
    assert read_secret_key(settings) == key
    app = create_app(settings)
    assert app.secret_key == key


def test_readable_secret_key_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    ensure_secret_key(settings)
    os.chmod(settings.secret_key_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret_key(settings)


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)})
    fd = os.open(settings.secret_key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(ConfigError, match="too short"):
        read_secret_key(settings)


def test_portal_init_creates_key_and_schema(tmp_path: Path, database: DatabaseUnderTest) -> None:
    runner = CliRunner()
    env = _env(tmp_path, database.url)
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert "Created secret key" in result.output
    key_file = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    engine = make_engine(database.url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
    again = runner.invoke(main, ["init"], env=env)
    assert again.exit_code == 0, again.output
    assert "Created secret key" not in again.output


def test_cli_without_secret_key_says_how_to_fix_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["routes"], env=_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    )
    assert result.exit_code != 0
    assert "portal init" in result.output
    assert "Traceback" not in result.output


def test_console_script_is_the_flask_cli() -> None:
    script = Path(sys.executable).with_name("portal")
    assert script.exists(), "the `portal` console script is not installed"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for command in ("init", "import", "demo", "audit", "run", "shell", "routes"):
        assert f"  {command}" in result.stdout, command


def test_trusted_proxy_headers_make_requests_secure(tmp_path: Path) -> None:
    base = Settings.from_env({"PORTAL_INSTANCE_DIR": str(tmp_path)}).with_overrides(testing=True)
    headers = {"X-Forwarded-Proto": "https"}
    direct = create_app(base).test_client().get("/", headers=headers)
    assert "Strict-Transport-Security" not in direct.headers
    proxied = create_app(base.with_overrides(trusted_proxies=1)).test_client()
    assert "Strict-Transport-Security" in proxied.get("/", headers=headers).headers
