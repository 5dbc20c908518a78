"""Gunicorn settings for the Sharing Portal: ``gunicorn -c gunicorn.conf.py``.

Read by gunicorn at start; the portal's own settings still come from PORTAL_* variables
(see README). Tuned for running behind a TLS-terminating reverse proxy (docs/deployment.md):

- PORTAL_BIND            where to listen (default 127.0.0.1:8000; several comma-separated,
                         or unix:/run/portal/web.sock)
- WEB_CONCURRENCY        worker processes (default: one per CPU core, at least 2)
- PORTAL_THREADS         threads per worker, and connections a worker takes at once
                         (default 4; gthread workers; raise it when many recipients
                         download packages at once: each download holds one)
- FORWARDED_ALLOW_IPS    proxies whose X-Forwarded-* headers gunicorn believes
                         (default 127.0.0.1,::1: nginx on the same machine)

The access log never shows query strings, the referrer or enrolment tokens (tokens travel
in /enrol/<token> links; see :class:`PortalAccessLogger`), and does show the client address
the proxy reports in X-Forwarded-For.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import timedelta
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

from portal.log_paths import loggable_path

wsgi_app = "wsgi:app"

bind = [part.strip() for part in os.environ.get("PORTAL_BIND", "127.0.0.1:8000").split(",")]
# One process per core (at least 2), each with PORTAL_THREADS threads: gthread workers
# overlap I/O with their threads, so more processes than cores only compete for the CPU
# with PostgreSQL and the package workers when they share the machine (bench/load.py).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("PORTAL_THREADS") or 4)

# No work at import: each worker imports wsgi.py and builds its own app, engine and pool
# (a database connection must never be shared across a fork).
preload_app = False

# gthread workers heartbeat from their main loop, so a long streaming download does not
# count against `timeout`; it only catches a worker that is truly stuck.
timeout = 60
# On restart or reload, give running downloads time to finish (clients resume with Range).
graceful_timeout = 120
# One connection per request, and a worker takes at most as many connections as it has
# threads: a worker whose threads are all busy leaves the next connection in the kernel's
# queue for the first worker that is free, so the CPU-bound part of every page (Python, one
# core per process) spreads over all the processes. A kept-alive connection instead stays
# with the worker that accepted it, and the split stays uneven for good: bench/load.py
# measured 23 connections on one worker and 11 on the other, p95 200 ms; like this, equal
# CPU on both and p95 153 ms. The proxy is on loopback (a new connection costs ~50 us) and
# buffers requests, so it only connects once a request is complete (docs/deployment.md).
keepalive = 0
worker_connections = threads

# sendfile stays on: gunicorn speaks plain HTTP to the proxy on loopback, and package files
# go out through wsgi.file_wrapper with zero copies. (gunicorn turns it off by itself when
# it terminates TLS, which this deployment never does.)
sendfile = True

# Recycle workers now and then, one at a time: bounds any slow leak in the native libraries
# a web worker loads (Pango/HarfBuzz for PDFs). A start costs ~0.65 s of CPU, so at a
# sustained 100 pages/s per worker this is under 1%.
max_requests = 10000
max_requests_jitter = 1000

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files (made with mkstemp) in memory, so a slow disk cannot stall workers.
_SHM = "/dev/shm"  # noqa: S108 - gunicorn's documented choice; files are private mkstemp
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None

# gunicorn 25.1+ opens a control socket in $XDG_RUNTIME_DIR or ~/.gunicorn by default; a
# service user may have neither (systemd ProtectHome), and nothing here uses it.
control_socket_disable = True

accesslog = "-"  # stdout: journald or the container runtime collects it
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '%(h)s xff="%({x-forwarded-for}i)s" "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
)


class PortalAccessLogger(glogging.Logger):  # type: ignore[misc]
    """Gunicorn's logger, with secrets taken out of what an access log line can show."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        atoms["U"] = loggable_path(str(atoms.get("U") or ""))
        for key in ("r", "q", "f"):  # request line and query string, referrer
            atoms[key] = "-"
        for key in (
            "{authorization}i", "{cookie}i", "{set-cookie}o", "{referer}i",
            "{query_string}e", "{raw_uri}e", "{request_uri}e",
        ):  # fmt: skip
            atoms.pop(key, None)
        return atoms


logger_class = PortalAccessLogger
