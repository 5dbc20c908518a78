"""Run the real `portal` command line in tests: ``pytest_plugins = ["tests.support.cli"]``
gives the ``portal`` fixture (one instance directory, the test database, demo mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from portal.cli import main
from tests.conftest import DatabaseUnderTest


class Portal:
    """Runs `portal …` commands against one instance directory and database."""

    def __init__(self, instance: Path, database_url: str) -> None:
        self.env = {
            "PORTAL_INSTANCE_DIR": str(instance),
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_DEMO": "1",
            "PORTAL_TESTING": "",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, list(args), env=self.env, catch_exceptions=False)


@pytest.fixture
def portal(tmp_path: Path, database: DatabaseUnderTest) -> Portal:
    return Portal(tmp_path / "instance", database.url)
