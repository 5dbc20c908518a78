"""``portal run`` (the development server) logs requests without secrets: a real server on a
free loopback port, a real request for an enrolment link, the real werkzeug access log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from portal.log_paths import loggable_path
from tests.shell.test_gunicorn import REPO, free_port, get, initialised_instance

PORTAL = Path(sys.executable).parent / "portal"
TOKEN = "fictional-enrolment-token-1f2e3d"


def test_loggable_path_hides_tokens_and_queries() -> None:
    line = f'127.0.0.1 - - "GET /enrol/{TOKEN}/authenticator?next=/x HTTP/1.1" 200 -'
    assert loggable_path(line) == '127.0.0.1 - - "GET /enrol/[token]/authenticator HTTP/1.1" 200 -'
    assert loggable_path("/requests?q=Fictional+Name") == "/requests"


def test_portal_run_access_log_has_no_enrolment_token(tmp_path: Path) -> None:
    env = initialised_instance(tmp_path)
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(PORTAL), "run", "--no-reload", "--no-debugger", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                assert server.poll() is None, log.read_text()
                try:
                    status, _ = get(f"http://127.0.0.1:{port}/healthz")
                    break
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.3)
            assert status == 200, log.read_text()
            get(f"http://127.0.0.1:{port}/enrol/{TOKEN}?next=/secret-query")
            get(f"http://127.0.0.1:{port}/enrol/{TOKEN}/authenticator")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    text = log.read_text()
    assert "GET /enrol/[token] HTTP" in text and "GET /enrol/[token]/authenticator" in text
    assert TOKEN not in text and "secret-query" not in text
