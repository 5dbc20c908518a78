"""The instance directory is 0700 and the SQLite database and backups 0600: `portal init` makes
them so, and the app and `portal worker` refuse to start when they are wider."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal import create_app
from portal.cli import main
from portal.config import ConfigError, Settings


def _env(instance: Path) -> dict[str, str]:
    return {
        "PORTAL_INSTANCE_DIR": str(instance),
        "PORTAL_DATABASE_URL": "",
        "PORTAL_DEMO": "",
        "PORTAL_TESTING": "",
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_portal_init_makes_a_private_instance_and_database(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    result = CliRunner().invoke(main, ["init"], env=_env(instance))
    assert result.exit_code == 0, result.output
    assert _mode(instance) == 0o700
    database = instance / "portal.db"
    assert _mode(database) == 0o600
    for extra in ("portal.db-wal", "portal.db-shm"):
        if (instance / extra).exists():
            assert _mode(instance / extra) == 0o600
    create_app(Settings.from_env(_env(instance)))  # starts


def test_portal_init_narrows_a_wider_instance(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    sqlite3.connect(instance / "portal.db").close()
    (instance / "portal.db").chmod(0o644)
    result = CliRunner().invoke(main, ["init"], env=_env(instance))
    assert result.exit_code == 0, result.output
    assert "Made private" in result.output
    assert _mode(instance) == 0o700 and _mode(instance / "portal.db") == 0o600


@pytest.mark.parametrize(
    ("target", "mode", "message"),
    [("instance", 0o755, "chmod 700"), ("database", 0o644, "chmod 600")],
)
def test_the_app_and_the_worker_refuse_a_wider_instance_or_database(
    tmp_path: Path, target: str, mode: int, message: str
) -> None:
    instance = tmp_path / "instance"
    env = _env(instance)
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    (instance if target == "instance" else instance / "portal.db").chmod(mode)
    with pytest.raises(ConfigError, match=message):
        create_app(Settings.from_env(env))
    worker = CliRunner().invoke(main, ["worker"], env=env)
    assert worker.exit_code != 0 and message in worker.output
    served = CliRunner().invoke(main, ["routes"], env=env)
    assert served.exit_code != 0 and message in served.output
    assert "Traceback" not in served.output


def test_a_sqlite_database_the_portal_creates_is_private(tmp_path: Path) -> None:
    from sqlalchemy import text

    from portal.db import make_engine

    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        engine.dispose()
    assert _mode(path) == 0o600
