"""gunicorn.conf.py serves the portal: a real gunicorn (gthread workers) on a free loopback
port against a SQLite instance answers /healthz, and its access log carries the forwarded
client address but no query string and no enrolment token."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from portal.cli import main

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def initialised_instance(tmp_path: Path) -> dict[str, str]:
    """The environment of a portal instance on SQLite, made by ``portal init``."""
    env = {
        **os.environ,
        "PORTAL_INSTANCE_DIR": str(tmp_path / "instance"),
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "PORTAL_DEMO": "",
        "PORTAL_TESTING": "",
    }
    init = CliRunner().invoke(main, ["init"], env=env, catch_exceptions=False)
    assert init.exit_code == 0, init.output
    return env


def test_gunicorn_serves_healthz_and_logs_no_secrets(tmp_path: Path) -> None:
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed in this environment")
    env = initialised_instance(tmp_path)
    port = free_port()
    env |= {"PORTAL_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2", "PORTAL_THREADS": "2"}
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(GUNICORN), "-c", str(REPO / "gunicorn.conf.py")],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                assert server.poll() is None, log.read_text()
                try:
                    status, body = get(f"http://127.0.0.1:{port}/healthz")
                    break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.3)
            assert status == 200, log.read_text()
            assert json.loads(body) == {"status": "ok"}

            # A connection per request (keepalive 0, so that a free worker takes the next
            # one), even for a client that asks to keep it.
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                client.request("GET", "/healthz", headers={"Connection": "keep-alive"})
                answer = client.getresponse()
                answer.read()
                assert (answer.status, answer.getheader("Connection")) == (200, "close")
            finally:
                client.close()

            secret = "Zq7SecretEnrolToken"
            status, _ = get(
                f"http://127.0.0.1:{port}/enrol/{secret}/authenticator?next=QuerySecret42",
                {"X-Forwarded-For": "203.0.113.7", "Referer": "https://x.example/?r=RefSecret"},
            )
            assert status in (200, 302, 404)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    text = log.read_text()
    assert server.returncode == 0, text
    assert text.count("Booting worker") == 2
    assert "Using worker: gthread" in text
    assert "Control socket" not in text
    assert '"GET /healthz HTTP/1.1" 200' in text
    assert 'xff="203.0.113.7" "GET /enrol/[token]/authenticator HTTP/1.1"' in text
    for leaked in (secret, "QuerySecret42", "RefSecret"):
        assert leaked not in text


def test_a_web_worker_starts_without_weasyprint(tmp_path: Path) -> None:
    """Building the app (what each gunicorn worker does at start, and again whenever it is
    replaced) does not import WeasyPrint: PDFs import it when they are first rendered."""
    env = initialised_instance(tmp_path)
    code = (
        "import sys, wsgi; "
        "assert wsgi.app.name; "
        "assert 'weasyprint' not in sys.modules, 'WeasyPrint imported at start'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert proc.returncode == 0, proc.stderr
