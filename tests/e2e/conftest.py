"""A real portal for the browser tests, on each stack: a fresh instance directory,
``portal init``, ``portal demo``, one package released through the ``portal`` command line
(so the recipient's pages have something to show), then

- **sqlite**: ``portal run`` on a free loopback port with its `portal worker` child process
  (which signs), as ``make run`` does;
- **postgresql**: the production path — a database of its own on the PostgreSQL server of
  ``PORTAL_TEST_DATABASE_URL``, Redis from ``PORTAL_TEST_REDIS_URL`` (the job queue under a
  name of its own, and the rate limits), gunicorn with ``gunicorn.conf.py`` and a separate
  ``portal worker`` process assembling packages. Skipped, saying why, when those variables
  are not set (``.ci/run`` sets them).

The example signing key signs. The browser is Debian's ``/usr/bin/chromium`` driven by
Playwright; no browser is ever downloaded. Run with ``make e2e`` (or ``pytest tests/e2e``);
``make test`` does not collect this directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from sqlalchemy import create_engine, make_url, text

from portal.db import normalize_url
from tests.conftest import PG_ENV, REDIS_ENV
from tests.e2e.browser import (
    ARTIFACTS,
    CHROMIUM,
    KEYS,
    REPO,
    Actors,
    Server,
    TotpClock,
    read_logins,
)

#: The package the command line releases before the server starts (see ``_seed_package``).
SEEDED_RFA = "RFA-2025-0038"
FIRST_OFFICER = "officer.one@mechanism.example"
SECOND_OFFICER = "officer.two@mechanism.example"
STARTUP_SECONDS = 60


def _portal_command() -> list[str]:
    script = Path(sys.executable).with_name("portal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "portal.cli"]


def _environment(instance_dir: Path) -> dict[str, str]:
    """The server's environment: ours, without any PORTAL_* of the caller (no test database
    or Redis: the embedded SQLite default with its in-process queue), in demo mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_INSTANCE_DIR=str(instance_dir),
        PORTAL_DEMO="1",
        PORTAL_SIGNING_KEY=str(KEYS / "mechanism-signing.sec.asc"),
        PORTAL_SIGNING_PASSPHRASE_FILE=str(KEYS / "mechanism-signing.passphrase"),
        # Every test signs in from 127.0.0.1; the default limit (10 a minute) is for people.
        PORTAL_LOGIN_RATE_LIMIT="600 per minute",
    )
    return env


def _run_portal(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*_portal_command(), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"portal {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _seed_package(env: dict[str, str]) -> str:
    """Check, assemble and release the demo's approved request, as two officers would."""
    decision = json.loads(
        _run_portal(env, "rfa", "check", SEEDED_RFA, "--as", FIRST_OFFICER, "--json")
    )
    made = _run_portal(
        env, "package", "assemble", SEEDED_RFA, "--decision", decision["decision_id"],
        "--as", FIRST_OFFICER,
    )  # fmt: skip
    code = made.split()[0]
    _run_portal(env, "package", "release", code, "--as", SECOND_OFFICER)
    return code


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"portal run exited with {process.returncode}:\n{log_file.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"portal run did not answer within {STARTUP_SECONDS} s:\n{log_file.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server we started (its own process group), gently first."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextmanager
def _production_services() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database (dropped afterwards) and Redis with a queue of our own:
    the PORTAL_* variables of the production path."""
    database_url, redis_url = os.environ.get(PG_ENV), os.environ.get(REDIS_ENV)
    if not database_url or not redis_url:
        pytest.skip(f"the production path needs PostgreSQL and Redis: set {PG_ENV} and {REDIS_ENV}")
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    base = make_url(normalize_url(database_url))
    admin = create_engine(base.set(query={}), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            "PORTAL_DATABASE_URL": base.set(database=name).render_as_string(hide_password=False),
            "PORTAL_REDIS_URL": redis_url,
            "PORTAL_QUEUE_NAME": name,
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _start(command: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _serve(backend: str, env: dict[str, str], port: int) -> list[list[str]]:
    """The commands that serve the portal on ``port`` (the web server first)."""
    if backend == "sqlite":
        return [[*_portal_command(), "run", "--host", "127.0.0.1", "--port", str(port)]]
    env.update(PORTAL_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    return [
        [gunicorn, "--config", str(REPO / "gunicorn.conf.py")],
        [*_portal_command(), "worker", "--workers", "2"],
    ]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    backend: str = request.param
    artifacts = ARTIFACTS if backend == "sqlite" else ARTIFACTS / backend
    instance_dir = Path(tempfile.mkdtemp(prefix="pg-e2e-", dir="/tmp"))
    env = _environment(instance_dir)
    log_file = instance_dir / "server.log"
    processes: list[subprocess.Popen[bytes]] = []
    with ExitStack() as services:
        if backend == "postgresql":
            env.update(services.enter_context(_production_services()))
        try:
            _run_portal(env, "init")
            _run_portal(env, "demo")
            package = _seed_package(env)
            port = _free_port()
            for command in _serve(backend, env, port):
                processes.append(_start(command, env, log_file))
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_up(processes[0], base_url, log_file)
            logins = read_logins(instance_dir)
            yield Server(base_url, instance_dir, log_file, logins, package, backend, artifacts)
        finally:
            for process in reversed(processes):
                _stop(process)
            if log_file.exists():
                artifacts.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log_file, artifacts / "server.log")
            shutil.rmtree(instance_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make e2e does)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def clock() -> TotpClock:
    return TotpClock()


@pytest.fixture(scope="session")
def actors(browser: Browser, server: Server, clock: TotpClock) -> Iterator[Actors]:
    people = Actors(browser, server, clock)
    yield people
    people.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context nobody has signed in to yet."""
    fresh = browser.new_context()
    yield fresh
    fresh.close()
